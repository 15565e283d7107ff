"""Parquet (and CSV/JSONL) exports from the API and the CLI, read back with pyarrow and
compared with the JSON export of the same list, filters and page.

The store holds the recorded lab run russia-2022 (tests/data/lab)."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from datetime import timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from netvigil.analysis.analysed_store import AnalysedStore
from netvigil.observatory.app import create_app
from netvigil.ingest.ooni import read_measurements
from netvigil.report.export import PARQUET_MEDIA_TYPE
from tests.clirun import CliResult, run_cli
from tests.conftest import ready_client

LAB_RUN = Path(__file__).resolve().parent.parent / "data" / "lab" / "russia-2022" / "measurements.jsonl.zst"
NETVIGIL = str(Path(sys.executable).parent / "netvigil")
UTC_TS = pa.timestamp("ms", tz="UTC")  # Parquet keeps seconds as milliseconds


def from_parquet_rows(data: bytes) -> list[dict]:
    """Read Parquet back into JSON-shaped rows (times as 'YYYY-MM-DD HH:MM:SS', maps as dicts):
    what the JSON export gives, for round-trip checks."""

    def back(v: Any, typ) -> Any:
        if v is None:
            return None
        if pa.types.is_timestamp(typ):
            return v.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        if pa.types.is_map(typ):
            return {k: back(x, typ.item_type) for k, x in v}
        if pa.types.is_list(typ):
            return [back(x, typ.value_type) for x in v]
        if pa.types.is_struct(typ):
            return {typ.field(i).name: back(v.get(typ.field(i).name), typ.field(i).type) for i in range(typ.num_fields)}
        return v

    table = pq.read_table(io.BytesIO(data))
    types = {f.name: f.type for f in table.schema}
    return [{k: back(v, types[k]) for k, v in r.items()} for r in table.to_pylist()]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("export-store")
    with AnalysedStore(d) as obs:
        obs.add(list(read_measurements([LAB_RUN])))
        obs.refresh()
    return d


@pytest.fixture(scope="module")
def cli_store(store, tmp_path_factory):
    """A copy for the CLI (its raw archive: the tables are derived again on opening), so the
    CLI reads a store the running app does not hold."""
    d = tmp_path_factory.mktemp("export-cli") / "store"
    shutil.copytree(store / "raw", d / "raw")
    return d


def cli(*args: str) -> CliResult:
    """`netvigil ARGS` in this process (tests/clirun.py); test_cli_export_exit_status is the subprocess."""
    return run_cli(*args)


@pytest.fixture(scope="module")
def client(store):
    """The API over the store, its analysis as a thread (the export is the point, not the
    analysis process: tests/test_fuzz_all_routes.py serves every route through that)."""
    with ready_client(create_app(store, analysis_process=False, analysis_interval=0.2)) as c:
        yield c


def get_json(client, path, **params) -> dict:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def get_parquet(client, path, **params) -> tuple[pa.Table, list[dict], dict]:
    r = client.get(path, params={**params, "format": "parquet"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == PARQUET_MEDIA_TYPE
    assert r.headers["content-disposition"].endswith('.parquet"')
    return pq.read_table(io.BytesIO(r.content)), from_parquet_rows(r.content), r.headers


@pytest.mark.parametrize("path,params", [
    ("/api/v1/verdicts", {"country": "RU", "service": "twitter", "limit": 50, "offset": 10}),
    ("/api/v1/verdicts", {"asn": "AS8359", "since": "2022-02-26 10:00", "until": "2022-02-26 12:00", "limit": 1000}),
    ("/api/v1/aggregates", {"country": "RU", "bucket": "1h"}),
    ("/api/v1/aggregates", {"service": "facebook", "bucket": "10m", "limit": 7, "offset": 3}),
    ("/api/v1/incidents", {"country": "RU"}),
    ("/api/v1/status", {"country": "RU", "service": "twitter"}),
])
def test_parquet_equals_json_export(client, path, params):
    want = get_json(client, path, **params)
    table, rows, headers = get_parquet(client, path, **params)
    assert want["results"], "the filter must select something for the comparison to mean anything"
    assert rows == want["results"]
    if "metadata" in want:
        assert ("link" in headers) == (want["metadata"]["next_url"] is not None)


def test_parquet_types(client):
    v, rows, _ = get_parquet(client, "/api/v1/verdicts", country="RU", limit=100)
    assert v.schema.field("measurement_start_time").type == UTC_TS
    assert v.schema.field("rule_ids").type == pa.list_(pa.string())
    assert v.schema.field("confidence").type == pa.float64() and v.schema.field("confirmed").type == pa.bool_()
    assert any(r["rule_ids"] for r in rows)
    a, _, _ = get_parquet(client, "/api/v1/aggregates", country="RU")
    assert a.schema.field("bucket").type == UTC_TS
    assert pa.types.is_map(a.schema.field("counts").type) and a.schema.field("total").type == pa.int64()
    i, irows, _ = get_parquet(client, "/api/v1/incidents")
    net = i.schema.field("networks").type.value_type
    assert net.field("start").type == UTC_TS and net.field("techniques").type.value_type.field("end").type == UTC_TS
    assert {r["service"] for r in irows} >= {"twitter", "facebook"} and all(r["text"] for r in irows)


def test_paging_link_walks_every_page(client):
    everything = get_json(client, "/api/v1/verdicts", country="RU", limit=10000)["results"]
    got, params = [], {"country": "RU", "limit": 100}
    for _ in range(20):
        _, rows, headers = get_parquet(client, "/api/v1/verdicts", **params)
        got += rows
        if "link" not in headers:
            break
        nxt = headers["link"].split(";")[0].strip("<>")
        params = dict(p.split("=", 1) for p in nxt.split("?", 1)[1].split("&"))
        params.pop("format")
    assert len(everything) > 200 and got == everything


@pytest.mark.parametrize("path,fmt", [("/api/v1/verdicts", "xml"), ("/api/v1/incidents", "PARQUET"),
                                      ("/api/v1/status", "xlsx"), ("/api/v1/measurements", "parquet")])
def test_bad_format_is_a_400_naming_it(client, path, fmt):
    r = client.get(path, params={"format": fmt})
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert "'format'" in detail and fmt in detail and "\n" not in detail


@pytest.mark.parametrize("bucket", ["0m", "000h", "5x", "10000d", "1w"])
def test_bad_bucket_is_a_400_naming_it(client, bucket):
    r = client.get("/api/v1/aggregates", params={"bucket": bucket})
    assert r.status_code == 400
    assert "'bucket'" in r.json()["detail"] and bucket in r.json()["detail"]


def test_cli_export_each_format_matches_the_api(client, cli_store, tmp_path):
    want = get_json(client, "/api/v1/verdicts", country="RU", service="facebook", limit=10000)["results"]
    for fmt in ("parquet", "csv", "jsonl"):
        out = tmp_path / f"v.{fmt}"
        r = cli("export", "verdicts", "--store", str(cli_store), "--format", fmt, "--out", str(out),
                "--country", "RU", "--service", "facebook")
        assert r.returncode == 0, r.stderr
        assert f"{len(want)} verdicts row(s) written" in r.stderr
        if fmt == "parquet":
            assert from_parquet_rows(out.read_bytes()) == want
        elif fmt == "jsonl":
            assert [json.loads(line) for line in out.read_text().splitlines()] == want
        else:
            lines = out.read_text().splitlines()
            assert lines[0].startswith("measurement_uid,") and len(lines) == len(want) + 1
    inc = tmp_path / "i.parquet"
    r = cli("export", "incidents", "--store", str(cli_store), "--out", str(inc), "--limit", "1", "--offset", "1")
    assert r.returncode == 0, r.stderr
    assert from_parquet_rows(inc.read_bytes()) == get_json(client, "/api/v1/incidents", limit=1, offset=1)["results"]


@pytest.mark.parametrize("args,words", [
    (["verdicts", "--format", "xml"], "unknown format 'xml'"),
    (["tables", "--format", "csv"], "unknown list 'tables'"),
    (["verdicts", "--since", "yesterday"], "option --since is 'yesterday'"),
    (["aggregates", "--bucket", "1w"], "bad bucket '1w'"),
    (["aggregates", "--bucket", "0m"], "bad bucket '0m'"),
])
def test_cli_export_bad_arguments_are_one_line(cli_store, tmp_path, args, words):
    r = cli("export", *args[:1], "--store", str(cli_store), "--out", str(tmp_path / "x"), *args[1:])
    err = r.stderr.strip()
    assert r.returncode == 2 and words in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_cli_export_exit_status(cli_store, tmp_path):
    """The installed command, in its own process: exit status 2 and one line for a bad argument."""
    r = subprocess.run([NETVIGIL, "export", "verdicts", "--store", str(cli_store), "--out", str(tmp_path / "x"),
                        "--format", "xml"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "unknown format 'xml'" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def test_parquet_of_odd_rows():
    """Times with a T and Z, missing optional values, an object where text is expected; a time
    that is not one is an error naming the row and column."""
    from netvigil.errors import UsageError
    from netvigil.report.export import to_parquet

    base = {"measurement_uid": "u1", "measurement_start_time": "2022-02-26T09:00:00Z", "probe_cc": "RU",
            "probe_asn": "AS1", "service": None, "input": {"odd": 1}, "domain": None, "class": "ok"}
    back = from_parquet_rows(to_parquet("verdicts", [base]))
    assert back[0]["measurement_start_time"] == "2022-02-26 09:00:00"
    assert back[0]["input"] == '{"odd":1}' and back[0]["service"] is None and back[0]["rule_ids"] is None
    with pytest.raises(UsageError, match=r"verdicts\[1\]\.measurement_start_time: 'soon' is not a UTC time"):
        to_parquet("verdicts", [base, {**base, "measurement_start_time": "soon"}])


def _help_text(r: CliResult) -> str:
    """The help as one line of words (rich's box and wrapping taken out)."""
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", r.stdout).split())


def test_export_help_names_where_each_command_keeps_its_store(tmp_path):
    """The --store help says where serve, demo and analyse put the store; serve's is checked
    against the path the observatory really opens on a new DATA_DIR (the demo's,
    DEMO/observatory, is exported in tests/deploy/test_wheel_demo.py)."""
    from netvigil.observatory.analyser import store_dir

    r = cli("export", "--help")
    assert r.returncode == 0, r.stderr
    words = _help_text(r)
    assert "DIR of 'netvigil analyse FILES --store DIR'" in words
    assert "DEMO/observatory of 'netvigil demo --out DEMO'" in words
    assert "DATA_DIR/store of 'netvigil serve --data-dir DATA_DIR'" in words
    assert store_dir(tmp_path / "DATA_DIR") == tmp_path / "DATA_DIR" / "store"
    demo = cli("demo", "--help")
    assert "--out" in demo.stdout and "--store" in cli("analyse", "--help").stdout


def test_cli_export_takes_a_serve_data_dir(cli_store, tmp_path):
    """`--store DATA_DIR` of a `netvigil serve` exports its DATA_DIR/store, as the help says."""
    data_dir = tmp_path / "obs"
    shutil.copytree(cli_store / "raw", data_dir / "store" / "raw")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    r = cli("export", "incidents", "--store", str(data_dir), "--format", "jsonl", "--out", str(a))
    assert r.returncode == 0, r.stderr
    r = cli("export", "incidents", "--store", str(cli_store), "--format", "jsonl", "--out", str(b))
    assert r.returncode == 0, r.stderr
    assert a.read_text() == b.read_text() and a.read_text().count("\n") >= 1
