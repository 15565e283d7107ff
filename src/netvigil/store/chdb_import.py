"""Importing chdb without pyarrow.

chdb imports pyarrow (and with it numpy) when it is itself imported, only for its Arrow and
DataFrame outputs; it runs without them when they are missing, and netvigil asks only for
CSV and JSONEachRow. Hidden for that one import, they cost nothing in the processes that
open an embedded store but never export (~0.2 s of CPU at each start of the analysis
process, and in every `netvigil` command that opens a store). pyarrow stays importable
afterwards (report/export.py writes Parquet with it).
"""

from __future__ import annotations

import _imp
import sys
from types import ModuleType


def import_chdb_session() -> ModuleType:
    """`chdb.session`, imported without pyarrow unless pyarrow is loaded already."""
    if "chdb" in sys.modules or "pyarrow" in sys.modules:
        from chdb import session

        return session
    _imp.acquire_lock()  # no other thread imports anything (pyarrow) while it reads as missing
    try:
        sys.modules["pyarrow"] = None  # type: ignore[assignment]  (import pyarrow -> ImportError)
        try:
            from chdb import session
        finally:
            if "pyarrow" in sys.modules and sys.modules["pyarrow"] is None:
                del sys.modules["pyarrow"]
    finally:
        _imp.release_lock()
    return session
