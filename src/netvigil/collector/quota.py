"""Bounded cost per client, decided from the request headers before any body is read.

A client is its address (`request.client.host`: the socket peer, or the X-Forwarded-For
client when the peer is a trusted proxy, see observatory/serve.py) unless it shows a trusted-probe
token. Untrusted clients share a token bucket per address: a request is let in only while
the bucket holds a token, and a batch is charged one token per measurement once its lines
are counted. A batch larger than the bucket (the burst) could never pass, so it gets a 413
naming the limit; a client merely over its rate gets a 429 whose Retry-After says when the
bucket will hold enough.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from netvigil.collector.intake import Rejected


class OverQuota(Rejected):
    """A 429 that says when to come back (sent as the Retry-After header, in whole seconds)."""

    def __init__(self, message: str, retry_after: float):
        self.retry_after = max(1, math.ceil(min(retry_after, 86400.0)))
        super().__init__(f"{message}; retry after {self.retry_after} s", 429)


class Busy(Rejected):
    """A 503 that says when to come back: the service is behind, not the client over its quota."""

    def __init__(self, message: str, retry_after: float):
        self.retry_after = max(1, math.ceil(min(retry_after, 3600.0)))
        super().__init__(f"{message}; retry after {self.retry_after} s", 503)


class RateLimiter:
    """Token bucket per key (client address), at most `max_keys` remembered (least recent forgotten)."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000):
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.pop(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)

    def wait(self, key: str, cost: float = 1.0) -> float:
        """Take `cost` tokens and return 0, or take nothing and return the seconds until they are there."""
        now = time.monotonic()
        tokens = self._tokens(key, now)
        if tokens >= cost:
            self._store(key, tokens - cost, now)
            return 0.0
        self._store(key, tokens, now)
        return (cost - tokens) / self.rate if self.rate > 0 else math.inf

    def peek(self, key: str) -> float:
        """The tokens KEY holds now (nothing taken)."""
        now = time.monotonic()
        tokens = self._tokens(key, now)
        self._store(key, tokens, now)
        return tokens

    def drain(self, key: str) -> None:
        """Empty the bucket: a refused oversized upload still cost us its reading."""
        self._store(key, 0.0, time.monotonic())
        self._buckets.move_to_end(key)


class Inflight:
    """How many uploads each client has in progress (bounds the bodies one client holds in memory)."""

    def __init__(self, per_client: int):
        self.per_client = per_client
        self._count: dict[str, int] = {}

    def enter(self, key: str) -> None:
        n = self._count.get(key, 0)
        if n >= self.per_client:
            raise OverQuota(f"{key} already has {n} batch uploads in progress (limit {self.per_client}); "
                            "wait for them to finish", 1)
        self._count[key] = n + 1

    def leave(self, key: str) -> None:
        n = self._count.get(key, 1) - 1
        if n > 0:
            self._count[key] = n
        else:
            self._count.pop(key, None)


def charge(limiter: RateLimiter, key: str, cost: float, what: str) -> None:
    """Take `cost` tokens from KEY's bucket or raise: 413 if it can never pass, 429 with Retry-After if later."""
    if cost > limiter.burst:
        over_burst(limiter, key, what)
    wait = limiter.wait(key, cost)
    if wait:
        raise OverQuota(f"rate limit exceeded for {key} ({limiter.rate:g} measurements/s, "
                        f"burst {limiter.burst:g}): {what} of {cost:g} measurements", wait)


def over_burst(limiter: RateLimiter, key: str, what: str) -> None:
    """A request bigger than the whole bucket: 413 naming the limit (a 429 could never pass)."""
    limiter.drain(key)  # reading it cost us: the next request waits for the bucket to refill
    raise Rejected(f"{what} of more than {limiter.burst:g} measurements is over the limit of {limiter.burst:g} "
                   f"per request for probes without a token; split it into batches of at most "
                   f"{limiter.burst:g} lines", 413)


def admit(limiter: RateLimiter, key: str) -> None:
    """Before reading a body: the client's bucket must hold at least one token (nothing is taken)."""
    tokens = limiter.peek(key)
    if tokens < 1:
        raise OverQuota(f"rate limit exceeded for {key} ({limiter.rate:g} measurements/s)",
                        (1 - tokens) / limiter.rate if limiter.rate > 0 else math.inf)
