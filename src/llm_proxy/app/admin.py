"""The admin paths: the usage API and the dashboard, behind ``server.admin_key``.

``GET /api/usage?since=24h&by=client,model`` grouped totals; ``GET /api/usage/records?since=24h`` the records
themselves (newest last, at most ``RECORDS_LIMIT``); ``GET /dashboard`` and ``/dashboard/<file>`` the page,
read from the package's ``ledger/dashboard`` folder (only the names it holds: no path leaves it).

Without an admin key configured these paths do not exist (404). The key is given as HTTP Basic password
(any user name) or ``Authorization: Bearer KEY``, compared in constant time; a missing or wrong key gets 401
with a Basic challenge, so that a browser asks for it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from llm_proxy.app.exchange import Exchange
from llm_proxy.ledger.summary import ReportError, Summary, parse_by, parse_since

if TYPE_CHECKING:
    from llm_proxy.ledger.service import Ledger

log = logging.getLogger("llm_proxy.admin")
PATHS = ("/api/usage", "/dashboard")
RECORDS_LIMIT = 50_000
"""Records ``/api/usage/records`` returns at most (the newest); ``truncated`` says when more were left out."""
STORE_WAIT = 10.0
"""Seconds a read waits for the store to open (it opens in the background after start)."""
_CHALLENGE = [(b"www-authenticate", b'Basic realm="llm-proxy"')]
_NO_STORE = (b"cache-control", b"no-store")
_JSON = "application/json"
_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "json": "application/json",
    "svg": "image/svg+xml",
    "png": "image/png",
    "ico": "image/x-icon",
    "woff2": "font/woff2",
}
"""Content types of the dashboard's files by extension; anything else (LICENSE, .txt) is plain text."""


def is_admin_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in PATHS)


def authorized(header: str, admin_key: str) -> bool:
    """Whether an ``Authorization`` value carries ``admin_key`` (Basic password or Bearer token)."""
    scheme, _, value = header.strip().partition(" ")
    presented = ""
    if scheme.lower() == "bearer":
        presented = value.strip()
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        presented = decoded.partition(":")[2]
    return hmac.compare_digest(presented.encode(), admin_key.encode())


class Admin:
    """The admin paths of one proxy (see the module docstring)."""

    def __init__(self, admin_key: str | None, ledger: Ledger) -> None:
        self.admin_key = admin_key
        self.ledger = ledger
        self._dashboard: dict[str, Traversable] | None = None

    async def handle(self, ex: Exchange) -> None:
        if self.admin_key is None:
            await _json(ex, 404, {"error": f"no such path: {ex.path}"})
            return
        if not authorized(ex.headers.get("authorization", ""), self.admin_key):
            await ex.respond(401, _JSON, orjson.dumps({"error": "the admin key is required"}), _CHALLENGE)
            return
        if ex.method != "GET":
            await _json(ex, 405, {"error": f"{ex.method} is not allowed here"})
            return
        path = ex.path.partition("?")[0]
        if path == "/api/usage":
            await self._usage(ex)
        elif path == "/api/usage/records":
            await self._records(ex)
        elif path in ("/dashboard", "/dashboard/"):
            await self._file(ex, "index.html")
        elif path.startswith("/dashboard/"):
            await self._file(ex, path.removeprefix("/dashboard/"))
        else:
            await _json(ex, 404, {"error": f"no such path: {path}"})

    async def _store(self, ex: Exchange) -> Any:
        ledger = self.ledger
        if ledger.writer is None:
            await _json(ex, 503, {"error": "the usage ledger is off (server.usage_store: none)"})
            return None
        try:
            store = await ledger.reader(STORE_WAIT)
        except Exception as exc:  # SQLAlchemy cannot open it: the database is down, say so
            await self._unavailable(ex, exc)
            return None
        if store is None:
            await _json(ex, 503, {"error": f"the usage ledger's store is not available ({ledger.shown})"})
        return store

    async def _usage(self, ex: Exchange) -> None:
        query = _query(ex)
        try:
            summary = Summary(parse_since(query.get("since"), time.time()), parse_by(query.get("by")))
        except ReportError as exc:
            await _json(ex, 400, {"error": str(exc)})
            return
        store = await self._store(ex)
        if store is None:
            return
        try:
            rows = await store.summary(summary)
        except Exception as exc:  # the database is down: say so, the proxy goes on
            await self._unavailable(ex, exc)
            return
        await _json(ex, 200, {"since": summary.since, "by": list(summary.by), "rows": rows})

    async def _records(self, ex: Exchange) -> None:
        now = time.time()
        try:
            since = parse_since(_query(ex).get("since"), now)
        except ReportError as exc:
            await _json(ex, 400, {"error": str(exc)})
            return
        store = await self._store(ex)
        if store is None:
            return
        try:
            records, truncated = await store.records(since, RECORDS_LIMIT)
        except Exception as exc:  # the database is down: say so, the proxy goes on
            await self._unavailable(ex, exc)
            return
        await _json(ex, 200, {"since": since, "now": now, "records": records, "truncated": truncated})

    async def _unavailable(self, ex: Exchange, exc: Exception) -> None:
        log.warning("usage ledger read failed (%s): %s: %s", self.ledger.shown, type(exc).__name__, exc)
        await _json(ex, 503, {"error": f"the usage ledger's store cannot be read ({self.ledger.shown})"})

    async def _file(self, ex: Exchange, name: str) -> None:
        files_by_name = self._files()
        found = files_by_name.get(name) if "/" not in name and ".." not in name else None
        if found is None:
            await _json(ex, 404, {"error": f"no dashboard file {name!r}"})
            return
        kind = _TYPES.get(name.rpartition(".")[2] if "." in name else "", "text/plain; charset=utf-8")
        await ex.respond(200, kind, found.read_bytes(), [_NO_STORE])

    def _files(self) -> dict[str, Traversable]:
        if self._dashboard is None:
            folder = files("llm_proxy.ledger") / "dashboard"
            self._dashboard = {item.name: item for item in folder.iterdir() if item.is_file()}
        return self._dashboard


def _query(ex: Exchange) -> dict[str, str]:
    parsed = parse_qs(ex.query.decode("latin-1"))
    return {key: values[-1] for key, values in parsed.items()}


async def _json(ex: Exchange, status: int, body: dict[str, Any]) -> None:
    await ex.respond(status, _JSON, orjson.dumps(body), [_NO_STORE])
