"""Prometheus metrics of the observatory service itself (GET /metrics).

A registry per app (not the global one), so several apps in one test process do not clash.
Gauges that mirror state (log size, analysis lag) are computed when scraped.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily


class Metrics:
    """The service's Prometheus metrics, on a registry of their own so two apps in one process
    (tests) do not share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.accepted = Counter("netvigil_measurements_accepted", "Measurements made durable", registry=r)
        self.duplicates = Counter("netvigil_measurements_duplicate", "Resubmissions already stored", registry=r)
        self.rejected = Counter("netvigil_requests_rejected", "Requests refused, by HTTP status", ["status"], registry=r)
        self.commit_seconds = Histogram(
            "netvigil_submit_durable_seconds", "Time from a valid submission to its fsync",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0), registry=r)
        self.alerts = Counter("netvigil_alerts", "Webhook deliveries, by outcome", ["outcome"], registry=r)
        self.api_seconds = Histogram(
            "netvigil_api_seconds", "API request latency", ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0), registry=r)

    def bind(self, nv) -> None:
        """Add gauges read from the running service at scrape time."""

        class _State:
            """A prometheus collector: the service's counters read when /metrics is scraped."""

            def collect(self):
                yield GaugeMetricFamily("netvigil_measurements_stored", "Measurements in the log",
                                        value=nv.collector.stored)
                yield GaugeMetricFamily("netvigil_log_commits", "Group commits (fsyncs) so far",
                                        value=nv.collector.log.commits)
                pump = nv.pump
                yield GaugeMetricFamily("netvigil_analysed_measurements", "Measurements analysed since start",
                                        value=pump.analysed)
                lag = time.time() - pump.last_round_at if pump.last_round_at else -1
                yield GaugeMetricFamily("netvigil_analysis_age_seconds",
                                        "Seconds since the last analysis round (-1: none yet)", value=lag)
                yield GaugeMetricFamily("netvigil_analysis_up", "1 when analysis runs",
                                        value=0 if pump.error else 1)
                yield GaugeMetricFamily("netvigil_quarantined_measurements",
                                        "Measurements the analysis set aside (GET /api/v1/quarantine)",
                                        value=pump.quarantined)
                guard = getattr(nv, "connections", None)  # per-client limits (collector/connections.py)
                if guard is not None:
                    yield GaugeMetricFamily("netvigil_connections_open", "Open client connections",
                                            value=len(guard.live))
                    yield GaugeMetricFamily("netvigil_connections_refused", "Connections refused over the "
                                            "per-address cap since start", value=guard.refused)
                    yield GaugeMetricFamily("netvigil_connections_timed_out", "Connections cut off for slow "
                                            "headers, body or reading since start", value=guard.timed_out)

        self.registry.register(_State())

    def render(self) -> bytes:
        return generate_latest(self.registry)
