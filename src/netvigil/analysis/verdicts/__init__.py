"""Verdicts: one measurement (and its probe round) -> findings per endpoint -> a verdict.

engine.py is the one round sequencer every path uses (analyse, serve, rebuild, the judge
worker); observations.py turns a measurement into per-step observations, endpoints.py and
web_connectivity.py judge them, context.py adds what the round and the network's history say,
throughput.py judges rates; observations_csv.py is the separate, named input of OONI
observation CSVs with its own `csv.*` rules.
"""
