"""Shared test fixtures.

Lab and browser tests need root, Linux network namespaces and some binaries. Outside CI a
missing prerequisite skips them; under CI=true it FAILS them, so a CI machine that lost
its set-up cannot pass green.
"""

from __future__ import annotations

import contextlib
import gc
import ipaddress
import os
import resource
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_DATA = Path(__file__).resolve().parent / "data"
THIRD_PARTY = TEST_DATA / "third_party"

IN_CI = os.environ.get("CI", "").lower() == "true"

# Bytecode is written (git ignores __pycache__). `uv pip install` (scripts/install.sh) puts no
# .pyc in .venv, and with PYTHONDONTWRITEBYTECODE set, as on the shared machines, every
# process compiled every module it imported (fastapi, pydantic, numpy, ... and src/) on every
# start: ~1 s of CPU per `netvigil` process (serve's web and analysis processes, the judge
# worker, each CLI subprocess). Modules imported from here on are written once; the children
# started by tests (their environment is os.environ) read them and write what they add.
# Before hypothesis is imported: pytest rewrites the asserts of every module of a package that
# has a pytest plugin (hypothesis' ~70 modules), and caches the result only when bytecode is
# written: imported above this line, hypothesis was parsed, rewritten and compiled again at
# every pytest start (~0.5 s of CPU).
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

from hypothesis import settings  # noqa: E402  (after the two lines above: see there)

# Every hypothesis fuzzer is derandomised and keeps no example database: the same examples
# on every run and machine, so a run's time and result repeat (each test sets max_examples).
settings.register_profile("netvigil", derandomize=True, database=None)
settings.load_profile("netvigil")


def _local_names() -> set[str]:
    names = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", socket.gethostname()}
    with contextlib.suppress(OSError):
        for line in Path("/etc/hosts").read_text().splitlines():
            names.update(line.split("#", 1)[0].split()[1:])
    return {n.lower() for n in names}


_LOCAL_NAMES = _local_names()
_real_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host, *args, **kwargs):
    """Tests never ask the machine's resolver about a real name (house rule 1: no traffic
    leaves this machine, and the resolver is a private address). IP literals, localhost and
    /etc/hosts names resolve as usual; any other name is NXDOMAIN. Tests that need a name
    patch their own resolver."""
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None:
        text = str(name).strip("[]").split("%", 1)[0]
        try:
            ipaddress.ip_address(text)
        except ValueError:
            if text.lower().rstrip(".") not in _LOCAL_NAMES and not text.lower().endswith(".localhost"):
                raise socket.gaierror(socket.EAI_NONAME, f"test guard: no system DNS for {name!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _guarded_getaddrinfo


def missing_or_fail(what: str) -> None:
    """Skip (developer machine) or fail (CI) because a prerequisite is missing."""
    if IN_CI:
        pytest.fail(f"prerequisite missing under CI=true: {what}", pytrace=False)
    pytest.skip(f"prerequisite missing: {what}")


def lab_prerequisites() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    for binary in ("ip", "iptables", "tc", "openvpn"):
        if shutil.which(binary) is None:
            missing.append(binary)
    if not Path("/proc/self/ns/net").exists():
        missing.append("network namespaces")
    return missing


def _write_missing_bytecode() -> None:
    """pytest, its plugins and what they import came in before this file could turn bytecode
    on: with PYTHONDONTWRITEBYTECODE set they were compiled again at every pytest start
    (~0.5 s of CPU: a start with them cached is ~0.6 s, without ~1.1 s). Write their `.pyc`
    once, as the interpreter would have; what pytest rewrites (plugins' packages, tests) has
    its own cache and is left to it."""
    import py_compile

    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)
        origin, cached = getattr(spec, "origin", None), getattr(spec, "cached", None)
        if (not origin or not cached or not origin.endswith(".py") or os.path.exists(cached)
                or type(spec.loader).__name__ == "AssertionRewritingHook"):
            continue
        with contextlib.suppress(OSError, py_compile.PyCompileError):  # e.g. read-only: nothing written
            py_compile.compile(origin, cfile=cached, doraise=True)


def pytest_sessionfinish(session, exitstatus):
    _write_missing_bytecode()


# The cyclic garbage collector walked the whole heap (every imported module, recorded runs
# held by module fixtures and caches) ~25 times in a run of tests/report, store, analysis and
# signals (~0.18 s each, ~4.5 s in all). What collection built is frozen out of its walks, and
# the youngest generation is collected every 20,000 allocations, not 700 (the service's own
# processes collect rarer still: observatory/judge_worker.py GC_THRESHOLD). Nothing here
# relies on when a cycle is freed.
gc.set_threshold(20_000, *gc.get_threshold()[1:])


def pytest_collection_finish(session):
    gc.freeze()


# --- CPU seconds per test: the figure that other work on a shared machine does not stretch ---

_CPU: dict[str, float] = {}  # nodeid -> CPU seconds (in the controller when run with xdist's -n)
_STARTED: dict[str, float] = {}


def _cpu_seconds() -> float:
    """This process (all its threads) plus the children it waited for, user + system."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def pytest_addoption(parser):
    parser.addoption("--cpu-durations", type=int, default=None, metavar="N",
                     help="list the N tests that took the most CPU seconds (0: all), as --durations does "
                          "for wall time, e.g. --cpu-durations=20")


def pytest_runtest_logstart(nodeid, location):
    _STARTED[nodeid] = _cpu_seconds()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """The test's CPU seconds (setup to teardown) ride on its teardown report, so they reach
    the controller from an xdist worker too."""
    report = yield
    if report.when == "teardown" and item.nodeid in _STARTED:
        report.user_properties.append(("cpu_seconds", _cpu_seconds() - _STARTED.pop(item.nodeid)))
    return report


def pytest_runtest_logreport(report):
    for key, value in report.user_properties:
        if key == "cpu_seconds":
            _CPU[report.nodeid] = value


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    n = config.getoption("--cpu-durations")
    if n is None:
        return
    tr = terminalreporter
    tr.write_sep("=", f"CPU seconds: {sum(_CPU.values()):.1f} in {len(_CPU)} tests, "
                      f"{_cpu_seconds():.1f} for the whole pytest run (xdist workers included)")
    for nodeid, seconds in sorted(_CPU.items(), key=lambda kv: -kv[1])[: n or None]:
        tr.write_line(f"{seconds:8.2f}s cpu  {nodeid}")


@pytest.fixture(scope="session")
def lab_ready() -> None:
    """Use in every lab test: fails under CI=true when the lab cannot run."""
    missing = lab_prerequisites()
    if missing:
        missing_or_fail("lab needs " + ", ".join(missing))


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's chromium; fails under CI=true when absent."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        missing_or_fail("Debian's chromium (apt-get install chromium)")
    return path


@pytest.fixture(scope="session")
def third_party() -> Path:
    """tests/data/third_party: real third-party data, trimmed (source, commit, licence in its PROVENANCE.md)."""
    return THIRD_PARTY


@pytest.fixture
def never_serve(monkeypatch):
    """For `serve` run in-process (tests/clirun.py) to test a bad argument: a serve that got
    past its checks fails the test instead of serving forever."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("serve got past its argument checks")

    monkeypatch.setattr("netvigil.observatory.serve.run_observatory", refuse)


@contextlib.contextmanager
def ready_client(app):
    """A TestClient of a netvigil app once its analysis has opened the store (bounded wait)."""
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        deadline = time.monotonic() + 60
        while not app.state.nv.pump.ready and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.nv.pump.ready, app.state.nv.pump.error
        yield c
