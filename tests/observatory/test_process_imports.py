"""Each process of the service imports only what it uses.

A `netvigil serve` is three processes (the web app, the analysis process, the judge worker)
and every start pays each one's imports: fastapi alone is ~0.8 s of CPU, httpx ~0.3 s, numpy
~0.3 s. The analysis process and the judge worker serve no HTTP; the web app sends HTTP only
to deliver alerts, and numpy is the collector's once it holds fingerprints (dedup.py). Each
process below runs for real in a fresh interpreter and prints the modules it loaded; a
module-level import that drags a web framework in again fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WEB = {"fastapi", "starlette", "uvicorn", "httpx", "httpcore", "pydantic", "altair"}


def loaded(code: str, cwd: Path) -> tuple[set[str], bytes]:
    """Top-level names of the modules a fresh interpreter holds after CODE (printed as the
    last line of stderr: the judge worker's stdout is its protocol), and its stdout."""
    code += "\nimport sys, json\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)"
    r = subprocess.run([sys.executable, "-c", code], cwd=cwd, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=300)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err[-2000:]
    return set(json.loads(err.strip().splitlines()[-1])), r.stdout


def test_the_judge_worker_imports_no_web_framework_nor_the_store(tmp_path):
    (tmp_path / "log").mkdir()
    # its own main, as `python -m netvigil.observatory.judge_worker LOG_DIR` runs it: loads the
    # rules, says Ready, reads EOF on stdin and returns
    mods, out = loaded(f"from netvigil.observatory.judge_worker import main\nassert main([{str(tmp_path / 'log')!r}]) == 0",
                       tmp_path)
    assert b"ready" in out[:16] and "msgspec" in mods, "the worker ran and said Ready"
    # nor the analysis process's side (pump_process: asyncio, multiprocessing, the read side)
    unused = WEB | {"numpy", "chdb", "pyarrow", "typer", "rich", "asyncio", "multiprocessing"}
    assert not mods & unused, sorted(mods & unused)


def test_the_analysis_process_imports_no_web_framework(tmp_path):
    # the child's own function on a fresh data dir, with a pipe whose other end asks it to
    # stop: it opens the store (and starts its judge worker on 2+ cores), says ready, stops
    code = f"""
import multiprocessing
from netvigil.observatory.pump_process import _child
parent, child = multiprocessing.Pipe()
parent.send(("stop",))
_child({str(tmp_path / 'data')!r}, "chdb", 1.0, 1000, child)
assert parent.recv() == ("ready",)
"""
    mods, _ = loaded(code, tmp_path)
    assert "chdb" in mods, "the probe saw the store opened"
    assert not mods & WEB, sorted(mods & WEB)
    # chdb's own import of pyarrow (its Arrow outputs, unused) is skipped: store/chdb_import.py
    assert not mods & {"pyarrow", "numpy"}, sorted(mods & {"pyarrow", "numpy"})


def test_an_embedded_store_works_without_pyarrow_which_stays_importable(tmp_path):
    code = f"""
import sys
from pathlib import Path
from netvigil.store.engine import ChdbEngine
engine = ChdbEngine(Path({str(tmp_path / 'store')!r}))
engine.execute(f"CREATE TABLE {{engine.database}}.t (x UInt32) ENGINE = MergeTree ORDER BY x")
engine.insert("t", [{{"x": 1}}, {{"x": 2}}])
assert engine.query(f"SELECT sum(x) AS s FROM {{engine.database}}.t") == [{{"s": 3}}]
assert "pyarrow" not in sys.modules
import pyarrow  # report/export.py writes Parquet with it in the same process
assert pyarrow.table({{"x": [1]}}).num_rows == 1
engine.close()
"""
    mods, _ = loaded(code, tmp_path)
    assert {"chdb", "pyarrow"} <= mods


def test_the_web_app_loads_httpx_and_numpy_only_when_it_uses_them(tmp_path):
    code = f"""
from pathlib import Path
from netvigil.observatory.app import create_app
create_app(Path({str(tmp_path / 'data')!r}))
"""
    mods, _ = loaded(code, tmp_path)
    assert "fastapi" in mods, "the probe saw the app built"
    assert not mods & {"httpx", "httpcore", "numpy", "altair"}, sorted(mods & {"httpx", "httpcore", "numpy", "altair"})


def test_the_cli_loads_no_web_framework_before_a_command_runs(tmp_path):
    # every command registered, as `netvigil --help` has them: each imports its heavy parts
    # when it runs
    mods, _ = loaded("import netvigil.cli\nnetvigil.cli._register()", tmp_path)
    assert "typer" in mods
    assert not mods & (WEB | {"numpy", "chdb"}), sorted(mods & (WEB | {"numpy", "chdb"}))


def test_the_web_app_warms_the_chart_renderer_only_when_it_can_draw(tmp_path, monkeypatch):
    """The warm-up (altair, the renderer's V8: ~1 s of CPU) runs with the first app of a
    process; with the analysis off no read is answered, so no chart is drawn and it is
    skipped; a second app finds the renderer warm."""
    import threading

    from fastapi.testclient import TestClient

    import netvigil.report.chart as chart
    from netvigil.observatory.app import create_app
    from netvigil.report import read_http

    warmed: list[str] = []
    monkeypatch.setattr(chart, "warm_up", lambda: warmed.append(threading.current_thread().name))
    monkeypatch.setattr(read_http, "_warming", threading.Event())  # as in a fresh process
    for name, settings in (("off", {"analysis": False}), ("on", {"analysis_process": False}),
                           ("again", {"analysis_process": False})):
        app = create_app(tmp_path / name, **settings)
        with TestClient(app) as c:
            assert c.get("/api/v1/health").status_code == 200
            for t in threading.enumerate():
                if t.name == "netvigil-chart-warm-up":
                    t.join(timeout=60)
        assert warmed == ([] if name == "off" else ["netvigil-chart-warm-up"]), name  # once


def test_pyarrow_is_hidden_from_the_importing_thread_only():
    """While chdb is imported, another thread importing pyarrow (or anything) is neither
    refused nor made to wait."""
    import threading

    import pytest

    from netvigil.store.chdb_import import _HiddenHere

    hidden = _HiddenHere()
    with pytest.raises(ModuleNotFoundError, match="pyarrow"):
        hidden.find_spec("pyarrow")
    with pytest.raises(ModuleNotFoundError):
        hidden.find_spec("pyarrow.lib")
    assert hidden.find_spec("pyarrowish") is None and hidden.find_spec("numpy") is None
    elsewhere: list = []
    t = threading.Thread(target=lambda: elsewhere.append(hidden.find_spec("pyarrow")))
    t.start()
    t.join()
    assert elsewhere == [None]
