"""The ledger as the server holds it: prices, the writer, the budgets, and the store for the admin API.

The serving process stays lean: it never imports SQLAlchemy, Alembic or genai-prices on the serving path.
``Ledger.start`` runs after the server is up: the writer's opener runs the ``prepare`` child (migrations and,
when budgets are counted in memory, the seed of today's and this month's spend), then opens the sink that
writes with the plain driver (``sqlite3`` on one thread, or ``asyncpg``); then (one child at a time) the prices
of the backend models the config names are looked up in a child (``prices_lookup``), when the ledger or a budget
is on.
``charge`` prices the answer of a client key with a budget and counts it, awaited by the request's task as soon
as its response ended (a model not known yet waits for its lookup, once per process). ``finish`` is called once
per request at its very end and queues the record; records not priced by ``charge`` are queued with
``cost_usd`` None and priced as the writer builds its batch (one lookup for its unknown models), off the request
path. ``reader`` opens the SQLAlchemy store of the admin API's reads at the first read.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from llm_proxy.config import ClientKey, Config
from llm_proxy.dialects import DIALECTS
from llm_proxy.ledger.budget import Budgets, period_starts
from llm_proxy.ledger.insert import row
from llm_proxy.ledger.prepare import TIMEOUT as PREPARE_TIMEOUT
from llm_proxy.ledger.prepare import prepare
from llm_proxy.ledger.prices import Pricer, Tokens, used
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


def configured_models(config: Config) -> list[tuple[str | None, str]]:
    """(provider, backend model) of every backend the routes name (pool and fallbacks). A backend without a
    dialect speaks the client's (proxy mode: any dialect the prefix serves), so its model is looked up under
    every provider: one lookup at start rather than one in the middle of the first answers' traffic."""
    providers = list(dict.fromkeys(spec.provider for spec in DIALECTS.values()))
    found: dict[tuple[str | None, str], None] = {}
    for route in config.routes:
        for backend in (*route.pool, *route.fallbacks):
            model, dialect = backend.backend_model_name, backend.backend_dialect or route.backend_dialect
            if "{model}" in model:
                continue
            for provider in providers if dialect is None else [provider_of(dialect)]:
                found[(provider, model)] = None
    return list(found)


class RowSink(Protocol):
    """Where the writer's rows go (``SqliteSink``, ``PostgresSink``)."""

    async def write(self, rows: Sequence[tuple[Any, ...]]) -> None: ...

    async def close(self) -> None: ...


async def open_sink(url: str) -> RowSink:
    """The sink of a prepared database (migrated by the ``prepare`` child)."""
    if url.startswith("sqlite"):
        from llm_proxy.ledger.sqlite_sink import SqliteSink

        return await SqliteSink.open(url)
    from llm_proxy.ledger.postgres_sink import PostgresSink

    return await PostgresSink.open(url)


class Ledger:
    """Everything the server does with usage (see the module docstring)."""

    def __init__(self, config: Config) -> None:
        self.url = config.server.usage_store
        self.pricer = Pricer(config.prices)
        self._state_store = config.server.state_store
        self.budgets: Budgets | None = None
        self._budgets_for(config)
        self._models = configured_models(config)
        self._reader: LedgerStore | None = None
        self._reader_lock = asyncio.Lock()
        capacity = config.server.usage_queue
        self.writer = LedgerWriter(self._open, capacity=capacity, describe=self.shown) if self.url else None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False

    @property
    def shown(self) -> str:
        """The store's URL without a password (for log lines)."""
        return "none" if self.url is None else shown_url(self.url)

    @property
    def prices_needed(self) -> bool:
        """Whether answers are priced at all: the ledger or a budget is on (else no lookup ever runs)."""
        return self.writer is not None or self.budgets is not None

    def _budgets_for(self, config: Config) -> None:
        if self.budgets is None and any(k.budgeted for k in config.client_keys):
            self.budgets = Budgets(self._state_store)

    def apply(self, config: Config) -> None:
        """A reloaded config: new prices and, when budgets first appear, their counters; new backend models are
        looked up in the background."""
        self.pricer.overrides = dict(config.prices)
        self._budgets_for(config)
        self._models = configured_models(config)
        if self._started:
            self._learn_models()

    async def _open(self) -> LedgerWriterSink:
        assert self.url is not None
        seeding = self.seeds_budgets
        since: tuple[float, ...] = ()
        if seeding:
            today, _, month, _ = period_starts(time.time())
            since = (today.timestamp(), month.timestamp())
        spend = await prepare(self.url, since)
        sink = await open_sink(self.url)
        log.info("usage ledger: writing to %s", self.shown)
        if seeding and self.budgets is not None:
            self.budgets.seed(spend[0], spend[1])
        return LedgerWriterSink(sink, self.pricer)

    async def reader(self, timeout: float) -> LedgerStore | None:
        """The store the admin API reads, opened (SQLAlchemy loaded, in a thread) at the first read once the
        ledger is prepared; None when the ledger is off or not prepared within ``timeout`` seconds."""
        if self.url is None or not await self.wait_ready(timeout):
            return None
        async with self._reader_lock:
            if self._reader is None:
                module = await asyncio.to_thread(importlib.import_module, "llm_proxy.ledger.store")
                store: LedgerStore = module.LedgerStore(self.url)
                await store.open(migrate=False)
                self._reader = store
        return self._reader

    async def start(self) -> None:
        """Begin writing (the store is prepared in the background); look up the configured models' prices in the
        background when answers are priced at all. Idempotent."""
        if self._started:
            return
        self._started = True
        self._learn_models()
        if self.writer is not None:
            self.writer.start()

    def _learn_models(self) -> None:
        if not self.prices_needed or all(self.pricer.known(*model) for model in self._models):
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a config applied outside the server's loop: the writer looks them up when needed
            return
        self._background(self._learn(self._models))

    async def _learn(self, models: list[tuple[str | None, str]]) -> None:
        if self.writer is not None and not self.writer.ready.is_set():
            await self.wait_ready(PREPARE_TIMEOUT)  # one child at a time: their memory does not add up
        await self.pricer.learn(models)

    def _background(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    async def charge(self, key: ClientKey, dialect: str, model: str, usage: Tokens | None) -> float | None:
        """Price an answer of a key with a budget and count it at once (the request's task awaits this as soon as
        its response ended, before the next request of the client can be checked); the cost, None if unknown.
        A model not known yet waits for its lookup (once per process)."""
        cost = await self.pricer.priced(provider_of(dialect), model, usage)
        if cost and self.budgets is not None:
            await self.budgets.add(key, cost)
        return cost

    def finish(self, record: UsageRecord, key: ClientKey | None, charged: bool) -> None:
        """The request ended: queue its record. A budgeted key's answer not ``charged`` yet (the client went away
        mid-answer) is priced and counted now, in the background (the writer prices its record the same way)."""
        if not charged and key is not None and key.budgeted and self.budgets is not None:
            self._background(self.charge(key, record.backend_dialect, record.backend_model, record))
        if self.writer is not None:
            self.writer.put(record)  # cost_usd None: the writer prices it

    async def close(self, timeout: float) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=min(timeout, 5.0))
        if self.writer is not None:
            await self.writer.close(timeout)
        await self.pricer.close()
        for task in set(self._tasks):
            task.cancel()
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self.budgets is not None:
            await self.budgets.close()


class LedgerWriterSink:
    """The writer's sink: prices what is unpriced (one lookup for the batch's unknown models), then writes."""

    def __init__(self, sink: RowSink, pricer: Pricer) -> None:
        self.sink = sink
        self._pricer = pricer

    async def write(self, records: list[UsageRecord]) -> None:
        pricer = self._pricer
        unpriced = {(r.backend_dialect, r.backend_model) for r in records if r.cost_usd is None and used(r)}
        unknown = [(provider_of(d), m) for d, m in unpriced if not pricer.known(provider_of(d), m)]
        if unknown:
            await pricer.learn(unknown)
        cost = pricer.cost
        await self.sink.write(
            [
                row(
                    r,
                    r.cost_usd if r.cost_usd is not None else cost(provider_of(r.backend_dialect), r.backend_model, r),
                )
                for r in records
            ]
        )

    async def close(self) -> None:
        await self.sink.close()
