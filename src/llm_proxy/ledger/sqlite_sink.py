"""Writes to a SQLite ledger with the standard library's ``sqlite3``, on one thread that owns the connection.

A single-worker executor holds the connection (opened in that thread, used only there), so the event loop never
waits on the file: a batch is one ``executemany`` in one transaction, handed to the thread. The pragmas are the
ones every process of the ledger uses: WAL (worker processes of one host share the file), a busy timeout, and
``synchronous=NORMAL`` (with WAL: durable across crashes of the process). The schema is not made here: the
``prepare`` child migrated it before the sink opens.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llm_proxy.ledger.insert import insert_sql

PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA busy_timeout=5000", "PRAGMA synchronous=NORMAL")
_INSERT = insert_sql("qmark")


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///PATH`` URL."""
    return url.removeprefix("sqlite:///").partition("?")[0]


class SqliteSink:
    """One connection on one thread (see the module docstring)."""

    def __init__(self, path: str, executor: ThreadPoolExecutor) -> None:
        self._path = path
        self._executor = executor
        self._conn: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, url: str) -> SqliteSink:
        executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-sqlite")
        sink = cls(sqlite_path(url), executor)
        try:
            await sink._call(sink._connect)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return sink

    async def _call(self, work: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)

    def _connect(self) -> None:
        conn = sqlite3.connect(self._path, timeout=5.0, isolation_level=None)
        try:
            for pragma in PRAGMAS:
                conn.execute(pragma)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (``insert.row``'s values) in one transaction."""
        await self._call(self._insert, rows)

    def _insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        conn = self._conn
        if conn is None:
            raise RuntimeError("the ledger's SQLite sink is closed")
        conn.execute("BEGIN")
        try:
            conn.executemany(_INSERT, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def close(self) -> None:
        if self._conn is not None:
            await self._call(self._disconnect)
        self._executor.shutdown(wait=False)

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
