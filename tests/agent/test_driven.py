"""`netvigil agent --driven`: rounds on a harness's command (a lab's clock) in one process, one
JSON answer a line; a bad command is answered, not fatal; the observatory down between two
commands loses nothing; end of input ends the agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from netvigil.observatory.serve import free_port

from .test_agent import observatory, stored

NETVIGIL = [sys.executable, "-m", "netvigil"]


def driven(world, url: str, data_dir, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("NETVIGIL_DEBUG", None)
    return subprocess.Popen([*NETVIGIL, "agent", "--server", url, "--data-dir", str(data_dir), "--driven",
                             *world.cli_args(), "--timeout", "2", "--server-timeout", "2", *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def ask(p: subprocess.Popen, command: str) -> dict:
    p.stdin.write(command + "\n")
    p.stdin.flush()
    line = p.stdout.readline()
    assert line, p.stderr.read()[-2000:] if p.poll() is not None else "no answer"
    return json.loads(line)


def test_rounds_on_command_stamped_with_the_clock(world, tmp_path):
    port = free_port()
    with observatory(tmp_path / "obs", port) as srv:
        url = srv.url
        p = driven(world, url, tmp_path / "agent")
        try:
            first = ask(p, "round 2022-03-01 08:00:00")
            assert (first["measured"], first["submitted"], first["queued"]) == (2, 2, 0) and first["checked_in"]
            assert set(stored(srv)) == {("twitter", "2022-03-01 08:00:00"), ("control", "2022-03-01 08:00:00")}
            bad = ask(p, "round at noon")
            assert "unknown command 'round at noon'" in bad["error"]
        except BaseException:
            p.kill()
            raise
    try:
        # the observatory is gone: the next round is measured and held
        down = ask(p, "round 2022-03-01 09:00:00")
        assert (down["measured"], down["submitted"], down["queued"]) == (2, 0, 2) and not down["checked_in"]
        held = ask(p, "flush")
        assert held == {"submitted": 0, "queued": 2, "rejected": 0}
        with observatory(tmp_path / "obs", port) as srv:
            sent = ask(p, "flush")
            assert sent == {"submitted": 2, "queued": 0, "rejected": 0}
            assert set(stored(srv)) == {(s, t) for s in ("twitter", "control")
                                        for t in ("2022-03-01 08:00:00", "2022-03-01 09:00:00")}
            p.stdin.close()  # end of input: the agent ends
            assert p.wait(timeout=60) == 0
        assert "round 2: measured 2, submitted 0, queued 2" in p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
