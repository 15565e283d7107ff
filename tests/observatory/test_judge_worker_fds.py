"""The judge worker starts in a process with more than 1,024 files open (select() refuses such
a descriptor: the whole suite in one process failed so)."""

from __future__ import annotations

import os
import resource
import time

import pytest

from netvigil.analysis.rules import load_rules
from netvigil.observatory.judge_worker import JudgeWorker


def test_worker_ready_with_descriptors_past_1023(tmp_path):
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip(f"only {soft} files may be open here")
    held = []
    worker = None
    try:
        while not held or held[-1] < 1100:  # the worker's pipes get descriptors past 1023
            held.append(os.open(os.devnull, os.O_RDONLY))
        (tmp_path / "log").mkdir()
        worker = JudgeWorker(tmp_path / "log", load_rules().version)
        assert worker.proc.stdout.fileno() > 1023
        deadline = time.monotonic() + 120  # a bound for a broken worker, not a speed limit
        while not worker._started() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.ready
    finally:
        if worker is not None:
            worker.close()
        for fd in held:
            os.close(fd)
