"""The tables (ClickHouse SQL, one text for chdb and server). Everything in TABLES is derived
from the raw archive and can be dropped and rebuilt (`netvigil rebuild`).

`voices` is not: it says who sent each measurement that came through the collector (probe id,
/24 or /64, trust, claim check; from DATA_DIR/collector/provenance.jsonl, analysis/incidents/quorum.py),
which the raw archive does not hold, so a rebuild keeps it. A verdict's voice is its uid's row;
a measurement with no row never came through the collector (the operator's own import)."""

from __future__ import annotations

from netvigil.store.engine import Engine, sql_str

# columns added after the first release: name -> type (a store made before has them added on
# opening, `add_missing_columns`, and their values written again from each row's body)
_KEY_COLUMNS = {"asns": "Array(String)", "techniques": "Array(String)"}
ADDED = {"incidents": _KEY_COLUMNS, "unconfirmed_incidents": _KEY_COLUMNS}
_KEY_COLUMNS_SQL = "".join(f", {c} {t}" for c, t in _KEY_COLUMNS.items())

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
    # `asns`, `techniques`: what is inside `body` that a read filters on (analysis/reads.py),
    # so a network's incidents are selected in the store, not decoded and dropped in Python
    "incidents": """
        id String, country LowCardinality(String), service LowCardinality(String), kind LowCardinality(String),
        start DateTime('UTC'), end Nullable(DateTime('UTC')), body String, version UInt64""" + _KEY_COLUMNS_SQL + """
    """,
    # incidents the quorum gate keeps unpublished (analysis/incidents/quorum.py); same columns
    "unconfirmed_incidents": """
        id String, country LowCardinality(String), service LowCardinality(String), kind LowCardinality(String),
        start DateTime('UTC'), end Nullable(DateTime('UTC')), body String, version UInt64""" + _KEY_COLUMNS_SQL + """
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


def add_missing_columns(engine: Engine) -> list[str]:
    """Add the ADDED columns a store made by an older version lacks (plain ALTER TABLE ADD
    COLUMN: every engine from 18.16 takes it); returns the tables that got any, whose rows
    then read the new columns' defaults until written again (AnalysedStore does that)."""
    db = engine.database
    have: dict[str, set[str]] = {}
    for r in engine.query(f"SELECT table, name FROM system.columns WHERE database = {sql_str(db)}"):
        have.setdefault(r["table"], set()).add(r["name"])
    changed = []
    for table, cols in ADDED.items():
        missing = [c for c in cols if c not in have.get(table, cols)]
        for c in missing:
            engine.execute(f"ALTER TABLE {db}.{table} ADD COLUMN {c} {cols[c]}")
        if missing:
            changed.append(table)
    return changed


def drop_tables(engine: Engine) -> None:
    for name in TABLES:
        engine.execute(f"DROP TABLE IF EXISTS {engine.database}.{name}")
