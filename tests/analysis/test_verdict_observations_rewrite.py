"""The judge worker's observation rows (analysis/verdicts/observations.py `_observe` and
`_read_stats`, `_reads_by_tx`, rewritten for CPU: positional rows, one pass over the events,
each value read once, no min/max calls)
are the rows the plain keyword form built, or raise the same error at the same point (judge()
puts a malformed measurement's error text into its rule ids, so the message is an output too).

The reference below is that plain form as it was before the rewrite (846ffea), for the steps
it covered (its throughput rows too: built by the same code in both). Inputs: every
measurement of the repository's corpora, and seeded mutations of their test_keys with values of
the wrong shape (the free-form test_keys a hostile or buggy probe sends)."""

from __future__ import annotations

import copy
import functools
import itertools
import gzip
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zstandard

from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts import observations
from netvigil.analysis.verdicts.observations import (Observation, _body_reads, _body_text, _int,
                                                     _num, host_of, split_address, wire_rate)

DATA = Path(__file__).resolve().parent.parent / "data"
TH = load_rules().thresholds  # the shipped sample_* thresholds, for both forms
observe_rows = functools.partial(observations._observe, th=TH)
FILES = sorted(p for p in DATA.rglob("*.jsonl*") if "labels" not in p.name) + sorted(DATA.rglob("measurement.json"))
WEIRD = [None, 0, 1.5, -3, True, False, "", "x", "[::1]:443", "1.2.3.4:80", "h:²", [], [1, "a"], {}, {"a": 1},
         {"failure": "x", "operation": "read", "num_bytes": 10, "t": 1.0}, 10**30, 1e308, "http://a.b/c",
         10**400, float("inf")]  # (float() of the one and int() of the other raise OverflowError)


# ---- the reference: the keyword form as it was ------------------------------------------

def ref_read_stats(events: list[dict]) -> dict[Any, tuple[int, float]]:
    """Bytes read and time span per transaction id (and per address) from df-008 events."""
    stats: dict[Any, list[float]] = {}
    for ev in [ev for ev in events if isinstance(ev, dict) and ev.get("operation") == "read"]:
        n, t, t0 = ev.get("num_bytes"), ev.get("t"), ev.get("t0")
        # _num(x), without the call for the usual plain float
        n = (n if type(n) is float and n == n else _num(n)) or 0
        t = (t if type(t) is float and t == t else _num(t)) or 0.0
        t0 = t0 if type(t0) is float and t0 == t0 else _num(t0)
        start = t0 if t0 is not None else t
        for key in (("tx", ev.get("transaction_id")), ("addr", ev.get("address"))):
            if key[1] is None:
                continue
            s = stats.get(key)
            if s is None:
                stats[key] = [n, start, t]  # as [0, start, t] then += n, min, max would leave it
                continue
            s[0] += n
            s[1] = min(s[1], start)
            s[2] = max(s[2], t)
    return {k: (int(v[0]), max(v[2] - v[1], 0.0)) for k, v in stats.items()}


def ref_observe(tk: dict[str, Any]) -> list[Observation]:
    rows: list[Observation] = []
    for q in tk.get("queries") or []:
        if not isinstance(q, dict):
            continue
        answers = [ip for a in q.get("answers") or [] if isinstance(a, dict) for ip in (a.get("ipv4") or a.get("ipv6"),) if ip]
        rows.append(
            Observation(
                step="dns",
                domain=(q.get("hostname") or "").lower() or None,
                failure=q.get("failure"),
                engine=q.get("engine"),
                answers=answers,
                transaction_id=q.get("transaction_id"),
            )
        )
    for c in tk.get("tcp_connect") or []:
        if not isinstance(c, dict):
            continue
        status = c.get("status") or {}
        failure = status.get("failure") if isinstance(status, dict) else None
        rows.append(
            Observation(step="tcp", ip=c.get("ip"), port=c.get("port"), failure=failure, transaction_id=c.get("transaction_id"))
        )
    events = tk.get("network_events") or []
    stats = ref_read_stats(events) if events else {}
    for h in tk.get("tls_handshakes") or []:
        if not isinstance(h, dict):
            continue
        ip, port = split_address(h.get("address"))
        tx = h.get("transaction_id")
        nbytes, span = stats.get(("tx", tx), (None, None)) if tx is not None else (None, None)
        dur = None
        if _num(h.get("t")) is not None and _num(h.get("t0")) is not None:
            dur = max(_num(h["t"]) - _num(h["t0"]), 0.0)
        rows.append(
            Observation(
                step="tls", ip=ip, port=port, domain=h.get("server_name"), server_name=h.get("server_name"),
                failure=h.get("failure"), transaction_id=tx, bytes=nbytes, duration=dur if dur is not None else span,
            )
        )
    for q in tk.get("quic_handshakes") or []:
        if not isinstance(q, dict):
            continue
        ip, port = split_address(q.get("address"))
        rows.append(Observation(step="quic", ip=ip, port=port, domain=q.get("server_name"), failure=q.get("failure"), transaction_id=q.get("transaction_id")))
    for r in tk.get("requests") or []:
        if not isinstance(r, dict):
            continue
        req = r.get("request") or {}
        resp = r.get("response") or {}
        url = req.get("url") if isinstance(req, dict) else None
        ip, port = split_address(r.get("address"))
        body = _body_text(resp.get("body")) if isinstance(resp, dict) else None
        headers = resp.get("headers") if isinstance(resp, dict) and isinstance(resp.get("headers"), dict) else {}
        rows.append(
            Observation(
                step="http", url=url, domain=host_of(url), ip=ip, port=port, failure=r.get("failure"),
                status_code=_int(resp.get("code")) if isinstance(resp, dict) else None, body=body,
                headers={str(k): str(v) for k, v in headers.items()}, transaction_id=r.get("transaction_id"),
            )
        )
    samples = tk.get("throughput")
    reads = ref_reads_by_tx(events) if samples else {}
    for s in samples or []:
        if not isinstance(s, dict):
            continue
        ip, port = split_address(s.get("address") if isinstance(s.get("address"), str) else None)
        dur = (_num(s.get("t")) or 0.0) - (_num(s.get("t0")) or 0.0)
        tx = _int(s.get("transaction_id"))
        body = _body_reads(reads.get(tx), _num(s.get("t0")))
        rate = None
        if dur >= TH["sample_long_seconds"]:  # slow or time-bounded: the steady-state rate; short: the average
            rate = wire_rate(reads.get(tx), _num(s.get("t0")), TH["sample_transient_share"])
        if rate is None:
            rate = _num(s.get("bits_per_second"))
        if rate is None and dur > 0:
            rate = (_num(s.get("bytes")) or 0) * 8 / dur
        if (_int(s.get("bytes")) or 0) < TH["sample_min_bytes"]:
            rate = None
        rows.append(
            Observation(
                step="throughput", url=s.get("url"), domain=s.get("server_name") or host_of(s.get("url")), ip=ip,
                port=port, failure=s.get("failure") if isinstance(s.get("failure"), str) else None,
                bytes=_int(s.get("bytes")), duration=dur, rate_bps=rate, transaction_id=tx,
                t_first=body[0][0] if body else None, t_last=body[-1][0] if body else None,
                wire_bytes=sum(n for _, n in body[1:]) if body else None,
            )
        )
    return rows


def ref_reads_by_tx(events: list) -> dict[int, list[tuple[float, int]]]:
    out: dict[int, list[tuple[float, int]]] = {}
    for ev in events:
        if isinstance(ev, dict) and ev.get("operation") == "read" and _num(ev.get("num_bytes")) and _int(ev.get("transaction_id")) is not None:
            out.setdefault(ev["transaction_id"], []).append((_num(ev.get("t")) or 0.0, int(_num(ev["num_bytes"]))))
    return out


# ---- inputs ---------------------------------------------------------------------------------


def _test_keys() -> list[Any]:
    out = []
    dec = msgspec.json.Decoder()
    for path in FILES:
        if path.suffix == ".zst":
            data = zstandard.ZstdDecompressor().stream_reader(path.open("rb"), read_across_frames=True).read()
        elif path.suffix == ".gz":
            data = gzip.decompress(path.read_bytes())
        else:
            data = path.read_bytes()
        for line in data.split(b"\n") if path.name != "measurement.json" else [data]:
            if line.strip().startswith(b"{"):
                try:
                    m = dec.decode(line)
                except msgspec.DecodeError:
                    continue
                tk = m.get("test_keys") if isinstance(m, dict) else None
                if isinstance(tk, dict):
                    out.append(tk)
                    for sub in ("targets", "lookups"):  # the nested parts observe() flattens too
                        if isinstance(tk.get(sub), dict):
                            out.extend(p for p in tk[sub].values() if isinstance(p, dict))
    return out


def _mutate(obj: Any, rnd: random.Random, depth: int = 0) -> None:
    if not isinstance(obj, (dict, list)) or not obj:
        return
    key = rnd.choice(list(obj)) if isinstance(obj, dict) else rnd.randrange(len(obj))
    if rnd.random() < 0.4 or depth > 6:
        obj[key] = rnd.choice(WEIRD)
    else:
        _mutate(obj[key], rnd, depth + 1)


def _outcome(fn, tk) -> Any:
    """The rows, or the error; compared by repr (a NaN duration equals itself there)."""
    try:
        return fn(tk)
    except Exception as exc:  # noqa: BLE001  (the error is what is compared)
        return ("raised", type(exc).__name__, str(exc))


@pytest.fixture(scope="module")
def corpus() -> list[Any]:
    tks = _test_keys()
    assert len(tks) > 500, f"the corpora under {DATA} gave only {len(tks)} test_keys"
    return tks


def test_rows_are_the_keyword_forms_on_every_corpus_measurement(corpus):
    steps = set()
    for tk in corpus:
        got, want = _outcome(observe_rows, tk), _outcome(ref_observe, tk)
        if isinstance(want, list):
            steps.update(o.step for o in want)
        assert repr(got) == repr(want)
    assert {"dns", "tcp", "tls", "http"} <= steps  # the corpora exercise every rewritten step


def test_rows_or_errors_are_the_same_on_mutated_test_keys(corpus):
    rnd = random.Random(13)
    raised = 0
    for tk in rnd.sample(corpus, min(len(corpus), 500)):
        for _ in range(4):
            bad = copy.deepcopy(tk)
            for _ in range(rnd.randint(1, 3)):
                _mutate(bad, rnd)
            got, want = _outcome(observe_rows, bad), _outcome(ref_observe, bad)
            if not isinstance(want, list):
                raised += 1
            assert repr(got) == repr(want), bad
    assert raised > 10  # the mutations reached the error paths, not only the happy one


def test_event_summaries_match_on_event_lists(corpus):
    rnd = random.Random(5)
    lists = [tk["network_events"] for tk in corpus if isinstance(tk.get("network_events"), list) and tk["network_events"]]
    assert len(lists) > 100
    for events in lists:
        bad = copy.deepcopy(events)
        _mutate(bad, rnd)
        for given in (events, bad):
            assert repr(_outcome(observations._read_stats, given)) == repr(_outcome(ref_read_stats, given))
            assert repr(_outcome(observations._reads_by_tx, given)) == repr(_outcome(ref_reads_by_tx, given))


def test_two_wrong_fields_at_once_raise_as_before(corpus):
    """Which error comes first depends on the order the fields are read in: every pair of an
    element's fields set wrong together, for one element of each rewritten step."""
    bad_values = [5, "x", [1], {"a": 1}, 10**400, float("inf")]
    checked = 0
    for key in ("queries", "tcp_connect", "tls_handshakes", "quic_handshakes", "requests", "network_events"):
        element = next((e for tk in corpus for e in (tk.get(key) or [])
                        if isinstance(e, dict) and len(e) > 2 and (key != "network_events" or e.get("operation") == "read")), None)
        if element is None:
            continue
        fields = list(element) + ["response", "request", "answers", "hostname", "address", "status"]
        for i, f1 in enumerate(fields):
            for f2 in fields[i + 1:]:
                for v1, v2 in itertools.product(bad_values, repeat=2):
                    e = dict(element, **{f1: v1, f2: v2})
                    tk = ({key: [e], "network_events": [e]} if key != "network_events"
                          else {key: [e], "tls_handshakes": [e], "throughput": [e]})  # (the events' three readers)
                    assert repr(_outcome(observe_rows, tk)) == repr(_outcome(ref_observe, tk)), (key, f1, v1, f2, v2)
                    checked += 1
    assert checked > 5000
