"""The wheel carries every data file the code reads (scripts/wheel_smoke.sh builds and runs
it; these are the fast checks): every file git tracks under src/ matches the package-data
patterns, and scripts/check_wheel.py refuses a wheel that lacks one, or lacks LICENSE, NOTICE
or the licence expression."""

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


def write_wheel(path, files, *, licences=("LICENSE", "NOTICE"), expression="BSD-3-Clause"):
    """A wheel-shaped zip: FILES (empty), the licence files as in the repository, METADATA."""
    with zipfile.ZipFile(path, "w") as z:
        for name in files:
            z.writestr(name, b"")
        for name in licences:
            z.writestr(f"netvigil-0.dist-info/licenses/{name}", (REPO / name).read_bytes())
        z.writestr("netvigil-0.dist-info/METADATA", f"Metadata-Version: 2.4\nName: netvigil\n"
                                                    f"License-Expression: {expression}\n")
        z.writestr("netvigil-0.dist-info/RECORD", b"")


def test_the_licence_is_declared_once_and_shipped():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause"
    assert "BSD 3-Clause License" in (REPO / "LICENSE").read_text()
    assert set(project["license-files"]) == {"LICENSE", "NOTICE"}


def test_check_wheel_refuses_a_wheel_without_notice_or_licence_expression(tmp_path):
    files = [p.removeprefix("src/") for p in tracked_src()]
    no_notice, wrong_expr = tmp_path / "no_notice.whl", tmp_path / "wrong_expr.whl"
    write_wheel(no_notice, files, licences=("LICENSE",))
    write_wheel(wrong_expr, files, expression="MIT")
    a, b = run_check(no_notice), run_check(wrong_expr)
    assert a.returncode == 1 and "no NOTICE" in a.stderr and "no LICENSE" not in a.stderr
    assert b.returncode == 1 and "License-Expression: BSD-3-Clause" in b.stderr


def test_check_wheel_names_a_missing_file_and_accepts_a_complete_wheel(tmp_path):
    files = [p.removeprefix("src/") for p in tracked_src()]
    complete, partial = tmp_path / "complete.whl", tmp_path / "partial.whl"
    write_wheel(complete, files)
    missing = next(n for n in files if n.endswith("bogons.txt"))
    with zipfile.ZipFile(partial, "w") as z:
        for name in files:
            if name != missing:
                z.writestr(name, b"")
    ok, bad = run_check(complete), run_check(partial)
    assert ok.returncode == 0, ok.stderr
    assert bad.returncode == 1 and missing in bad.stderr and "package-data" in bad.stderr
