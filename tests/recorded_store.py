"""An analysed store of a recorded lab run, filled once per test process and copied.

Filling a store round by round from a recorded run costs about 2.3 s of CPU, and several
test modules only read the russia-2022 one. The first call fills a template; every call
copies its raw archive, from which the store derives its tables again on opening (0.8 s;
tests/store/test_observatory.py proves them identical to the ones written). The engine's
own files are not copied: chdb's database is named after the store's path and shares one
session per process, so a copied chdb directory does not open beside its original.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

_TEMPLATES: dict[Path, Path] = {}  # run directory -> its filled store (this process)


def _fill(run: Path, store: Path) -> None:
    """The store at `store` holding `run`, added round by round as the analysis receives it."""
    from netvigil.analysis.analysed_store import AnalysedStore
    from netvigil.report.replay import rounds
    from tests.recorded_run import run_measurements

    with AnalysedStore(store) as obs:
        for _, batch in rounds(run_measurements(run)):
            obs.add(batch)
        obs.refresh()


def copy_of_run_store(run: Path, dest: Path) -> Path:
    """`dest` (created, or an existing empty directory) holding a store of the recorded `run`."""
    run = Path(run).resolve()
    template = _TEMPLATES.get(run)
    if template is None:
        parent = Path(tempfile.mkdtemp(prefix="nv-run-store-"))
        atexit.register(shutil.rmtree, parent, True)
        _fill(run, parent / "store")
        template = _TEMPLATES[run] = parent / "store"
    shutil.copytree(template / "raw", Path(dest) / "raw", dirs_exist_ok=True)
    return Path(dest)
