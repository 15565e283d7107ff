"""Outages: the network down, not a service blocked (docs/outages.md).

`decision` is the one outage-or-censorship decision (a round's controls, a network's
silence, a network's call); `spans` turns verdicts into the outage spans every command and
page shows. The detector over series (Monash, MRT, volume) is `analysis.outage_signals`.
"""
