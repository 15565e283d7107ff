"""Collector: receives measurements over HTTP and makes them durable before answering.

log.py     the append-only, fsynced, group-committed measurement log (source of truth).
intake.py  validation, probe-IP scrubbing and measurement uids (idempotent resubmission).
routes.py  the submission endpoints (OONI collector protocol); fleet*.py enrolment and check-in.
The web application that serves it with the API and dashboard is observatory/app.py; the
submitting client lives with the probe (probe/client.py).
"""
