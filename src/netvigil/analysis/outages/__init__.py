"""Outages: the network down, not a service blocked (docs/outages.md).

- `decision`: the one outage-or-censorship decision (a round's controls, a network's
  silence, a network's call), used by the round context, the incidents and `netvigil outages`;
- `spans`: silence and one outage span per network, from verdicts;
- `calls`: outage / censorship / both per network (`netvigil outages MEASUREMENTS`);
- `detector`: one robust detector over any series (Monash, MRT, volume, control share);
- `signal_rules`: the detector's rules (rules/outage.toml, loaded by `analysis.rules.load_rules`);
- `scoring`: outage calls against documented windows or lab labels.
"""
