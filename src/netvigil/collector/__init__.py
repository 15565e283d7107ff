"""Collector: receives measurements over HTTP and makes them durable before answering.

client.py  submits measurements (OONI collector protocol) with retry and an on-disk queue.
log.py     the append-only, fsynced, group-committed measurement log (source of truth).
intake.py  validation, probe-IP scrubbing and measurement uids (idempotent resubmission).
app.py     the FastAPI application: collector + API + dashboard (create_app).
"""
