"""Importing chdb without pyarrow.

chdb imports pyarrow (and with it numpy) when it is itself imported, only for its Arrow and
DataFrame outputs; it runs without them when they are missing, and netvigil asks only for
CSV and JSONEachRow. Hidden for that one import, they cost nothing in the processes that
open an embedded store but never export (~0.2 s of CPU at each start of the analysis
process, and in every `netvigil` command that opens a store). pyarrow stays importable
afterwards (report/export.py writes Parquet with it).

Hidden from this thread only: a finder that answers "no such module" for pyarrow to the
importing thread and nothing to others, so another thread importing pyarrow meanwhile (or
anything else) is neither refused nor made to wait (a global import lock held across chdb's
import could deadlock with a thread half-way through importing a module chdb needs).
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType


class _HiddenHere:
    """A meta path finder: pyarrow is missing for one thread."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "pyarrow" and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden while chdb is imported)", name=name)
        return None


def import_chdb_session() -> ModuleType:
    """`chdb.session`, imported without pyarrow unless pyarrow is loaded already."""
    if "chdb" in sys.modules or "pyarrow" in sys.modules:
        from chdb import session

        return session
    hidden = _HiddenHere()
    original = sys.meta_path
    # a new list, not an insert: an import running on another thread goes on over the list
    # it took, never over one being changed
    sys.meta_path = [hidden, *original]
    try:
        from chdb import session
    finally:
        kept = [f for f in sys.meta_path if f is not hidden]
        if kept != original:  # a finder added or removed meanwhile stays so
            original[:] = kept
        sys.meta_path = original
    return session
