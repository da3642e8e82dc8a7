"""Spending budgets of client keys: USD per UTC day and per calendar month (UTC).

Spend is counted the moment a response ends (not when the ledger's batch reaches the database), so a burst
cannot overrun a budget by more than the requests already in flight. With a Redis ``state_store`` the
replicas count together (``INCRBYFLOAT`` on one key per client and day or month, expiring after the
period); otherwise each process counts in memory, seeded at start from the ledger so that a restart does not
reset a budget. When Redis cannot be reached, spend is counted locally (one warning per outage).

A key over a budget gets 429 (``ErrorKind.BUDGET``: ``rate_limit_error`` for Claude clients,
``insufficient_quota`` for OpenAI's, ``ThrottlingException`` for Bedrock's), naming the budget and when it
resets, with ``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from llm_proxy.canonical import ErrorKind, ProxyError
from llm_proxy.config import ClientKey
from llm_proxy.errors import ProxyFailure

log = logging.getLogger("llm_proxy.ledger")

_PREFIX = "llmp-budget"


def period_starts(now: float) -> tuple[dt.datetime, dt.datetime, dt.datetime, dt.datetime]:
    """The start of today, of tomorrow, of this month and of the next (UTC)."""
    today = dt.datetime.fromtimestamp(now, dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)
    return today, today + dt.timedelta(days=1), month, next_month


class Budgets:
    """Spend per client key this day and this month, and the check made before each request."""

    def __init__(self, state_store: str | None, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._local: dict[str, float] = {}
        self._redis: Any = None
        self._errors: tuple[type[Exception], ...] = ()
        self._degraded = False
        if state_store and state_store.startswith(("redis://", "rediss://", "unix://")):
            import redis.asyncio as aioredis  # only with a Redis state store
            from redis.exceptions import RedisError

            self._redis = aioredis.Redis.from_url(state_store, socket_timeout=1.0, socket_connect_timeout=0.5)
            self._errors = (RedisError, OSError)

    @property
    def shared(self) -> bool:
        """Whether replicas count together (a Redis state store); else spend is seeded from the ledger."""
        return self._redis is not None

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    def _keys(self, name: str, now: float) -> tuple[str, str]:
        today, _, month, _ = period_starts(now)
        return f"{_PREFIX}:{name}:d:{today:%Y-%m-%d}", f"{_PREFIX}:{name}:m:{month:%Y-%m}"

    def seed(self, today: dict[str, float], month: dict[str, float]) -> None:
        """The spend the ledger holds for this day and month (memory counters only; a restart keeps budgets)."""
        now = self._clock()
        for name, spent in today.items():
            day_key, _ = self._keys(name, now)
            self._local[day_key] = max(self._local.get(day_key, 0.0), spent)
        for name, spent in month.items():
            _, month_key = self._keys(name, now)
            self._local[month_key] = max(self._local.get(month_key, 0.0), spent)

    async def spent(self, key: ClientKey) -> tuple[float, float]:
        """USD spent by ``key`` today and this month."""
        day_key, month_key = self._keys(key.name, self._clock())
        if self._redis is not None:
            try:
                values = await self._redis.mget(day_key, month_key)
            except self._errors as exc:
                self._outage(exc)
            else:
                self._recovered()
                return float(values[0] or 0.0), float(values[1] or 0.0)
        return self._local.get(day_key, 0.0), self._local.get(month_key, 0.0)

    async def check(self, key: ClientKey) -> None:
        """Raise 429 when ``key`` has spent a budget of this day or month."""
        if not key.budgeted:
            return
        day, month = await self.spent(key)
        now = self._clock()
        _, tomorrow, _, next_month = period_starts(now)
        if key.budget_usd_per_day is not None and day >= key.budget_usd_per_day:
            raise _over(key.name, "daily", key.budget_usd_per_day, day, tomorrow, now)
        if key.budget_usd_per_month is not None and month >= key.budget_usd_per_month:
            raise _over(key.name, "monthly", key.budget_usd_per_month, month, next_month, now)

    async def add(self, key: ClientKey, cost: float) -> None:
        """Count ``cost`` USD against ``key``'s budgets (as soon as its response ended)."""
        if cost <= 0:
            return
        now = self._clock()
        day_key, month_key = self._keys(key.name, now)
        if self._redis is not None:
            _, tomorrow, _, next_month = period_starts(now)
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.incrbyfloat(day_key, cost)
                    pipe.expireat(day_key, int(tomorrow.timestamp()) + 3600)
                    pipe.incrbyfloat(month_key, cost)
                    pipe.expireat(month_key, int(next_month.timestamp()) + 3600)
                    await pipe.execute()
            except self._errors as exc:
                self._outage(exc)
            else:
                self._recovered()
                return
        self._local[day_key] = self._local.get(day_key, 0.0) + cost
        self._local[month_key] = self._local.get(month_key, 0.0) + cost
        if len(self._local) > 4096:  # keys of past days and months are not needed any more
            live = set(self._keys("", now))
            suffixes = tuple(k.removeprefix(f"{_PREFIX}::") for k in live)
            self._local = {k: v for k, v in self._local.items() if k.endswith(suffixes)}

    def _outage(self, exc: Exception) -> None:
        if not self._degraded:
            log.warning("client key budgets counted locally while the state store is unavailable: %s", exc)
            self._degraded = True

    def _recovered(self) -> None:
        if self._degraded:
            log.info("state store available again: client key budgets shared again")
            self._degraded = False


def _over(name: str, which: str, budget: float, spent: float, resets: dt.datetime, now: float) -> ProxyFailure:
    wait = max(1, round(resets.timestamp() - now))
    message = (
        f"the client key {name!r} has used its {which} budget of ${budget:g} (spent ${spent:.4f}); "
        f"it resets at {resets:%Y-%m-%dT%H:%M:%SZ}"
    )
    return ProxyFailure(
        ProxyError(status=429, kind=ErrorKind.BUDGET, message=message, code="budget_exceeded", retry_after=str(wait))
    )
