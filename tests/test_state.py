"""The state store: the same cases against MemoryStore and a real redis-server, plus each one's specifics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from llm_proxy.canonical import Message, Request, Text
from llm_proxy.session.progress import ProgressDelta, ProgressTracker
from llm_proxy.session.store import MemoryStore, RedisStore, StateStore, StateUnavailable, open_store
from tests.redis_server import RedisServer


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    # Generous timeouts: these tests are about exact counts, and a loaded CI machine can take longer than the
    # proxy's fail-fast 0.5 s to open 64 connections at once (the timeouts have their own tests below).
    opened = (
        MemoryStore()
        if request.param == "memory"
        else RedisStore(request.getfixturevalue("redis_url"), connect_timeout=5.0, socket_timeout=5.0)
    )
    try:
        yield opened
    finally:
        await opened.close()


# ---------------------------------------------------------------------------------------------
# Same cases for both implementations
# ---------------------------------------------------------------------------------------------


async def test_bytes_values(store: StateStore) -> None:
    assert await store.get("k") is None
    await store.set("k", b"\x00\xffvalue", 60)
    assert await store.get("k") == b"\x00\xffvalue"
    await store.set("k", b"other", 60)
    assert await store.get("k") == b"other"
    await store.delete("k")
    assert await store.get("k") is None
    await store.delete("never-set")  # no error


async def test_hash_update(store: StateStore) -> None:
    assert await store.hgetall("h") == {}
    await store.hupdate("h", incr={"n": 2, "m": 1}, put={"s": "a"}, put_if_absent={"first": "one"}, ttl_s=60)
    await store.hupdate("h", incr={"n": 3}, put={"s": "b"}, put_if_absent={"first": "two", "other": "x"}, ttl_s=60)
    await store.hupdate("h", incr={"m": -1}, ttl_s=60)
    assert await store.hgetall("h") == {"n": "5", "m": "0", "s": "b", "first": "one", "other": "x"}


async def test_hash_fields_are_unicode(store: StateStore) -> None:
    await store.hupdate("h", put={"file:src/é.py": "ü ✓"}, ttl_s=60)
    assert await store.hgetall("h") == {"file:src/é.py": "ü ✓"}


async def test_sets(store: StateStore) -> None:
    assert await store.smembers("s") == frozenset()
    assert await store.sadd("s", ["a", "b"], 60) == 2
    assert await store.sadd("s", ["b", "c"], 60) == 1
    assert await store.sadd("s", [], 60) == 0
    assert await store.smembers("s") == frozenset({"a", "b", "c"})


class FakeClock:
    """Time that moves only when a test says so: TTLs are checked without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_ttl_expiry() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.set("b", b"v", 0.2)
    await store.hupdate("h", incr={"n": 1}, ttl_s=0.2)
    await store.sadd("s", ["a"], 0.2)
    await store.set("long", b"v", 60)
    clock.now += 0.19
    assert await store.get("b") == b"v"
    clock.now += 0.02
    assert await store.get("b") is None
    assert await store.hgetall("h") == {}
    assert await store.smembers("s") == frozenset()
    assert await store.get("long") == b"v"


async def test_every_write_refreshes_the_ttl() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.hupdate("h", incr={"n": 1}, ttl_s=0.5)
    clock.now += 0.3
    await store.hupdate("h", incr={"n": 1}, ttl_s=0.5)
    clock.now += 0.3  # 0.6 s after the first write, 0.3 s after the second
    assert await store.hgetall("h") == {"n": "2"}
    clock.now += 0.21
    assert await store.hgetall("h") == {}


async def test_redis_sets_the_ttl_on_every_write(redis_url: str) -> None:
    # Redis expires keys itself: what the store must do is set PX on every write, which PTTL shows.
    store = RedisStore(redis_url)
    raw = redis.asyncio.Redis.from_url(redis_url)
    try:
        await store.set("b", b"v", 0.2)
        await store.add("a", b"v", 0.2)
        await store.sadd("s", ["a"], 0.2)
        await store.hupdate("h", incr={"n": 1}, ttl_s=0.2)
        for key in ("b", "a", "s", "h"):
            assert 0 < await raw.pttl(key) <= 200, key
        await store.hupdate("h", incr={"n": 1}, ttl_s=60)
        assert 59_000 < await raw.pttl("h") <= 60_000
        await store.set("b", b"w", 60)
        assert 59_000 < await raw.pttl("b") <= 60_000
    finally:
        await raw.aclose()
        await store.close()


async def test_concurrent_increments_lose_nothing(store: StateStore) -> None:
    await asyncio.gather(*(store.hupdate("c", incr={"n": 1, "t": 10}, ttl_s=60) for _ in range(200)))
    assert await store.hgetall("c") == {"n": "200", "t": "2000"}


# ---------------------------------------------------------------------------------------------
# Redis specifics
# ---------------------------------------------------------------------------------------------


async def test_two_redis_clients_share_exact_counts(redis_url: str) -> None:
    first = RedisStore(redis_url, connect_timeout=5.0, socket_timeout=5.0)
    second = RedisStore(redis_url, connect_timeout=5.0, socket_timeout=5.0)
    try:
        calls = [(first if i % 2 else second).hupdate("shared", incr={"n": 1}, ttl_s=60) for i in range(200)]
        await asyncio.gather(*calls)
        assert await first.hgetall("shared") == {"n": "200"}
        assert await second.hgetall("shared") == {"n": "200"}
        assert first.failures == second.failures == 0
    finally:
        await first.close()
        await second.close()


async def test_redis_ttl_is_set_on_the_key(redis_url: str, redis_server: RedisServer) -> None:
    store = RedisStore(redis_url)
    try:
        await store.hupdate("h", incr={"n": 1}, ttl_s=100)
        ttl = int(redis_server.command("PTTL", "h").lstrip(b":"))
        assert 99_000 < ttl <= 100_000
    finally:
        await store.close()


async def test_redis_killed_raises_state_unavailable(disposable_redis: RedisServer) -> None:
    store = RedisStore(disposable_redis.url, retry_after_s=0)
    try:
        await store.set("k", b"v", 60)
        disposable_redis.kill()
        for operation in (
            store.get("k"),
            store.set("k", b"v", 60),
            store.delete("k"),
            store.hupdate("h", incr={"n": 1}, ttl_s=60),
            store.hgetall("h"),
            store.sadd("s", ["a"], 60),
            store.smembers("s"),
            store.ping(),
        ):
            with pytest.raises(StateUnavailable):
                await operation
        assert store.failures == 8
    finally:
        await store.close()


async def test_redis_unreachable_fails_fast_after_a_failure() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", retry_after_s=30)  # nothing listens on port 1
    try:
        with pytest.raises(StateUnavailable, match="redis state store unavailable"):
            await store.get("k")
        started = time.monotonic()
        with pytest.raises(StateUnavailable, match="recent failure"):
            await store.hgetall("k")
        assert time.monotonic() - started < 0.05
        assert store.failures == 2
    finally:
        await store.close()


async def test_tracker_degrades_when_redis_dies(
    disposable_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(disposable_redis.url, retry_after_s=0)
    tracker = ProgressTracker(store, ttl_s=60, clock=lambda: 0.0)
    request = Request(model="m", messages=(Message(role="user", content=(Text(text="fix the bug"),)),))
    try:
        await tracker.record_request("s1", request)
        await tracker.record_response("s1", ProgressDelta(input_tokens=10, output_tokens=2, stop_reason="end_turn"))
        assert await tracker.render("s1") == (
            "## Session progress (added by llm-proxy)\n"
            "Started: 1970-01-01T00:00:00Z. Requests so far: 1. Tokens used: 10 in, 2 out.\n"
            "First request: fix the bug\n"
            "Last stop reason: end_turn"
        )
        disposable_redis.kill()
        with caplog.at_level(logging.DEBUG, logger="llm_proxy.session.progress"):
            assert await tracker.render("s1") is None
            await tracker.record_request("s1", request)  # no exception: the request goes on
            await tracker.record_response("s1", ProgressDelta(output_tokens=1))
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # one warning per outage, the rest at debug
        assert warnings[0].getMessage().startswith("session progress disabled while the state store is unavailable")
        assert tracker.failures == 3
        assert store.failures == 3
    finally:
        await store.close()


# ---------------------------------------------------------------------------------------------
# Memory specifics
# ---------------------------------------------------------------------------------------------


async def test_memory_bound_evicts_least_recently_used() -> None:
    store = MemoryStore(max_keys=3)
    for key in ("a", "b", "c"):
        await store.set(key, key.encode(), 60)
    assert await store.get("a") == b"a"  # "a" is now the most recently used
    await store.set("d", b"d", 60)
    assert len(store) == 3
    assert await store.get("b") is None
    assert [await store.get(k) for k in ("a", "c", "d")] == [b"a", b"c", b"d"]


async def test_memory_evicts_expired_keys_before_live_ones() -> None:
    clock = FakeClock()
    store = MemoryStore(max_keys=3, clock=clock)
    await store.set("old", b"1", 10)
    await store.set("live1", b"2", 100)
    await store.set("live2", b"3", 100)
    clock.now += 50
    await store.set("new", b"4", 100)
    assert len(store) == 3
    assert await store.get("old") is None
    assert [await store.get(k) for k in ("live1", "live2", "new")] == [b"2", b"3", b"4"]


async def test_memory_ttl_is_lazy_and_exact() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    await store.hupdate("h", incr={"n": 1}, ttl_s=10)
    clock.now += 9.999
    assert await store.hgetall("h") == {"n": "1"}
    clock.now += 0.001
    assert await store.hgetall("h") == {}
    assert len(store) == 0


async def test_memory_wrong_type_is_a_bug() -> None:
    store = MemoryStore()
    await store.set("k", b"v", 60)
    with pytest.raises(TypeError):
        await store.hgetall("k")


def test_open_store() -> None:
    assert isinstance(open_store(None), MemoryStore)
    assert isinstance(open_store("memory"), MemoryStore)
    assert isinstance(open_store("redis://127.0.0.1:6379/0"), RedisStore)
    with pytest.raises(ValueError, match="unsupported state store"):
        open_store("http://example")
