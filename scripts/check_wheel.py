"""Fail when a built wheel lacks a file that git tracks under src/ (package data forgotten).

setuptools only ships data files that match `[tool.setuptools.package-data]`, so a new kind
of data file (a .txt list, a .parquet) is silently left out of the wheel while the editable
install keeps working. Usage: python scripts/check_wheel.py dist/netvigil-X-py3-none-any.whl
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def tracked_sources() -> set[str]:
    """Files git tracks under src/, as paths inside the wheel (src/ stripped)."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "src"], capture_output=True, text=True, check=True
    ).stdout
    return {line.removeprefix("src/") for line in out.splitlines() if line}


def wheel_files(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return {n for n in z.namelist() if ".dist-info/" not in n and not n.endswith("/")}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_wheel.py WHEEL", file=sys.stderr)
        return 2
    wheel = Path(argv[0])
    missing = sorted(tracked_sources() - wheel_files(wheel))
    if missing:
        print(f"check_wheel: {wheel.name} lacks {len(missing)} tracked file(s) under src/:", file=sys.stderr)
        for name in missing:
            print(f"  {name}", file=sys.stderr)
        print("add their extension to [tool.setuptools.package-data] in pyproject.toml", file=sys.stderr)
        return 1
    print(f"check_wheel: {wheel.name} holds every file git tracks under src/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
