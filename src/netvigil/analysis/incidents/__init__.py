"""Incidents: verdicts over time -> one incident per (country, service) event.

builder.py groups verdicts into incidents with onset, end and networks; window.py is the live
window the observatory keeps (bounded in memory); changes.py turns two incident lists into
start/change/end events for alerts; quorum.py decides what is published (independent probes).
"""
