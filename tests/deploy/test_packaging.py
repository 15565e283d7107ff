"""The wheel carries every data file the code reads (scripts/wheel_smoke.sh builds and runs
it; these are the fast checks): every file git tracks under src/ matches the package-data
patterns, and scripts/check_wheel.py refuses a wheel that lacks one."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
import zipfile

from tests.conftest import REPO

CHECK_WHEEL = REPO / "scripts" / "check_wheel.py"


def tracked_src() -> list[str]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "src"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line]


def test_every_tracked_data_file_matches_the_package_data_patterns():
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    data = [p for p in tracked_src() if not p.endswith(".py")]
    assert any(p.endswith("bogons.txt") for p in data)  # the file a wheel once lacked
    left_out = [p for p in data if not any(fnmatch.fnmatch(p.rsplit("/", 1)[-1], pat) for pat in patterns)]
    assert left_out == []


def test_version_has_one_source():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]


def run_check(wheel) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK_WHEEL), str(wheel)], capture_output=True, text=True, timeout=60)


def test_check_wheel_names_a_missing_file_and_accepts_a_complete_wheel(tmp_path):
    files = [p.removeprefix("src/") for p in tracked_src()]
    complete, partial = tmp_path / "complete.whl", tmp_path / "partial.whl"
    with zipfile.ZipFile(complete, "w") as z:
        for name in files:
            z.writestr(name, b"")
        z.writestr("netvigil-0.dist-info/RECORD", b"")
    missing = next(n for n in files if n.endswith("bogons.txt"))
    with zipfile.ZipFile(partial, "w") as z:
        for name in files:
            if name != missing:
                z.writestr(name, b"")
    ok, bad = run_check(complete), run_check(partial)
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode == 1 and missing in bad.stderr and "package-data" in bad.stderr
