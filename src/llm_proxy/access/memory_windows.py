"""The client key limits' in-process storage: ``limits``' ``MemoryStorage`` with a constant cost per hit.

Written by hand because the library's own in-memory storage (``limits`` 5.8) costs what a proxy cannot pay on
every request:

- its moving window is a list with the newest entry first, and each hit *prepends* to it: a copy of every entry
  still in the window, up to ``requests_per_minute`` of them (a key allowed 100,000 a minute, at 1,000 req/s,
  copies 60,000 entries per request);
- every hit and every counter increment starts an expiry task when the last one has finished, and that task hands
  a bisect of each key's list to a thread (``asyncio.to_thread``) and copies the list again: under load, one task
  and one thread hand-off per request. Measured alone, with one event-loop turn per hit: 108-160 µs of CPU per
  hit (here: 4.8-5.4 µs, most of it the loop's turn).

Here a key's moving window is a ``deque`` of hit times, oldest first: a hit drops the entries that left the window
from the left and appends on the right (amortised constant time), with the same rule as the library's (refused when
``limit`` hits are younger than ``expiry`` seconds). The counters of the sliding window (tokens) stay the library's
``storage`` and ``expirations``, incremented without the expiry task. Nothing runs in the background: what expires
is dropped when its key is next read, and a sweep at most every ``SWEEP_EVERY`` seconds, run by a hit, drops the
keys nobody reads any more (a sliding window's counter of a past minute, a key removed by a reload), so memory
stays bounded by the live keys. The event loop is the only thread that touches it, and no method awaits in the
middle of an update, so the library's per-key locks are not needed.
"""

from __future__ import annotations

import time
from collections import deque
from itertools import repeat

from limits.aio.storage import MemoryStorage

SWEEP_EVERY = 60.0
"""Seconds between sweeps of keys that expired without being read again."""


class MemoryWindows(MemoryStorage):
    """``MemoryStorage`` for the moving window (requests) and the sliding window counter (tokens); see the module
    docstring for what differs."""

    def __init__(self) -> None:
        super().__init__()
        self._windows: dict[str, tuple[deque[float], int]] = {}
        """Per key: its hit times, oldest first, and its window's length in seconds."""
        self._sweep_at = time.time() + SWEEP_EVERY

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self.acquire(key, limit, expiry, amount)

    def acquire(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """``acquire_entry`` without a coroutine: the hit is counted (True) or refused (False) at once."""
        if amount > limit:
            return False
        now = time.time()
        window = self._live(key, now, expiry)
        if window is None:
            window = deque()
            self._windows[key] = (window, expiry)
        if len(window) + amount > limit:
            return False
        window.extend(repeat(now, amount))
        if now >= self._sweep_at:
            self._sweep(now)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """The time of the oldest hit still in the window and the number of hits in it (``now, 0`` when none)."""
        now = time.time()
        window = self._live(key, now, expiry)
        if not window:
            return now, 0
        return window[0], len(window)

    def _live(self, key: str, now: float, expiry: int) -> deque[float] | None:
        """``key``'s window with the hits older than ``expiry`` seconds dropped; None when it has none."""
        held = self._windows.get(key)
        if held is None:
            return None
        window = held[0]
        cutoff = now - expiry
        while window and window[0] < cutoff:
            window.popleft()
        if held[1] != expiry:  # the limit's window changed (a reload): the entries stay, under the new length
            self._windows[key] = (window, expiry)
        return window

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        self._expire_count(key, now)  # a past window's count is not carried over
        count = self.storage[key] = self.storage[key] + amount
        if count == amount:
            self.expirations[key] = now + expiry
        if now >= self._sweep_at:
            self._sweep(now)
        return count

    async def decr(self, key: str, amount: int = 1) -> int:
        if self._expire_count(key, time.time()):
            return 0
        count = self.storage[key] = max(self.storage[key] - amount, 0)
        return count

    def _expire_count(self, key: str, now: float) -> bool:
        """Drop ``key``'s counter if its expiry has come (what the library's ``get`` does, without a coroutine);
        True when it had no live count."""
        if self.expirations.get(key, 0) > now:
            return False
        self.storage.pop(key, None)
        self.expirations.pop(key, None)
        return True

    async def clear(self, key: str) -> None:
        await super().clear(key)
        self._windows.pop(key, None)

    async def reset(self) -> int | None:
        count = max(len(self.storage), len(self._windows))
        await super().reset()
        self._windows.clear()
        return count

    def _sweep(self, now: float) -> None:
        """Drop the hits and counters that expired, and the keys left with none."""
        self._sweep_at = now + SWEEP_EVERY
        for key in [key for key, (window, expiry) in self._windows.items() if not window or window[-1] < now - expiry]:
            del self._windows[key]  # its newest hit left the window: so did every other
        for key in [key for key, at in self.expirations.items() if at <= now]:
            self.storage.pop(key, None)
            del self.expirations[key]

    @property
    def held_keys(self) -> int:
        """Keys held: moving windows and counters."""
        return len(self._windows) + len(self.storage)
