"""``python -m llm_proxy.ledger.prepare [SINCE ...]``: bring the ledger's schema up to date, in a child process.

The serving process runs it (``prepare``) before its writer opens: the child reads the database URL on stdin and
asks the database, with the plain driver (``sqlite3``, ``asyncpg``), which Alembic revision it is at. Only when
that is not ``HEAD`` (a new database, or a proxy upgraded with a new migration) does it load SQLAlchemy and
Alembic and apply the migrations (``LedgerStore.open``; replicas on one PostgreSQL take an advisory lock, so one
migrates and the others find nothing to do): a restart costs a child of about 0.2 s and 20 MB, a migration one
of about 2 s and 60 MB. Then, for each ``SINCE`` (Unix time) given, it reads the USD each client key spent from
then on (the seed of budgets counted in memory: today's and this month's spend). It prints
``{"spend": [{client: usd, ...}, ...]}`` on stdout, one mapping per ``SINCE``. On failure it prints
``{"error": "..."}`` (one line, the URL's password masked) and exits 1.

This module imports nothing heavy at import time (the serving process imports it for ``prepare``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any

import orjson

from llm_proxy.ledger.child import fail, run_child
from llm_proxy.ledger.record import TABLE

TIMEOUT = 60.0
"""Seconds the child may take (importing SQLAlchemy and Alembic, connecting, migrating, reading the spend)."""
HEAD = "0001"
"""The Alembic revision of the newest migration (``migrations/versions``; a test checks it is Alembic's head)."""
SPEND = f"SELECT client, SUM(cost_usd) FROM {TABLE} WHERE time >= ? AND cost_usd IS NOT NULL GROUP BY client"
"""USD spent per client key from a time on (priced records only)."""


async def prepare(url: str, spend_since: Sequence[float] = (), *, timeout: float = TIMEOUT) -> list[dict[str, float]]:
    """Migrate the ledger at ``url`` in a child process; the spend per client key from each of ``spend_since``.

    Raises ``ChildFailed`` (its message says why, without the password) when the database cannot be prepared.
    """
    args = [repr(float(since)) for since in spend_since]
    out = await run_child(__name__, args, url.encode(), timeout)
    spend = orjson.loads(out)["spend"]
    return [{str(client): float(usd) for client, usd in each.items()} for each in spend]


async def _prepare(url: str, spend_since: Sequence[float]) -> list[dict[str, float]]:
    if url.startswith("sqlite"):
        from llm_proxy.ledger.sqlite_sink import sqlite_path

        database: _Database = _Sqlite(sqlite_path(url))
    else:
        database = await _Postgres.connect(url)
    try:
        if await database.revision() != HEAD:
            from llm_proxy.ledger.store import LedgerStore

            store = LedgerStore(url)
            await store.open()  # the migrations
            await store.close()
        return [
            {str(client): float(usd or 0.0) for client, usd in await database.spend(since)} for since in spend_since
        ]
    finally:
        await database.close()


class _Database:
    """The database as the plain driver sees it."""

    async def revision(self) -> str | None:
        """The Alembic revision the database is at; None when it has none (a new database)."""
        raise NotImplementedError

    async def spend(self, since: float) -> list[Any]:
        """(client, USD) rows of ``SPEND``."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class _Sqlite(_Database):
    def __init__(self, path: str) -> None:
        import sqlite3

        self._errors = sqlite3.OperationalError
        self._conn = sqlite3.connect(path, timeout=5.0)

    async def revision(self) -> str | None:
        try:
            found = self._conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except self._errors as exc:
            if "no such table" in str(exc):
                return None
            raise
        return None if found is None else str(found[0])

    async def spend(self, since: float) -> list[Any]:
        return self._conn.execute(SPEND, (since,)).fetchall()

    async def close(self) -> None:
        self._conn.close()


class _Postgres(_Database):
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @classmethod
    async def connect(cls, url: str) -> _Postgres:
        import asyncpg

        return cls(await asyncpg.connect(url, timeout=10.0))

    async def revision(self) -> str | None:
        import asyncpg

        try:
            found = await self._conn.fetchval("SELECT version_num FROM alembic_version")
        except asyncpg.UndefinedTableError:
            return None
        return None if found is None else str(found)

    async def spend(self, since: float) -> list[Any]:
        return list(await self._conn.fetch(SPEND.replace("?", "$1"), since))

    async def close(self) -> None:
        await self._conn.close()


def _masked(text: str, url: str) -> str:
    from llm_proxy.ledger.service import shown_url

    scheme, _, rest = url.partition("://")
    auth, at, _ = rest.rpartition("@")
    password = auth.partition(":")[2] if at else ""
    text = text.replace(url, shown_url(url))
    return text.replace(password, "***") if password else text


def main(argv: Sequence[str]) -> int:
    url = sys.stdin.read().strip()
    try:
        spend_since = [float(arg) for arg in argv]
        spend = asyncio.run(_prepare(url, spend_since))
    except Exception as exc:  # one line for the parent's warning, never a password
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return fail(_masked(f"{type(exc).__name__}: {first}" if first else type(exc).__name__, url))
    sys.stdout.buffer.write(orjson.dumps({"spend": spend}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
