"""``python -m llm_proxy.ledger.prepare [SINCE ...]``: bring the ledger's schema up to date, in a child process.

The serving process runs it (``prepare``) before its writer opens: the child reads the database URL on stdin,
applies the Alembic migrations (``LedgerStore.open``; replicas on one PostgreSQL take an advisory lock, so one
migrates and the others find nothing to do) and, for each ``SINCE`` (Unix time) given, reads the USD each client
key spent from then on (the seed of budgets counted in memory: today's and this month's spend). It prints
``{"spend": [{client: usd, ...}, ...]}`` on stdout, one mapping per ``SINCE``. On failure it prints
``{"error": "..."}`` (one line, the URL's password masked) and exits 1.

SQLAlchemy, Alembic and the drivers load in the child only; this module imports nothing heavy at import time
(the serving process imports it for ``prepare``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import orjson

from llm_proxy.ledger.child import fail, run_child

TIMEOUT = 60.0
"""Seconds the child may take (importing SQLAlchemy and Alembic, connecting, migrating, reading the spend)."""


async def prepare(url: str, spend_since: Sequence[float] = (), *, timeout: float = TIMEOUT) -> list[dict[str, float]]:
    """Migrate the ledger at ``url`` in a child process; the spend per client key from each of ``spend_since``.

    Raises ``ChildFailed`` (its message says why, without the password) when the database cannot be prepared.
    """
    args = [repr(float(since)) for since in spend_since]
    out = await run_child(__name__, args, url.encode(), timeout)
    spend = orjson.loads(out)["spend"]
    return [{str(client): float(usd) for client, usd in each.items()} for each in spend]


async def _prepare(url: str, spend_since: Sequence[float]) -> list[dict[str, float]]:
    from llm_proxy.ledger.store import LedgerStore

    store = LedgerStore(url)
    await store.open()
    try:
        return [await store.spend(since) for since in spend_since]
    finally:
        await store.close()


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
