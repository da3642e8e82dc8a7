"""Request and token limits per client key, shared by replicas through Redis (the ``limits`` library).

Requests are counted in a moving window of one minute (exact: one entry per request, at most
``requests_per_minute`` of them). Tokens are counted with a sliding window counter: this minute's and the
last minute's totals, the last one weighted by how much of it the window still covers. A moving window
keeps one entry per *token* (``limits`` prepends ``cost`` entries to a list, in memory as in Redis' script):
a 5,000-token answer against a 200,000-token limit took ~0.4-0.7 ms and up to 200,000 list entries per
key; the counter costs the same whatever the count. With a Redis ``state_store`` the replicas count
together; when Redis cannot be reached, each replica counts locally (one warning per outage) rather than
refusing or letting everything through (in memory, ``access.memory_windows``: the library's own in-memory
storage costs a copy of the window and a thread hand-off per hit). Tokens are checked before a request (is
any budget left in the window?) and debited with the real usage when its response ends, so the request that
crosses the limit completes and the next one is refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MovingWindowSupport, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from llm_proxy.access.memory_windows import MemoryWindows
from llm_proxy.config import ClientKey

log = logging.getLogger("llm_proxy.access")

T = TypeVar("T")
MAX_CACHED_KEYS = 4096


class _Limiters:
    """The two strategies over one storage: requests in a moving window, tokens in a sliding window counter."""

    __slots__ = ("requests", "tokens")

    def __init__(self, storage: MemoryWindows | RedisStorage) -> None:
        self.requests = MovingWindowRateLimiter(storage)
        self.tokens = SlidingWindowCounterRateLimiter(storage)


class Quota:
    """The per-minute request and token windows of every client key."""

    def __init__(self, state_store: str | None) -> None:
        self._windows = MemoryWindows()
        self._local = _Limiters(self._windows)
        self._shared: _Limiters | None = None
        self._storage: RedisStorage | None = None
        if state_store and state_store.startswith(("redis://", "rediss://")):
            self._storage = RedisStorage(
                "async+" + state_store, implementation="redispy", wrap_exceptions=True, key_prefix="llmp-limits"
            )
            self._shared = _Limiters(self._storage)
        self._degraded = False
        self._items: dict[tuple[str, int], RateLimitItem] = {}
        self._keys: dict[tuple[str, int, str], str] = {}
        """Storage keys of (kind, amount, client key name): ``RateLimitItem.key_for`` formats one per call."""

    async def close(self) -> None:
        """Close the Redis connections (``limits`` offers no close of its own: its client is reached directly)."""
        if self._storage is not None:
            bridge: Any = self._storage.bridge  # typed as the abstract bridge; the redis-py one has the client
            await bridge.get_connection().aclose()
            self._storage = None

    def _item(self, kind: str, amount: int) -> RateLimitItem:
        key = (kind, amount)
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = RateLimitItemPerMinute(amount, namespace=kind)
        return item

    def _key(self, item: RateLimitItem, kind: str, name: str) -> str:
        cache_key = (kind, item.amount, name)
        storage_key = self._keys.get(cache_key)
        if storage_key is None:
            if len(self._keys) >= MAX_CACHED_KEYS:  # reloads may rename keys and change limits: stay bounded
                self._keys.clear()
            storage_key = self._keys[cache_key] = item.key_for(name)
        return storage_key

    async def take_request(self, key: ClientKey) -> float | None:
        """Count one request; None when under ``requests_per_minute``, else seconds until a slot frees up."""
        if key.requests_per_minute is None:
            return None
        item = self._item("rpm", key.requests_per_minute)
        storage_key, amount, expiry = self._key(item, "rpm", key.name), item.amount, item.get_expiry()
        if self._shared is None:  # counted here alone: at once, without the strategy's layers of coroutines
            if self._windows.acquire(storage_key, amount, expiry):
                return None
            return await self._reset_in(item, key.name)

        def hit(limiters: _Limiters) -> Awaitable[bool]:
            # ``limiters.requests.hit(item, key.name)`` with the storage key made once, not per request
            return cast(MovingWindowSupport, limiters.requests.storage).acquire_entry(storage_key, amount, expiry)

        allowed = await self._run(hit)
        return None if allowed else await self._reset_in(item, key.name)

    async def tokens_left(self, key: ClientKey) -> float | None:
        """None when ``tokens_per_minute`` is not yet spent this minute, else seconds until it frees up."""
        if key.tokens_per_minute is None:
            return None
        item = self._item("tpm", key.tokens_per_minute)
        stats = await self._run(lambda limiters: limiters.tokens.get_window_stats(item, key.name))
        return None if stats.remaining > 0 else max(1.0, stats.reset_time - time.time())

    async def debit_tokens(self, key: ClientKey, tokens: int) -> None:
        """Count the tokens a response used; when they cross the limit, the window is spent (not refused)."""
        if key.tokens_per_minute is None or tokens <= 0:
            return
        item = self._item("tpm", key.tokens_per_minute)

        async def debit(limiters: _Limiters) -> bool:
            limiter = limiters.tokens
            if await limiter.hit(item, key.name, cost=min(tokens, item.amount)):
                return True
            left = (await limiter.get_window_stats(item, key.name)).remaining
            return left <= 0 or await limiter.hit(item, key.name, cost=left)

        await self._run(debit)

    async def _reset_in(self, item: RateLimitItem, name: str) -> float:
        stats = await self._run(lambda limiters: limiters.requests.get_window_stats(item, name))
        return max(1.0, stats.reset_time - time.time())

    async def _run(self, action: Callable[[_Limiters], Awaitable[T]]) -> T:
        if self._shared is not None:
            try:
                result = await action(self._shared)
            except StorageError as exc:
                if not self._degraded:
                    log.warning("client key limits counted locally while the state store is unavailable: %s", exc)
                    self._degraded = True
            else:
                if self._degraded:
                    log.info("state store available again: client key limits shared again")
                    self._degraded = False
                return result
        return await action(self._local)
