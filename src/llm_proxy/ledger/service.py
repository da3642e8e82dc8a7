"""The ledger as the server holds it: prices, the writer, the budgets, and the store for the admin API.

``Ledger.start`` runs after the server is up: it loads SQLAlchemy and genai-prices in threads, opens the store
(migrating it) and, when budgets are counted in memory, seeds them from the ledger. ``charge`` prices the answer
of a client key with a budget and counts it, awaited by the request's task as soon as its response ended.
``finish`` is called once per request at its very end and queues the record; records not priced by ``charge``
are queued with ``cost_usd`` None and priced as the writer builds its batch, off the request path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
import time
from typing import TYPE_CHECKING, Any

from llm_proxy.canonical import Usage
from llm_proxy.config import ClientKey, Config
from llm_proxy.dialects import DIALECTS
from llm_proxy.ledger.budget import Budgets, period_starts
from llm_proxy.ledger.prices import Pricer
from llm_proxy.ledger.record import UsageRecord
from llm_proxy.ledger.writer import LedgerWriter

if TYPE_CHECKING:
    from llm_proxy.ledger.store import LedgerStore

log = logging.getLogger("llm_proxy.ledger")


def shown_url(url: str) -> str:
    """A database URL with its password masked, for messages."""
    scheme, sep, rest = url.partition("://")
    auth, at, host = rest.rpartition("@")
    if not at or ":" not in auth:
        return url
    return f"{scheme}{sep}{auth.split(':', 1)[0]}:***@{host}"


def provider_of(dialect: str) -> str | None:
    """The provider serving a backend dialect (``DialectSpec.provider``), None for an unknown dialect."""
    spec = DIALECTS.get(dialect)
    return None if spec is None else spec.provider


class Ledger:
    """Everything the server does with usage (see the module docstring)."""

    def __init__(self, config: Config) -> None:
        self.url = config.server.usage_store
        self.pricer = Pricer(config.prices)
        self._state_store = config.server.state_store
        self.budgets: Budgets | None = None
        self._budgets_for(config)
        self.store: LedgerStore | None = None
        capacity = config.server.usage_queue
        self.writer = LedgerWriter(self._open, capacity=capacity, describe=self.shown) if self.url else None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False

    @property
    def shown(self) -> str:
        """The store's URL without a password (for log lines)."""
        return "none" if self.url is None else shown_url(self.url)

    def _budgets_for(self, config: Config) -> None:
        if self.budgets is None and any(k.budgeted for k in config.client_keys):
            self.budgets = Budgets(self._state_store)

    def apply(self, config: Config) -> None:
        """A reloaded config: new prices and, when budgets first appear, their counters."""
        self.pricer.overrides = dict(config.prices)
        self._budgets_for(config)

    async def _open(self) -> LedgerWriterSink:
        module = await asyncio.to_thread(importlib.import_module, "llm_proxy.ledger.store")
        store: LedgerStore = module.LedgerStore(self.url)
        await store.open()
        self.store = store
        log.info("usage ledger: writing to %s", self.shown)
        if self.budgets is not None and not self.budgets.shared:
            await self.seed(store)
        return LedgerWriterSink(store, self.pricer)

    async def seed(self, store: LedgerStore) -> None:
        """Today's and this month's spend per client key, from the ledger, into the memory counters."""
        if self.budgets is None:
            return
        today, _, month, _ = period_starts(time.time())
        self.budgets.seed(await store.spend(today.timestamp()), await store.spend(month.timestamp()))

    async def start(self) -> None:
        """Begin writing (the store opens in the background); warm genai-prices in a thread. Idempotent."""
        if self._started:
            return
        self._started = True
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.pricer.warm))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if self.writer is not None:
            self.writer.start()

    async def wait_ready(self, timeout: float) -> bool:
        """Wait until the store is open (budgets counted in memory need its seed); False after ``timeout``."""
        if self.writer is None:
            return True
        try:
            await asyncio.wait_for(self.writer.ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def seeds_budgets(self) -> bool:
        return self.writer is not None and self.budgets is not None and not self.budgets.shared

    async def charge(self, key: ClientKey, dialect: str, model: str, usage: Usage | None) -> float | None:
        """Price an answer of a key with a budget and count it at once (the request's task awaits this as soon as
        its response ended, before the next request of the client can be checked); the cost, None if unknown."""
        cost = self.pricer.cost(provider_of(dialect), model, usage)
        if cost and self.budgets is not None:
            await self.budgets.add(key, cost)
        return cost

    def finish(self, record: UsageRecord, key: ClientKey | None, charged: bool) -> None:
        """The request ended: queue its record. A budgeted key's answer not ``charged`` yet (the client went away
        mid-answer) is priced and counted now."""
        if not charged and key is not None and key.budgeted and self.budgets is not None:
            cost = self.pricer.cost(provider_of(record.backend_dialect), record.backend_model, _usage(record))
            record = dataclasses.replace(record, cost_usd=cost)
            if cost:
                task = asyncio.get_running_loop().create_task(self.budgets.add(key, cost))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        if self.writer is not None:
            self.writer.put(record)  # cost_usd None: the writer prices it

    async def close(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=min(timeout, 5.0))
        if self.writer is not None:
            await self.writer.close(timeout)
        if self.budgets is not None:
            await self.budgets.close()


def _usage(record: UsageRecord) -> Usage:
    return Usage(
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cache_read_tokens=record.cache_read_tokens,
        cache_write_tokens=record.cache_write_tokens,
        reasoning_tokens=record.reasoning_tokens,
    )


class LedgerWriterSink:
    """The writer's sink: prices what is unpriced, then writes the batch."""

    def __init__(self, store: LedgerStore, pricer: Pricer) -> None:
        self.store = store
        self._pricer = pricer

    async def write(self, records: list[UsageRecord]) -> None:
        await self.store.write(records, self._price)

    def _price(self, record: UsageRecord) -> float | None:
        return self._pricer.cost(provider_of(record.backend_dialect), record.backend_model, _usage(record))

    async def close(self) -> None:
        await self.store.close()
