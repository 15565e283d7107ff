"""Fail when a built wheel lacks a file that git tracks under src/ (package data forgotten),
or lacks the licence: LICENSE and NOTICE (the third-party data shipped and their licences)
in its .dist-info/licenses/, byte for byte as in the repository, and METADATA's
License-Expression equal to pyproject's `license`. Given the sdist too, checks it holds both.

setuptools only ships data files that match `[tool.setuptools.package-data]`, so a new kind
of data file (a .txt list, a .parquet) is silently left out of the wheel while the editable
install keeps working; a wheel without NOTICE would ship CC BY / CC BY-NC-SA data without
its terms. Usage: python scripts/check_wheel.py dist/netvigil-X-py3-none-any.whl [dist/netvigil-X.tar.gz]
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tomllib
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


LICENCE_FILES = ("LICENSE", "NOTICE")  # pyproject's license-files


def licence_problems(wheel: Path) -> list[str]:
    """What the wheel's .dist-info lacks of the licence, one line each."""
    problems = []
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        for name in LICENCE_FILES:
            inside = [n for n in names if ".dist-info/licenses/" in n and n.rsplit("/", 1)[-1] == name]
            if not inside:
                problems.append(f"no {name} in .dist-info/licenses/ (pyproject.toml: license-files)")
            elif z.read(inside[0]) != (REPO / name).read_bytes():
                problems.append(f"{inside[0]} differs from the repository's {name}")
        meta = [n for n in names if n.endswith(".dist-info/METADATA")]
        want = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"]
        lines = z.read(meta[0]).decode("utf-8", "replace").splitlines() if meta else []
        if f"License-Expression: {want}" not in lines:
            problems.append(f"METADATA lacks 'License-Expression: {want}' (pyproject.toml: license)")
    return problems


def sdist_problems(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as t:
        top = {m.name.split("/", 1)[1] for m in t.getmembers() if "/" in m.name}
    return [f"no {name} at the sdist's root" for name in LICENCE_FILES if name not in top]


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: check_wheel.py WHEEL [SDIST]", file=sys.stderr)
        return 2
    try:
        return check(Path(argv[0]), Path(argv[1]) if len(argv) == 2 else None)
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        reason = " ".join(str(exc).split())  # tarfile's message spans lines
        print(f"check_wheel: cannot read {' or '.join(argv)}: {reason}", file=sys.stderr)
        return 2


def check(wheel: Path, sdist: Path | None) -> int:
    missing = sorted(tracked_sources() - wheel_files(wheel))
    if missing:
        print(f"check_wheel: {wheel.name} lacks {len(missing)} tracked file(s) under src/:", file=sys.stderr)
        for name in missing:
            print(f"  {name}", file=sys.stderr)
        print("add their extension to [tool.setuptools.package-data] in pyproject.toml", file=sys.stderr)
        return 1
    problems = licence_problems(wheel) + (sdist_problems(sdist) if sdist else [])
    if problems:
        for line in problems:
            print(f"check_wheel: {wheel.name}: {line}", file=sys.stderr)
        return 1
    print(f"check_wheel: {wheel.name} holds every file git tracks under src/, LICENSE and NOTICE"
          + (" (the sdist too)" if sdist else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
