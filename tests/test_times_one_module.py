"""Times are read and written in one module (model/times.py, issue #16): the stored form's
format string, every regular expression for a time and every parse of a netvigil time are
there and nowhere else in src/, so a change to the form is made once. Third-party forms are
parsed where they are read (PARSES_ELSEWHERE says where and why). One pass of `ast`; the rest
of src/ is read, not imported.
"""

from __future__ import annotations

import ast
import functools
import re
from datetime import timedelta
from pathlib import Path

import netvigil
from netvigil.errors import UsageError
from netvigil.model import times

ROOT = Path(netvigil.__file__).parent
HOME = "model/times.py"
# a regular expression for a date or a clock time: four digits and a dash, or (one or) two and a colon
TIME_PATTERN = re.compile(r"(\\d|\[0-9\])\{4\}-|(\\d|\[0-9\])\{(1,)?2\}\)?:")
RE_CALLS = {"compile", "match", "fullmatch", "search", "findall", "finditer", "sub", "split"}
PARSERS = {"strptime", "fromisoformat"}
# file -> why a time is parsed there and not with model/times.py
PARSES_ELSEWHERE = {
    "ingest/monash.py": "Monash CSVs' own forms ('11-Nov-2019 00:00:00', '2019-11-11 00')",
    "evaluate/windows.py": "a windows CSV's ISO times with any zone, turned to UTC",
    "report/export.py": "--since/--until of `export` with its one-line error, and Arrow's column-wise strptime",
    "report/text.py": "a date written out for readers ('26 February 2022')",
    "lab/scenario.py": "a scenario file's window edges, refused with the file's key",
}


@functools.cache
def _sources() -> tuple[tuple[str, ast.AST], ...]:
    return tuple((p.relative_to(ROOT).as_posix(), ast.parse(p.read_text(), str(p))) for p in sorted(ROOT.rglob("*.py")))


def stored_format_copies(tree: ast.AST, rel: str) -> list[str]:
    return [f"{rel}:{n.lineno}" for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and n.value == times.FORMAT and rel != HOME]


def time_regexes(tree: ast.AST, rel: str) -> list[str]:
    """`file:line: pattern` for each time pattern given to the re module outside HOME."""
    found = []
    for n in ast.walk(tree):
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in RE_CALLS
                and isinstance(n.func.value, ast.Name) and n.func.value.id == "re" and n.args
                and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, (str, bytes))):
            pattern = n.args[0].value if isinstance(n.args[0].value, str) else n.args[0].value.decode("latin-1")
            if TIME_PATTERN.search(pattern) and rel != HOME:
                found.append(f"{rel}:{n.lineno}: {pattern}")
    return found


def time_parses(tree: ast.AST, rel: str) -> list[str]:
    """`file:line` for each strptime / fromisoformat call outside HOME and PARSES_ELSEWHERE."""
    if rel == HOME or rel in PARSES_ELSEWHERE:
        return []
    return [f"{rel}:{n.lineno}: {ast.unparse(n)[:80]}" for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in PARSERS]


def test_the_checks_see_a_copy():
    src = 'import re\nT = re.compile(r"\\d{4}-\\d{2}-\\d{2}")\nF = "%Y-%m-%d %H:%M:%S"\nA = re.compile(r"[a-z]{2}")\n'
    tree = ast.parse(src)
    assert time_regexes(tree, "x.py") == ["x.py:2: \\d{4}-\\d{2}-\\d{2}"]
    assert stored_format_copies(tree, "x.py") == ["x.py:3"]
    assert time_regexes(tree, HOME) == stored_format_copies(tree, HOME) == []
    assert TIME_PATTERN.search(times.TIME_RE.pattern)  # the home's own pattern is what is looked for
    assert TIME_PATTERN.search(times.CLOCK_RE.pattern)
    parse = ast.parse("t = datetime.strptime(x[:19], FMT)\nd = date.fromisoformat(y)\n")
    assert len(time_parses(parse, "report/x.py")) == 2 and time_parses(parse, "ingest/monash.py") == []


def test_the_stored_format_is_spelled_once():
    found = [hit for rel, tree in _sources() for hit in stored_format_copies(tree, rel)]
    assert len(_sources()) > 100 and not found, "use netvigil.model.times.FORMAT:\n" + "\n".join(found)


def test_no_time_regex_outside_the_times_module():
    found = [hit for rel, tree in _sources() for hit in time_regexes(tree, rel)]
    assert not found, "parse times with netvigil.model.times:\n" + "\n".join(found)


def test_netvigil_times_are_parsed_only_in_the_times_module():
    found = [hit for rel, tree in _sources() for hit in time_parses(tree, rel)]
    assert not found, "parse times with netvigil.model.times (naive, parse, epoch, ...):\n" + "\n".join(found)


def test_every_place_parsing_elsewhere_still_does():
    """A PARSES_ELSEWHERE entry whose parse is gone is stale: the list stays the short list."""
    trees = dict(_sources())
    for rel in PARSES_ELSEWHERE:
        calls = [n for n in ast.walk(trees[rel]) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and n.func.attr in PARSERS]
        assert calls, rel


def test_clock_and_naive():
    assert times.clock("9:05") == timedelta(hours=9, minutes=5) and times.clock("24:00") is not None
    assert times.clock("2022-02-26 09:00:00") is None and times.clock("9h05") is None
    for bad in ("25:00", "10:61"):
        try:
            times.clock(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} read as a time of day")
    assert times.naive("2022-02-26T09:00:00Z").isoformat() == "2022-02-26T09:00:00"
    assert times.naive("2022-02-26 09:00:00.123") == times.naive("2022-02-26 09:00:00")


def test_epoch_text_round_trip_and_a_bad_time_in_one_line():
    """utc_text and parse_utc (moved here from model/signals.py) are each other's inverse on
    whole seconds, and a bad time is a one-line UsageError naming where it came from."""
    for ts in (0, 1_700_000_000, 4_102_444_799):
        assert times.parse_utc(times.utc_text(ts)) == ts
        assert times.epoch(times.utc_text(ts)) == ts
    assert times.parse_utc("2022-02-26T09:00Z") == times.parse_utc("2022-02-26 09:00:00")
    try:
        times.parse_utc("26/02/2022", where="file.csv:3")
    except UsageError as exc:
        assert "\n" not in str(exc) and "file.csv:3" in str(exc) and "26/02/2022" in str(exc)
    else:
        raise AssertionError("a bad time was read")
