"""Writes to a PostgreSQL ledger with ``asyncpg``: one ``executemany`` per batch in one transaction.

A failed write drops the connection (it may be broken: the server restarted, the network went away); the next
write connects again, so the writer's retries reconnect by themselves. The schema is not made here: the
``prepare`` child migrated it before the sink opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm_proxy.ledger.insert import insert_sql

_INSERT = insert_sql("numeric_dollar")
CONNECT_TIMEOUT = 10.0
"""Seconds to connect (a write to an unreachable database fails after that, and is retried)."""


class PostgresSink:
    """A connection, made again after a failure (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: Any = None

    @classmethod
    async def open(cls, url: str) -> PostgresSink:
        sink = cls(url)
        await sink._connected()
        return sink

    async def _connected(self) -> Any:
        if self._conn is None:
            import asyncpg  # only with a PostgreSQL ledger

            self._conn = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT)
        return self._conn

    async def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (``insert.row``'s values) in one transaction."""
        conn = await self._connected()
        try:
            async with conn.transaction():
                await conn.executemany(_INSERT, rows)
        except BaseException:
            self._conn = None
            conn.terminate()
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close(timeout=5.0)
