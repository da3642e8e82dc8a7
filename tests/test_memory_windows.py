"""The client key limits' in-process storage (``access.memory_windows``): the same answers as ``limits``' own
``MemoryStorage``, at a constant cost per hit, with no task or thread per hit and no key kept once expired.

The clock is the test's (``time.time`` replaced), advanced by random non-round steps so that no hit lands
exactly on a window's edge (where the library's own storage answers differently before and after its
background expiry has run).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.util import WindowStats

from llm_proxy.access.memory_windows import SWEEP_EVERY, MemoryWindows


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.123

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    return fake


def test_the_moving_window_answers_as_the_librarys_own_storage(clock: Clock) -> None:
    """Random hits of random costs on three keys and limits, with reads of the window in between, over several
    minutes: every answer (allowed, and the window's oldest hit and count) equal to the library's."""

    async def scenario() -> tuple[list[object], list[object]]:
        ours, theirs = MemoryWindows(), MemoryStorage()
        got: list[object] = []
        expected: list[object] = []
        rng = random.Random(7)
        for _ in range(3_000):
            clock.now += rng.expovariate(1 / 0.4)  # ~150 hits a minute on average, in bursts and gaps
            key, limit = rng.choice([("a", 5), ("b", 40), ("c", 1)])
            if rng.random() < 0.2:
                got.append(_window(await ours.get_moving_window(key, limit, 60)))
                expected.append(_window(await theirs.get_moving_window(key, limit, 60)))
            else:
                cost = rng.choice([1, 1, 1, 2, limit + 1])
                got.append(await ours.acquire_entry(key, limit, 60, cost))
                expected.append(await theirs.acquire_entry(key, limit, 60, cost))
            await asyncio.sleep(0)  # the library's expiry task runs (it makes no difference to its answers)
        return got, expected

    got, expected = asyncio.run(scenario())
    assert got == expected
    assert got.count(True) > 300 and got.count(False) > 300  # both answers were exercised


def _window(window: tuple[float, int]) -> tuple[float | None, int]:
    """The window's oldest hit and count; no time for an empty window (the library's storage gives the time of
    an expired hit its expiry task has not dropped yet, ours the current time: either way nothing to wait for)."""
    oldest, count = window
    return (oldest if count else None), count


def _stats(stats: WindowStats) -> tuple[float, int]:
    return stats.reset_time, stats.remaining


def test_the_limiters_reset_time_and_remaining_come_from_the_window(clock: Clock) -> None:
    async def scenario() -> list[tuple[float, int]]:
        limiter = MovingWindowRateLimiter(MemoryWindows())
        item = RateLimitItemPerMinute(3)
        start = clock.now
        stats: list[tuple[float, int]] = []
        for step in (0.0, 10.0, 20.0):
            clock.now = start + step
            assert await limiter.hit(item, "team")
        clock.now = start + 30.5
        assert not await limiter.hit(item, "team")
        stats.append(_stats(await limiter.get_window_stats(item, "team")))
        clock.now = start + 60.25  # the first hit has left the window
        stats.append(_stats(await limiter.get_window_stats(item, "team")))
        assert await limiter.hit(item, "team")
        stats.append(_stats(await limiter.get_window_stats(item, "team")))
        return [(round(reset - start, 3), remaining) for reset, remaining in stats]

    assert asyncio.run(scenario()) == [(60.0, 0), (70.0, 1), (70.0, 0)]


def test_a_hit_starts_no_task_and_no_thread_and_keeps_only_the_window() -> None:
    """The library's storage starts an expiry task per hit, which hands a bisect to a thread; a key allowed
    far more than it gets holds exactly the hits of the last minute."""
    before = {thread.ident for thread in threading.enumerate()}

    async def scenario() -> tuple[set[int], set[int | None], int]:
        storage = MemoryWindows()
        tasks: set[int] = set()
        started: set[int | None] = set()  # threads that were not there before (one leaving is no matter)
        for _ in range(2_000):
            assert await storage.acquire_entry("busy", 10**8, 60)
            await asyncio.sleep(0)
            tasks.add(len(asyncio.all_tasks()))
            started |= {thread.ident for thread in threading.enumerate()} - before
        window, _ = storage._windows["busy"]
        return tasks, started, len(window)

    tasks, started, held = asyncio.run(scenario())
    assert tasks == {1}  # the scenario's own
    assert started == set()
    assert held == 2_000


def test_counters_count_within_their_expiry_and_restart_after_it(clock: Clock) -> None:
    async def scenario() -> list[int]:
        storage = MemoryWindows()
        counts = [await storage.incr("k", 120, 5), await storage.incr("k", 120, 7), await storage.get("k")]
        counts.append(await storage.decr("k", 20))  # never below zero
        counts.append(await storage.incr("k", 120, 3))
        clock.now += 120.5
        counts.append(await storage.get("k"))
        counts.append(await storage.incr("k", 120, 4))  # a new count, not the expired one's
        clock.now += 121
        counts.append(await storage.decr("k", 1))
        return counts

    assert asyncio.run(scenario()) == [5, 12, 12, 0, 3, 0, 4, 0]


def test_a_token_window_through_the_sliding_counter_refuses_what_exceeds_it(clock: Clock) -> None:
    async def scenario() -> list[bool]:
        limiter = SlidingWindowCounterRateLimiter(MemoryWindows())
        item = RateLimitItemPerMinute(1_000)
        return [
            await limiter.hit(item, "team", cost=600),
            await limiter.hit(item, "team", cost=500),
            await limiter.hit(item, "team", cost=400),
        ]

    assert asyncio.run(scenario()) == [True, False, True]


def test_keys_nobody_reads_again_are_swept(clock: Clock) -> None:
    """Windows whose hits have all expired and counters of past minutes go at the next sweep, which a hit on any
    key runs once ``SWEEP_EVERY`` seconds have passed; live keys stay."""

    async def scenario() -> list[int]:
        storage = MemoryWindows()
        for name in ("gone-1", "gone-2", "live"):
            await storage.acquire_entry(name, 10, 60)
        await storage.incr("tokens/old-minute", 120, 50)
        held = [storage.held_keys]
        clock.now += SWEEP_EVERY + 0.5
        await storage.acquire_entry("live", 10, 60)  # the sweep: the three older windows have expired
        held.append(storage.held_keys)
        clock.now += 61.25
        await storage.acquire_entry("live", 10, 60)
        held.append(storage.held_keys)
        return held

    assert asyncio.run(scenario()) == [4, 2, 1]


def test_clear_and_reset_forget_windows_and_counters(clock: Clock) -> None:
    async def scenario() -> list[object]:
        storage = MemoryWindows()
        await storage.acquire_entry("a", 1, 60)
        refused = await storage.acquire_entry("a", 1, 60)
        await storage.clear("a")
        after_clear = await storage.acquire_entry("a", 1, 60)
        await storage.incr("n", 60, 2)
        count = await storage.reset()
        return [refused, after_clear, count, storage.held_keys, await storage.get_moving_window("a", 1, 60)]

    assert asyncio.run(scenario()) == [False, True, 1, 0, (clock.now, 0)]
