"""The long-running probe (`netvigil agent`): enrol once, check in, measure, submit, repeat.

identity.py  the probe id and secret, enrolled once and kept in the data dir (mode 0600).
budget.py    the daily byte budget of throughput tests (a mobile plan is not free).
checkin.py   what the observatory says to measure, how often, with which helpers, and where we are.
loop.py      one round (check in -> measure into the on-disk queue -> submit) and the schedule.
"""
