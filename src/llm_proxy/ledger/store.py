"""The ledger's database: SQLite or PostgreSQL through SQLAlchemy's async engine, the schema kept by Alembic.

``LedgerStore.open`` makes the engine and applies the migrations (``migrations/``, programmatically: no
``alembic.ini``); several replicas starting together on one PostgreSQL take an advisory lock for it. SQLite
runs in WAL mode with a busy timeout, so that worker processes of one host can share the file. Writes are
one ``executemany`` per batch in one transaction; reads are SQL ``GROUP BY`` (``ledger.query`` builds them).
Importing this module loads SQLAlchemy (about 0.2 s): the server does it off the request path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from importlib.resources import files
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from llm_proxy.ledger.query import records_query, spend_query, summary_query
from llm_proxy.ledger.record import UsageRecord
from llm_proxy.ledger.schema import USAGE
from llm_proxy.ledger.summary import Summary

_COLUMNS = tuple(field.name for field in dataclasses.fields(UsageRecord) if field.name != "cost_usd")
_FIELDS = (*_COLUMNS, "cost_usd")
"""The columns an INSERT names, in the order of ``_row``'s values (``cost_usd`` last: it may be priced there)."""
Pricing = Callable[[UsageRecord], float | None]
_MIGRATION_LOCK = 7_317_017
"""PostgreSQL advisory lock id held while one replica migrates (the others wait, then find nothing to do)."""


def async_url(url: str) -> str:
    """The SQLAlchemy URL with its async driver (aiosqlite, asyncpg)."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    return url


class LedgerStore:
    """One database holding the ledger."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine | None = None

    async def open(self) -> None:
        """Connect and bring the schema up to date (idempotent)."""
        if self.engine is not None:
            return
        sqlite = self.url.startswith("sqlite")
        options: dict[str, Any] = {"pool_pre_ping": not sqlite}
        engine = create_async_engine(async_url(self.url), **options)
        if sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_migrate)
        except BaseException:
            await engine.dispose()
            raise
        self.engine = engine

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None

    def _engine(self) -> AsyncEngine:
        if self.engine is None:
            raise RuntimeError("the ledger store is not open")
        return self.engine

    async def write(self, records: Sequence[UsageRecord], price: Pricing | None = None) -> None:
        """Insert ``records`` in one transaction: one executemany of the driver (SQLAlchemy Core's row handling
        cost 16 µs of CPU per record, the driver's own 10 µs; this runs in the proxy's process). ``price`` gives
        the cost of records whose ``cost_usd`` is None."""
        if not records:
            return
        rows = [_row(record, price) for record in records]
        engine = self._engine()
        sql = _insert_sql(engine.dialect.paramstyle)
        async with engine.begin() as conn:
            if sql is None:
                await conn.execute(insert(USAGE), [dict(zip(_FIELDS, row, strict=True)) for row in rows])
            else:
                await conn.exec_driver_sql(sql, rows)

    async def summary(self, summary: Summary) -> list[dict[str, Any]]:
        """The grouped totals ``summary`` asks for (see ``ledger.query``)."""
        engine = self._engine()
        statement = summary_query(summary, engine.dialect.name)
        async with engine.connect() as conn:
            result = await conn.execute(statement)
            return [summary.row(dict(row)) for row in result.mappings()]

    async def records(self, since: float, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Records from ``since`` on, oldest first: the newest ``limit`` of them, and whether more were left out."""
        async with self._engine().connect() as conn:
            result = await conn.execute(records_query(since, limit + 1))
            rows = [{str(key): value for key, value in row.items()} for row in result.mappings()]
        truncated = len(rows) > limit
        rows = rows[:limit]
        rows.reverse()
        for row in rows:
            row.pop("id", None)
        return rows, truncated

    async def spend(self, since: float) -> dict[str, float]:
        """USD spent by each client key from ``since`` on (priced records only)."""
        async with self._engine().connect() as conn:
            result = await conn.execute(spend_query(since))
            return {str(client): float(cost or 0.0) for client, cost in result.all()}


def _row(record: UsageRecord, price: Pricing | None) -> tuple[Any, ...]:
    values = [getattr(record, name) for name in _COLUMNS]
    values.append(price(record) if record.cost_usd is None and price is not None else record.cost_usd)
    return tuple(values)


def _insert_sql(paramstyle: str) -> str | None:
    """The INSERT of one record in the driver's positional parameter style (None: another style)."""
    marks = {
        "qmark": ["?"] * len(_FIELDS),
        "format": ["%s"] * len(_FIELDS),
        "numeric_dollar": [f"${i}" for i in range(1, len(_FIELDS) + 1)],
        "numeric": [f":{i}" for i in range(1, len(_FIELDS) + 1)],
    }.get(paramstyle)
    if marks is None:
        return None
    return f"INSERT INTO {USAGE.name} ({', '.join(_FIELDS)}) VALUES ({', '.join(marks)})"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across crashes of the process
    cursor.close()


def _migrate(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
    config = AlembicConfig()
    config.set_main_option("script_location", str(files("llm_proxy.ledger") / "migrations"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
