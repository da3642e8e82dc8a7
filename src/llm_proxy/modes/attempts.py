"""Which backend to try next, whether a failure may be retried, and how long to wait. Pure but for ``Health``.

A route's attempts go to its pool first (weighted random among the healthy backends), then to its
fallbacks in order, ``retries`` extra attempts at most. A backend that fails ``cooldown.failures`` times
within ``cooldown.window`` seconds is skipped for ``cooldown.seconds`` (or for the ``Retry-After`` it
sent), then gets one trial request; when every backend is cooling down, the least recently failed one
is tried rather than failing outright. ``Health`` keeps that bookkeeping per process, with an injected
clock and random source so that tests drive it without sleeping.

What is retried: connect failures, a connection closed or silent before the first byte, upstream 408,
429, 500, 502, 503, 504 and 529 (also as the first event of a stream), as long as nothing has reached the
client. A 401 or 403 moves to the next key of the pool; other client errors are final.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from llm_proxy.canonical import ErrorKind
from llm_proxy.config import Backend, Route

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
NEXT_KEY_STATUSES = frozenset({401, 403})
"""A pool member's key is refused: another key of the pool may work (never the same backend again)."""
RETRYABLE_KINDS = frozenset({ErrorKind.OVERLOADED, ErrorKind.RATE_LIMIT, ErrorKind.API_ERROR, ErrorKind.TIMEOUT})
"""Kinds of an error sent as a stream's first event that are worth another attempt."""
BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0
MAX_WAIT = 30.0
"""The longest single wait before retrying the same backend (a longer ``Retry-After`` ends the retries)."""


def retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES


def backoff(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0.0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Seconds the upstream asks to wait: ``retry-after-ms``, ``Retry-After`` (seconds or an HTTP date), or the
    earliest ``x-ratelimit-reset-*`` (seconds or durations such as ``1s``, ``6m0s``); None when it says nothing."""
    if "retry-after-ms" in headers:
        try:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now())
            except (TypeError, ValueError):
                pass
    resets = [_reset_seconds(v) for k, v in headers.items() if k.startswith("x-ratelimit-reset")]
    known = [r for r in resets if r is not None]
    return min(known) if known else None


def _reset_seconds(value: str) -> float | None:
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


@dataclass(slots=True)
class _State:
    failures: deque[float] = field(default_factory=deque)
    cooled_until: float = 0.0
    last_failure: float = 0.0
    trial: bool = False
    """Cooled down and given its one trial request: a failure cools it again at once."""


class Health:
    """Per-process health of every backend: failures in the window, cooldowns, trial requests."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        self._clock = clock
        self.rng = rng or random.Random()
        self._states: dict[tuple[int, str], _State] = {}
        self._flat: dict[int, Backend] = {}
        """The flat form's one backend per route index: only its name and identity are read (``Route.using``
        gives a flat route back unchanged), so a route rebuilt with other fields never meets a stale value."""

    def _state(self, route: Route, backend: Backend) -> _State:
        key = (route.index, backend.name)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State()
        return state

    def cooling(self, route: Route, backend: Backend) -> bool:
        state = self._states.get((route.index, backend.name))
        return state is not None and self._clock() < state.cooled_until

    def order(self, route: Route) -> list[Backend]:
        """The backends to try, best first: healthy pool members in weighted random order, then the cooling
        ones (least recently failed first), then the fallbacks (healthy ones first, in config order)."""
        now = self._clock()
        states, index = self._states, route.index
        healthy: list[Backend] = []
        cooling: list[tuple[float, int, Backend]] = []
        for n, backend in enumerate(route.pool):  # one look at each backend's state, at one time
            state = states.get((index, backend.name))
            if state is not None and now < state.cooled_until:
                cooling.append((state.last_failure, n, backend))  # n: ties keep the pool's order
            else:
                healthy.append(backend)
        ordered = self._weighted(healthy)
        if cooling:
            cooling.sort()
            ordered += [backend for _, _, backend in cooling]
        if route.fallbacks:
            later: list[Backend] = []
            for backend in route.fallbacks:
                state = states.get((index, backend.name))
                (later if state is not None and now < state.cooled_until else ordered).append(backend)
            ordered += later
        return ordered

    def attempts(self, route: Route) -> list[Backend]:
        """``retries + 1`` backends in the order to try them (cycling when there are fewer backends)."""
        if not route.backends and not route.fallbacks:
            # A pool of one (the flat form): nothing to choose; its Backend is made once per route.
            flat = self._flat.get(route.index)
            if flat is None or flat.name != route.backend_name:
                flat = self._flat[route.index] = route.pool[0]
            return [flat] * (route.retries + 1)
        order = self.order(route)
        return [order[n % len(order)] for n in range(route.retries + 1)]

    def failed(self, route: Route, backend: Backend, wait: float | None = None) -> None:
        now = self._clock()
        state = self._state(route, backend)
        state.last_failure = now
        window = route.cooldown.window
        state.failures.append(now)
        while state.failures and state.failures[0] <= now - window:
            state.failures.popleft()
        if state.trial or len(state.failures) >= route.cooldown.failures:
            state.cooled_until = now + (wait if wait is not None else route.cooldown.seconds)
            state.failures.clear()
            state.trial = True  # once the cooldown ends, one request decides
        elif wait is not None and wait > 0:
            state.cooled_until = max(state.cooled_until, now + wait)

    def succeeded(self, route: Route, backend: Backend) -> None:
        state = self._states.get((route.index, backend.name))
        if state is not None:
            state.failures.clear()
            state.trial = False
            state.cooled_until = 0.0

    def _weighted(self, backends: list[Backend]) -> list[Backend]:
        """A weighted random order without replacement (each pick proportional to its weight); fewer than two
        backends: ``backends`` itself."""
        if len(backends) < 2:
            return backends
        first = backends[0].weight
        if all(backend.weight == first for backend in backends):  # the usual pool: a uniform shuffle is the same
            shuffled = list(backends)
            self.rng.shuffle(shuffled)
            return shuffled
        left = list(backends)
        out: list[Backend] = []
        while left:
            total = sum(b.weight for b in left)
            pick = self.rng.uniform(0.0, total)
            for i, backend in enumerate(left):
                pick -= backend.weight
                if pick <= 0 or i == len(left) - 1:
                    out.append(left.pop(i))
                    break
        return out


async def wait_before(n: int, backend: Backend, previous: Backend | None, wait: float | None, health: Health) -> bool:
    """Before attempt ``n``: back off when retrying the same backend (at least its ``Retry-After``), move to
    another backend at once. False when the wait asked for is longer than ``MAX_WAIT`` (the retries end there).
    The one awaiting function here: the shells call it between attempts."""
    if backend is not previous:
        return True
    delay = max(backoff(n - 1, health.rng), wait or 0.0)
    if delay > MAX_WAIT:
        return False
    await asyncio.sleep(delay)
    return True
