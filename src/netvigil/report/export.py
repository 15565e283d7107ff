"""Exports of the API's lists (verdicts, aggregates, incidents, status) as JSONL, CSV or Parquet.

Parquet is written with pyarrow from the records (model/records.py), with a schema derived
from their msgspec types, so it keeps the types a user of OONI data expects: times are
`timestamp[s, UTC]`, lists are lists, nested records are structs, counts per class are maps.
ClickHouse's own `FORMAT Parquet` is not used: it exports storage types (LowCardinality,
DateTime as UInt32 on older servers) and is missing on 18.x servers (docs/decisions.md).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from typing import Any

import msgspec

from netvigil.errors import UsageError
from netvigil.model.records import AggregateRow, Incident, StatusRow, Verdict
from netvigil.model.times import FORMAT

KINDS = {"verdicts": Verdict, "aggregates": AggregateRow, "incidents": Incident, "status": StatusRow}
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
# string fields that hold a UTC time "YYYY-MM-DD HH:MM:SS"
TIME_FIELDS = frozenset({"measurement_start_time", "bucket", "start", "end", "since", "last_measurement", "at"})
# extra columns the API adds to a kind's records
EXTRA = {"incidents": {"text": str, "as_of": str}}


# ---- CSV and JSONL ---------------------------------------------------------------------
def _cell(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return msgspec.json.encode(v).decode()
    return "" if v is None else v


def to_csv(rows: list[dict]) -> str:
    """CSV with a header; cells holding lists/objects are JSON."""
    if not rows:
        return ""
    fields = list(rows[0].keys())
    for r in rows[1:]:
        fields.extend(k for k in r if k not in fields)
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: _cell(v) for k, v in r.items()})
    return out.getvalue()


def to_jsonl(rows: list[dict]) -> bytes:
    enc = msgspec.json.Encoder()
    return b"".join(enc.encode(r) + b"\n" for r in rows)


# ---- Parquet ---------------------------------------------------------------------------
def _arrow_type(t: Any, name: str):
    import pyarrow as pa

    ti = msgspec.inspect
    if isinstance(t, ti.UnionType):  # X | None: nullable X
        inner = [x for x in t.types if not isinstance(x, ti.NoneType)]
        return _arrow_type(inner[0], name) if len(inner) == 1 else pa.string()
    if isinstance(t, ti.StrType):
        return pa.timestamp("s", tz="UTC") if name in TIME_FIELDS else pa.string()
    if isinstance(t, ti.BoolType):
        return pa.bool_()
    if isinstance(t, ti.IntType):
        return pa.int64()
    if isinstance(t, ti.FloatType):
        return pa.float64()
    if isinstance(t, (ti.ListType, ti.SetType, ti.FrozenSetType, ti.VarTupleType)):
        if name == "techniques" and isinstance(t.item_type, (ti.DictType, ti.AnyType)):
            # NetworkSpan.techniques: how the technique changed, [{"technique", "start", "end",
            # "rate_bps"}] (the rate measured for a throttling span, null otherwise)
            return pa.list_(pa.struct([("technique", pa.string()), ("start", pa.timestamp("s", tz="UTC")),
                                       ("end", pa.timestamp("s", tz="UTC")), ("rate_bps", pa.float64())]))
        return pa.list_(_arrow_type(t.item_type, ""))
    if isinstance(t, ti.DictType) and isinstance(t.key_type, ti.StrType) and not isinstance(t.value_type, ti.AnyType):
        return pa.map_(pa.string(), _arrow_type(t.value_type, ""))
    if isinstance(t, ti.StructType):
        return pa.struct([(f.encode_name, _arrow_type(f.type, f.encode_name)) for f in t.fields])
    return pa.string()  # anything untyped: its JSON text


def arrow_schema(kind: str):
    import pyarrow as pa

    info = msgspec.inspect.type_info(KINDS[kind])
    fields = [pa.field(f.encode_name, _arrow_type(f.type, f.encode_name)) for f in info.fields]
    fields += [pa.field(k, pa.string()) for k in EXTRA.get(kind, {})]
    return pa.schema(fields)


def _time(value: str, where: str) -> datetime:
    text = value.strip().replace("T", " ").removesuffix("Z")[:19]
    try:
        return datetime.strptime(text, FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise UsageError(f"{value[:40]!r} is not a UTC time 'YYYY-MM-DD HH:MM:SS'", where=where) from None


def _convert(value: Any, typ, where: str) -> Any:
    """A JSON-shaped value into what pyarrow takes for `typ`."""
    import pyarrow as pa

    if value is None:
        return None
    if pa.types.is_timestamp(typ):
        return _time(value, where)
    if pa.types.is_map(typ):
        return [(k, _convert(v, typ.item_type, where)) for k, v in value.items()]
    if pa.types.is_list(typ):
        return [_convert(v, typ.value_type, where) for v in value]
    if pa.types.is_struct(typ):
        return {typ.field(i).name: _convert(value.get(typ.field(i).name), typ.field(i).type, where)
                for i in range(typ.num_fields)}
    if pa.types.is_string(typ) and not isinstance(value, str):
        return msgspec.json.encode(value).decode()
    return value


def _column(kind: str, name: str, typ, rows: list[dict]):
    """One column as an arrow array: times parsed by arrow (vectorised), plain values taken as
    they are, nested values (maps, structs) converted row by row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = [r.get(name) for r in rows]
    if pa.types.is_timestamp(typ):
        text = pc.utf8_slice_codeunits(pc.replace_substring(pa.array(values, pa.string()), "T", " "), 0, 19)
        try:
            return pc.strptime(text, format=FORMAT, unit="s").cast(typ)
        except pa.ArrowInvalid:  # name the bad value
            return pa.array([_convert(v, typ, f"{kind}[{i}].{name}") for i, v in enumerate(values)], typ)
    plain = (pa.types.is_string(typ) or pa.types.is_boolean(typ) or pa.types.is_integer(typ)
             or pa.types.is_floating(typ) or (pa.types.is_list(typ) and pa.types.is_string(typ.value_type)))
    if plain:
        try:
            return pa.array(values, typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # e.g. an object in a text column: its JSON, below
    return pa.array([_convert(v, typ, f"{kind}[{i}].{name}") for i, v in enumerate(values)], typ)


def to_parquet(kind: str, rows: list[dict]) -> bytes:
    """Parquet bytes of `rows` (msgspec.to_builtins of the kind's records, plus EXTRA columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(kind)
    table = pa.Table.from_arrays([_column(kind, f.name, f.type, rows) for f in schema], schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def render(kind: str, rows: list[dict], fmt: str) -> bytes:
    """The rows of one list as an export file in `fmt` (jsonl, csv or parquet)."""
    if fmt == "parquet":
        return to_parquet(kind, rows)
    if fmt == "csv":
        return to_csv(rows).encode()
    if fmt in ("jsonl", "json"):
        return to_jsonl(rows)
    raise UsageError(f"format is {fmt[:20]!r}, expected parquet, csv or jsonl")
