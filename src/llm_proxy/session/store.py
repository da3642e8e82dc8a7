"""Small key-value state shared by the requests of a session, in memory or in Redis.

Two features keep state between requests: session progress (``progress.py``: one hash per session
whose counters are bumped by concurrent requests) and the Responses API ``previous_response_id`` store
(bounded byte blobs with a time to live). Both need only a handful of operations, so the interface is
deliberately small:

* ``get`` / ``set`` / ``delete``: a bytes value with a TTL;
* ``hupdate``: ONE atomic update of a hash (increments, plain sets and set-if-absent together), so
  concurrent requests of one session never lose a count and a whole update costs one round trip;
* ``hgetall``: read a hash;
* ``sadd`` / ``smembers``: a set of strings (e.g. ids already seen).

Every write refreshes the key's TTL: an active session never expires, an idle one disappears
``ttl_s`` seconds after its last write. Hash fields and set members are ``str``; values of ``get``/``set``
are ``bytes``.

Implementations: ``MemoryStore`` (default, one process, bounded LRU with lazy TTL eviction) and
``RedisStore`` (several replicas behind a load balancer share it). A Redis failure of any kind raises
``StateUnavailable`` so callers can degrade (a request must never fail because the store is down), and
``store.failures`` counts failed operations for metrics. ``open_store(url)`` picks one from the config.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

log = logging.getLogger("llm_proxy.session.store")

_EMPTY_INTS: Mapping[str, int] = {}
_EMPTY_STRS: Mapping[str, str] = {}


class StateUnavailable(Exception):
    """The state store could not be reached or did not answer in time; the caller should degrade."""


class StateStore(Protocol):
    """The operations llm-proxy needs from a shared store. All keys and fields are ``str``."""

    failures: int
    """Operations that raised ``StateUnavailable`` since the store was opened (for metrics)."""

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` under ``key`` for ``ttl_s`` seconds (replacing any value)."""
        ...

    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        """Store ``value`` under ``key`` only if the key holds nothing; False (nothing written) if it does."""
        ...

    async def delete(self, key: str) -> None: ...

    async def hupdate(
        self,
        key: str,
        *,
        incr: Mapping[str, int] = _EMPTY_INTS,
        put: Mapping[str, str] = _EMPTY_STRS,
        put_if_absent: Mapping[str, str] = _EMPTY_STRS,
        ttl_s: float,
    ) -> None:
        """Atomically, on the hash ``key``: add ``incr`` to integer fields (absent counts as 0), set ``put``
        fields, set ``put_if_absent`` fields that do not exist yet, and refresh the TTL."""
        ...

    async def hgetall(self, key: str) -> dict[str, str]:
        """All fields of the hash ``key`` ({} when absent or expired)."""
        ...

    async def sadd(self, key: str, members: Iterable[str], ttl_s: float) -> int:
        """Add ``members`` to the set ``key``, refresh its TTL; return how many were new."""
        ...

    async def smembers(self, key: str) -> frozenset[str]: ...

    async def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# In memory
# ---------------------------------------------------------------------------------------------

_Value = bytes | dict[str, str] | set[str]


class MemoryStore:
    """The in-process store: at most ``max_keys`` keys, least recently used evicted first.

    Expired keys are dropped lazily (when touched, and from the LRU end when a write needs room), so
    no background task is needed. No locks either: every method runs to completion without awaiting,
    and all callers share one event loop, so each operation is atomic with respect to the others.
    """

    def __init__(self, max_keys: int = 10_000, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self.failures = 0
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, _Value]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> bytes | None:
        value = self._read(key)
        if value is None:
            return None
        if not isinstance(value, bytes):
            raise TypeError(f"state key {key!r} does not hold bytes")
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self._write(key, bytes(value), ttl_s)

    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        if self._read(key) is not None:
            return False
        self._write(key, bytes(value), ttl_s)
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def hupdate(
        self,
        key: str,
        *,
        incr: Mapping[str, int] = _EMPTY_INTS,
        put: Mapping[str, str] = _EMPTY_STRS,
        put_if_absent: Mapping[str, str] = _EMPTY_STRS,
        ttl_s: float,
    ) -> None:
        current = self._read(key)
        if current is not None and not isinstance(current, dict):
            raise TypeError(f"state key {key!r} does not hold a hash")
        fields = dict(current) if current else {}
        for name, amount in incr.items():
            fields[name] = str(int(fields.get(name, "0")) + amount)
        fields.update(put)
        for name, value in put_if_absent.items():
            fields.setdefault(name, value)
        self._write(key, fields, ttl_s)

    async def hgetall(self, key: str) -> dict[str, str]:
        value = self._read(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise TypeError(f"state key {key!r} does not hold a hash")
        return dict(value)

    async def sadd(self, key: str, members: Iterable[str], ttl_s: float) -> int:
        current = self._read(key)
        if current is not None and not isinstance(current, set):
            raise TypeError(f"state key {key!r} does not hold a set")
        new = set(current) if current else set()
        before = len(new)
        new.update(members)
        self._write(key, new, ttl_s)
        return len(new) - before

    async def smembers(self, key: str) -> frozenset[str]:
        value = self._read(key)
        if value is None:
            return frozenset()
        if not isinstance(value, set):
            raise TypeError(f"state key {key!r} does not hold a set")
        return frozenset(value)

    async def close(self) -> None:
        self._data.clear()

    def _read(self, key: str) -> _Value | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def _write(self, key: str, value: _Value, ttl_s: float) -> None:
        self._data[key] = (self._clock() + ttl_s, value)
        self._data.move_to_end(key)
        self._evict()

    def _evict(self) -> None:
        # The LRU end is also where idle (hence expired) keys gather: drop those first, then the
        # least recently used live keys until the bound holds.
        now = self._clock()
        while self._data:
            key, (expires, _) = next(iter(self._data.items()))
            if expires > now and len(self._data) <= self.max_keys:
                return
            del self._data[key]


# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------


class RedisStore:
    """A store in Redis, shared by every replica that points at the same URL.

    ``hupdate`` runs as one MULTI/EXEC transaction (HINCRBY, HSET, HSETNX, PEXPIRE), so concurrent
    updates from any number of replicas never lose an increment. Timeouts are short because the store
    is an optional extra: after a failure, operations fail fast (without touching the network) for
    ``retry_after_s`` seconds, so a dead or black-holed Redis adds no latency to requests.
    """

    def __init__(
        self,
        url: str,
        *,
        socket_timeout: float = 1.0,
        connect_timeout: float = 0.5,
        max_connections: int = 64,
        retry_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Imported here: a proxy without a Redis store never pays for loading the client.
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        self._errors: tuple[type[Exception], ...] = (RedisError, OSError)
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=connect_timeout,  # waiting for a free pooled connection
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
        )
        self._redis = aioredis.Redis.from_pool(pool)  # the client owns the pool: aclose() disconnects it
        self.failures = 0
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._down_until = 0.0

    async def get(self, key: str) -> bytes | None:
        self._check_up()
        try:
            value = await self._redis.get(key)
        except self._errors as exc:
            raise self._failed(exc) from exc
        return value if isinstance(value, bytes | None) else value.encode()

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self._check_up()
        try:
            await self._redis.set(key, value, px=_millis(ttl_s))
        except self._errors as exc:
            raise self._failed(exc) from exc

    async def add(self, key: str, value: bytes, ttl_s: float) -> bool:
        self._check_up()
        try:
            written = await self._redis.set(key, value, px=_millis(ttl_s), nx=True)
        except self._errors as exc:
            raise self._failed(exc) from exc
        return bool(written)

    async def delete(self, key: str) -> None:
        self._check_up()
        try:
            await self._redis.delete(key)
        except self._errors as exc:
            raise self._failed(exc) from exc

    async def hupdate(
        self,
        key: str,
        *,
        incr: Mapping[str, int] = _EMPTY_INTS,
        put: Mapping[str, str] = _EMPTY_STRS,
        put_if_absent: Mapping[str, str] = _EMPTY_STRS,
        ttl_s: float,
    ) -> None:
        self._check_up()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for name, amount in incr.items():
                    pipe.hincrby(key, name, amount)
                for name, value in put.items():
                    pipe.hset(key, name, value)
                for name, value in put_if_absent.items():
                    pipe.hsetnx(key, name, value)
                pipe.pexpire(key, _millis(ttl_s))
                await pipe.execute()
        except self._errors as exc:
            raise self._failed(exc) from exc

    async def hgetall(self, key: str) -> dict[str, str]:
        self._check_up()
        try:
            raw = await self._redis.hgetall(key)
        except self._errors as exc:
            raise self._failed(exc) from exc
        return {_text(name): _text(value) for name, value in raw.items()}

    async def sadd(self, key: str, members: Iterable[str], ttl_s: float) -> int:
        items = list(members)
        self._check_up()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                if items:
                    pipe.sadd(key, *items)
                pipe.pexpire(key, _millis(ttl_s))
                results = await pipe.execute()
        except self._errors as exc:
            raise self._failed(exc) from exc
        return int(results[0]) if items else 0

    async def smembers(self, key: str) -> frozenset[str]:
        self._check_up()
        try:
            raw = await self._redis.smembers(key)
        except self._errors as exc:
            raise self._failed(exc) from exc
        return frozenset(_text(member) for member in raw)

    async def ping(self) -> None:
        """Raise ``StateUnavailable`` unless Redis answers (for a startup check)."""
        self._check_up()
        try:
            await self._redis.ping()
        except self._errors as exc:
            raise self._failed(exc) from exc

    async def close(self) -> None:
        await self._redis.aclose()

    def _check_up(self) -> None:
        if self._clock() < self._down_until:
            self.failures += 1
            raise StateUnavailable("redis state store unavailable (recent failure; retrying shortly)")

    def _failed(self, exc: BaseException) -> StateUnavailable:
        self.failures += 1
        self._down_until = self._clock() + self._retry_after_s
        return StateUnavailable(f"redis state store unavailable: {type(exc).__name__}: {exc}")


def _millis(ttl_s: float) -> int:
    return max(1, int(ttl_s * 1000))


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def open_store(url: str | None, *, max_keys: int = 10_000) -> StateStore:
    """The store named by the config: None or ``memory`` -> ``MemoryStore``; ``redis://``, ``rediss://``
    or ``unix://`` -> ``RedisStore``. Opening does not connect: Redis is contacted on first use."""
    if url is None or url in ("", "memory"):
        return MemoryStore(max_keys)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url)
    raise ValueError(f"unsupported state store {url!r}: use `memory` or a redis:// URL")
