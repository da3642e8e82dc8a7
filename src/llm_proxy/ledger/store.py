"""The ledger's database as SQLAlchemy sees it: the migrations, and the reads (reports, the admin API).

``LedgerStore.open`` makes an async engine (aiosqlite, asyncpg) and applies the migrations (``migrations/``,
programmatically: no ``alembic.ini``); several replicas starting together on one PostgreSQL take an advisory
lock for it. SQLite runs in WAL mode with a busy timeout, so that worker processes of one host can share the
file. Reads are SQL ``GROUP BY`` (``ledger.query`` builds them).

Importing this module loads SQLAlchemy (about 0.2 s, 20-30 MB). The serving process never migrates nor writes
through it: the ``prepare`` child migrates, the sinks (``sqlite_sink``, ``postgres_sink``) write with the plain
drivers. It is loaded there only by the first admin read (``Ledger.reader``: ``open(migrate=False)``, Alembic
not imported); ``llm-proxy usage`` and the ``prepare`` child are processes of their own.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from llm_proxy.ledger.query import records_query, summary_query
from llm_proxy.ledger.sqlite_sink import PRAGMAS
from llm_proxy.ledger.summary import Summary

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

    async def open(self, *, migrate: bool = True) -> None:
        """Connect and, unless told not to, bring the schema up to date (idempotent)."""
        if self.engine is not None:
            return
        sqlite = self.url.startswith("sqlite")
        options: dict[str, Any] = {"pool_pre_ping": not sqlite}
        engine = create_async_engine(async_url(self.url), **options)
        if sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        try:
            if migrate:
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def _migrate(connection: Connection) -> None:
    from alembic import command  # only where migrations run (the ``prepare`` child, ``llm-proxy usage``)
    from alembic.config import Config as AlembicConfig

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK})
    config = AlembicConfig()
    config.set_main_option("script_location", str(files("llm_proxy.ledger") / "migrations"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
