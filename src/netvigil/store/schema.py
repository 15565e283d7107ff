"""The tables (ClickHouse SQL, one text for chdb and server). Everything in TABLES is derived
from the raw archive and can be dropped and rebuilt (`netvigil rebuild`).

`voices` is not: it says who sent each measurement that came through the collector (probe id,
/24 or /64, trust, claim check; from DATA_DIR/collector/provenance.jsonl, analysis/incidents/quorum.py),
which the raw archive does not hold, so a rebuild keeps it. A verdict's voice is its uid's row;
a measurement with no row never came through the collector (the operator's own import)."""

from __future__ import annotations

from netvigil.store.engine import Engine

TABLES = {
    "measurements": """
        uid String, time DateTime('UTC'), day Date, cc LowCardinality(String), asn LowCardinality(String),
        network_name String, test_name LowCardinality(String), service LowCardinality(String),
        input String, path LowCardinality(String), report_id String
    """,
    "verdicts": """
        uid String, time DateTime('UTC'), cc LowCardinality(String), asn LowCardinality(String),
        network_name String, service LowCardinality(String), input String, domain String,
        class LowCardinality(String), technique LowCardinality(String), confidence Float32,
        confirmed UInt8, rule_ids Array(String), rules_version LowCardinality(String),
        rate_bps Nullable(Float64), baseline_ratio Nullable(Float64), path LowCardinality(String),
        report_id String
    """,
    "incidents": """
        id String, country LowCardinality(String), service LowCardinality(String), kind LowCardinality(String),
        start DateTime('UTC'), end Nullable(DateTime('UTC')), body String, version UInt64
    """,
    # incidents the quorum gate keeps unpublished (analysis/incidents/quorum.py); same columns
    "unconfirmed_incidents": """
        id String, country LowCardinality(String), service LowCardinality(String), kind LowCardinality(String),
        start DateTime('UTC'), end Nullable(DateTime('UTC')), body String, version UInt64
    """,
}

# kept across rebuilds (not derived from the raw archive)
KEPT = {
    "voices": """
        uid String, probe_id String, network String, trusted UInt8, claim LowCardinality(String)
    """,
}

ORDER = {
    "measurements": "ORDER BY (uid)",
    "verdicts": "ORDER BY (cc, asn, service, time, uid)",
    "incidents": "ORDER BY (country, service, id)",
    "unconfirmed_incidents": "ORDER BY (country, service, id)",
    "voices": "ORDER BY (uid)",
}

ENGINES = {
    "measurements": "ReplacingMergeTree",
    "verdicts": "ReplacingMergeTree",
    "incidents": "ReplacingMergeTree(version)",
    "unconfirmed_incidents": "ReplacingMergeTree(version)",
    "voices": "ReplacingMergeTree",  # the last row of a uid wins (its provenance, once known)
}


def create_tables(engine: Engine) -> None:
    db = engine.database
    for name, cols in {**TABLES, **KEPT}.items():
        engine.execute(f"CREATE TABLE IF NOT EXISTS {db}.{name} ({cols}) ENGINE = {ENGINES[name]} {ORDER[name]}")


def drop_tables(engine: Engine) -> None:
    for name in TABLES:
        engine.execute(f"DROP TABLE IF EXISTS {engine.database}.{name}")
