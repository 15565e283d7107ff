"""The agent's rounds: check in -> measure into the on-disk queue -> submit what is queued.

Nothing measured is lost: each measurement is appended to a round file in DATA_DIR/queue and
fsynced before the next one is taken (the sink of the probe runner), and that directory is the
queue of probe/client.py, which sends it first and deletes it only once acknowledged (the
collector's uids make a resend after a crash harmless). A kill -9 mid-round leaves at most a
torn last line, which was never complete and is skipped.

The observatory down: the agent measures what its last check-in said, queues, and tries
again next round; enrolment is retried with back-off. A network change: every round checks
in again, and the answer says where the observatory sees us (self-location via a helper's
echo and the last known location when it cannot say).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec

from netvigil.agent import checkin, identity
from netvigil.agent.budget import DEFAULT_DAILY_BYTES, ByteBudget, throughput_bound
from netvigil.agent.identity import Identity, ServerUnreachable
from netvigil.model.checkin import CheckInAnswer
from netvigil.model.measurement import Measurement, encode_measurement
from netvigil.probe.locate import UNKNOWN_ASN, UNKNOWN_CC
from netvigil.probe.settings import ProbeSettings

MAX_BACKOFF = 900.0  # seconds between enrolment attempts at most


class AgentConfig(msgspec.Struct, kw_only=True):
    """What the operator chose (`netvigil agent` options); the observatory's check-in decides the rest."""

    server: str
    data_dir: str
    invite: str | None = None
    daily_bytes: int = DEFAULT_DAILY_BYTES
    probe: ProbeSettings = msgspec.field(default_factory=ProbeSettings)  # resolver, CA, ports...; a probe_asn/cc given here wins
    cadence: float | None = None  # overrides the observatory's cadence (seconds)
    urls: tuple[str, ...] = ()  # measured every round besides the services (a test list)
    server_timeout: float = 10.0  # seconds for one request to the observatory


class RoundResult(msgspec.Struct):
    """One round's counts, printed as its line and answered by `--driven` (a harness reads them)."""

    measured: int
    submitted: int
    queued: int
    rejected: int
    throughput: bool  # the round ran throughput tests (the budget allowed them)
    probe_asn: str
    probe_cc: str
    checked_in: bool  # False: the observatory was down; the last answer was used
    errors: list[str] = []


def describe(r: RoundResult, n: int) -> str:
    """The round's line on stderr."""
    return (f"round {n}: measured {r.measured}, submitted {r.submitted}, queued {r.queued}, rejected {r.rejected} "
            f"as {r.probe_asn}/{r.probe_cc}" + ("" if r.checked_in else " (observatory unreachable)"))


def jittered(cadence: float, jitter: float, rng: random.Random | None = None) -> float:
    """The wait before the next round: cadence x (1 +- jitter), so a fleet does not beat in step."""
    r = (rng or random).uniform(-jitter, jitter)
    return max(1.0, cadence * (1.0 + r))


def default_answer(catalogue) -> CheckInAnswer:
    """Before any check-in succeeded: the whole catalogue, hourly, no helper, location unknown."""
    return CheckInAnswer(v=1, probe_id=None, catalogue_version=catalogue.version,
                         services=[n for n in catalogue.services if n != "control"], cadence_seconds=3600.0,
                         jitter=0.25, helpers=[], probe_asn=UNKNOWN_ASN, probe_cc=UNKNOWN_CC, probe_network_name="",
                         located=False, utc_time="")


class Agent:
    """The long-running probe: check in, measure into the on-disk queue, submit what is queued.

    Measurements go to the queue before any is sent, so an observatory that is down loses none:
    the next round (or `flush`) sends them."""

    def __init__(self, config: AgentConfig, *, say: Callable[[str], None] = lambda _: None):
        self.config = config
        self.server = config.server.rstrip("/")
        self.data_dir = identity.private_dir(Path(config.data_dir))
        self.queue_dir = identity.private_dir(self.data_dir / "queue")
        self.budget = ByteBudget(self.data_dir / "budget.json", config.daily_bytes)
        self.http = httpx.Client(timeout=config.server_timeout)
        self.ident: Identity | None = identity.load(self.data_dir, self.server)
        self.stop = threading.Event()
        self.say = say
        self.next_wait = 3600.0
        from netvigil.targets import load_catalogue

        self.catalogue = load_catalogue()

    def close(self) -> None:
        self.http.close()

    # ---- identity and check-in ------------------------------------------------------

    def ensure_identity(self) -> Identity:
        if self.ident is None:
            self.ident = identity.enrol(self.http, self.server, self.data_dir, self.config.invite)
            self.say(f"enrolled as {self.ident.probe_id} at {self.server}")
        return self.ident

    def check_in(self) -> tuple[CheckInAnswer, bool]:
        """The observatory's answer (kept), or the last one kept when it cannot be reached."""
        try:
            try:
                answer = checkin.check_in(self.http, self.ensure_identity())
            except checkin.Unenrolled as exc:
                self.say(f"{exc}; enrolling again (the old identity is kept as identity.json.old)")
                os.replace(self.data_dir / identity.FILE, self.data_dir / (identity.FILE + ".old"))
                self.ident = None
                answer = checkin.check_in(self.http, self.ensure_identity())
        except ServerUnreachable as exc:
            self.say(f"{exc}; measuring what the last check-in said")
            return checkin.last(self.data_dir) or default_answer(self.catalogue), False
        checkin.remember(self.data_dir, answer)
        if answer.catalogue_version != self.catalogue.version:
            self.say(f"note: the observatory's catalogue is {answer.catalogue_version}, ours "
                     f"{self.catalogue.version}; measuring with ours")
        return answer, True

    def settings_for(self, answer: CheckInAnswer, throughput: bool) -> ProbeSettings:
        """Probe settings of a round: where the observatory sees us unless told otherwise; helpers
        (for the echo and the throughput test) only while the byte budget allows them."""
        base = self.config.probe
        helpers = (base.helpers or tuple(answer.helpers)) if throughput else ()
        return msgspec.structs.replace(
            base,
            helpers=helpers,
            probe_asn=base.probe_asn if base.probe_asn != UNKNOWN_ASN else answer.probe_asn,
            probe_cc=base.probe_cc if base.probe_cc != UNKNOWN_CC else answer.probe_cc,
            probe_network_name=base.probe_network_name or answer.probe_network_name or None,
            location_file=base.location_file or str(self.data_dir / "location.json"))

    # ---- one round ------------------------------------------------------------------

    def services_of(self, answer: CheckInAnswer) -> list[str]:
        from netvigil.probe.runner import plan_services

        known = [s for s in answer.services if s in self.catalogue.services]
        unknown = sorted(set(answer.services) - set(known))
        if unknown:
            self.say(f"note: services not in our catalogue skipped: {', '.join(unknown)}")
        return plan_services(self.catalogue, known, controls=True)

    def run_round(self) -> RoundResult:
        from netvigil.probe.runner import run_probe

        answer, fresh = self.check_in()
        self.next_wait = self.config.cadence or jittered(answer.cadence_seconds, answer.jitter)
        services = self.services_of(answer)
        base = self.config.probe
        helper_count = len(base.helpers or answer.helpers)
        bound = throughput_bound(len(services), base.helper_rounds, base.helper_bytes) if helper_count else 0
        throughput = bool(bound) and self.budget.take(bound)
        if helper_count and not throughput:
            self.say(f"throughput tests skipped: {self.budget.left()} bytes left of today's "
                     f"{self.budget.daily} (a round needs up to {bound})")
        settings = self.settings_for(answer, throughput)
        measured, where = self._measure(settings, services, run_probe)
        res = self.submit()
        asn, cc = where or (settings.probe_asn, settings.probe_cc)
        return RoundResult(measured=measured, submitted=res.submitted, queued=res.queued, rejected=res.rejected,
                           throughput=throughput, probe_asn=asn, probe_cc=cc,
                           checked_in=fresh, errors=res.errors[:10])

    def submit(self):
        """Send everything queued (probe/client.py); what cannot be sent stays queued."""
        from netvigil.probe.client import submit_measurements

        return submit_measurements(self.server, [], queue_dir=self.queue_dir,
                                   token=self.ident.token if self.ident else None,
                                   timeout=self.config.server_timeout, retries=2, backoff=0.5)

    def submit_queued(self):
        """Only send what is queued (no check-in, no measuring). With the observatory down,
        nothing is sent and everything stays queued."""
        try:
            self.ensure_identity()  # a never-enrolled agent's queue goes with credentials
        except ServerUnreachable as exc:
            self.say(f"{exc}; nothing sent")
        res = self.submit()
        self.say(f"flush: submitted {res.submitted}, queued {res.queued}, rejected {res.rejected}")
        return res

    def flush(self) -> int:
        """submit_queued(); returns how many stay queued."""
        return self.submit_queued().queued

    def _measure(self, settings: ProbeSettings, services: list[str], run_probe) -> tuple[int, tuple | None]:
        """Each measurement on disk (fsync) before the next is taken: the round file is in the queue.
        Returns how many, and where the probe located itself (ASN, country; None if nothing measured)."""
        name = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-round-{secrets.token_hex(4)}.jsonl"
        fd = os.open(self.queue_dir / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

        where: list[tuple[str, str]] = []

        def sink(m: Measurement) -> None:
            os.write(fd, encode_measurement(m) + b"\n")
            os.fsync(fd)
            where[:] = [(m.probe_asn, m.probe_cc)]

        try:
            count = asyncio.run(run_probe(settings, self.catalogue, services=services, urls=list(self.config.urls),
                                          sink=sink))
        finally:
            os.close(fd)
        return count, (where[0] if where else None)

    # ---- the schedule ---------------------------------------------------------------

    def run(self, *, once: bool = False, rounds: int | None = None) -> int:
        """Rounds until stopped (or once, or ROUNDS); returns how many ran."""
        done, backoff = 0, 30.0
        while not self.stop.is_set():
            try:
                self.ensure_identity()
            except ServerUnreachable as exc:
                if once:
                    raise
                self.say(f"{exc}; trying again in {backoff:.0f} s")
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            r = self.run_round()
            done += 1
            self.say(describe(r, done))
            if once or (rounds is not None and done >= rounds):
                break
            self.stop.wait(self.next_wait)
        return done
