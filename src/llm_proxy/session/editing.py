"""Request edits on the way up (system prompt edits, session progress), wired for both modes.

Translation mode edits the canonical request (decode -> edit -> encode). Proxy mode edits the parsed
JSON body in place, in the dialect its path implies, and re-serialises it only when something changed.
Progress needs the response too: ``Progress`` watches the canonical events (translation mode) or taps
the passthrough bytes with the path dialect's own stream decoder (proxy mode), without buffering the
stream, and records what it saw when the response is complete.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson

from llm_proxy.canonical import Request, Response, StreamEvent
from llm_proxy.config import Route
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import StreamDecoder
from llm_proxy.errors import ProxyFailure
from llm_proxy.prompt import SystemEdit, edit_request
from llm_proxy.session.progress import ProgressTracker, ResponseObserver, session_key
from llm_proxy.session.store import StateStore

log = logging.getLogger("llm_proxy.session.editing")

MAX_OBSERVED_BODY = 8 << 20
"""Proxy mode: JSON responses larger than this are passed through but not read for progress."""


class Progress:
    """One request's contribution to its session record."""

    __slots__ = ("_tracker", "key", "observer", "_decoder", "_body", "_body_size", "_dialect", "_request")

    def __init__(self, tracker: ProgressTracker, key: str) -> None:
        self._tracker = tracker
        self.key = key
        self.observer = ResponseObserver()
        self._decoder: StreamDecoder | None = None
        self._body: list[bytes] | None = None
        self._body_size = 0
        self._dialect = ""
        self._request: Request | None = None

    def feed(self, events: list[StreamEvent]) -> None:
        for event in events:
            self.observer.feed(event)

    def feed_response(self, response: Response) -> None:
        self.observer.feed_response(response)

    def tap(self, dialect: str, request: Request, content_type: str) -> None:
        """Proxy mode: read the passthrough bytes of a successful response in ``dialect``."""
        self._dialect, self._request = dialect, request
        if "event-stream" in content_type or "eventstream" in content_type:
            self._decoder = get_dialect(dialect).stream_decoder(request)
        elif "json" in content_type:
            self._body = []

    def tap_bytes(self, chunk: bytes) -> None:
        if self._decoder is not None:
            self.feed(self._decoder.feed(chunk))
        elif self._body is not None:
            self._body.append(chunk)
            self._body_size += len(chunk)
            if self._body_size > MAX_OBSERVED_BODY:
                self._body = None

    async def finish(self) -> None:
        if self._decoder is not None:
            self.feed(self._decoder.close())
        elif self._body is not None and self._request is not None:
            try:
                doc = orjson.loads(b"".join(self._body))
                self.feed_response(get_dialect(self._dialect).decode_response(doc, self._request))
            except (ProxyFailure, orjson.JSONDecodeError, ValueError) as exc:
                log.debug("response not readable for session progress: %s", exc)
        await self._tracker.record_response(self.key, self.observer.delta())


def edit_raw(dialect: str, body: dict[str, Any], edit: SystemEdit, extra_text: str | None = None) -> bool:
    """Proxy mode: edit the system prompt of a parsed body of ``dialect`` in place; whether anything changed."""
    return get_dialect(dialect).edit_system_raw(body, edit, edit.tail(extra_text))


class RequestEditor:
    """Holds each route's ``SystemEdit`` and the progress tracker over the state store."""

    def __init__(self, store: StateStore, ttl_s: float) -> None:
        self.store = store
        self.tracker = ProgressTracker(store, ttl_s)
        self._edits: dict[int, SystemEdit | None] = {}

    def system_edit(self, route: Route) -> SystemEdit | None:
        if route.index not in self._edits:
            wanted = route.system_replacements or route.system_append
            self._edits[route.index] = (
                SystemEdit(replacements=route.system_replacements, append=route.system_append) if wanted else None
            )
        return self._edits[route.index]

    def active(self, route: Route) -> bool:
        return route.inject_progress or self.system_edit(route) is not None

    async def edit(self, route: Route, headers: Mapping[str, str], request: Request) -> tuple[Request, Progress | None]:
        """Translation mode: the edited canonical request, and the progress to feed (if enabled)."""
        progress, text = await self._begin(route, headers, request)
        edit = self.system_edit(route)
        if edit is not None or text:
            request_out = edit_request(request, edit or SystemEdit(), text)
        else:
            request_out = request
        if progress is not None:
            await self.tracker.record_request(progress.key, request)
        return request_out, progress

    async def edit_raw(
        self, route: Route, dialect: str, headers: Mapping[str, str], doc: dict[str, Any], path_model: str | None
    ) -> tuple[bool, Progress | None, Request | None]:
        """Proxy mode: edit ``doc`` in place. Returns (changed, progress, the request as decoded)."""
        request: Request | None = None
        progress: Progress | None = None
        text: str | None = None
        if route.inject_progress:
            try:
                request = get_dialect(dialect).decode_request(doc, path_model=path_model)
            except ProxyFailure as failure:
                # Proxy mode forwards what the upstream may accept even if we cannot read it.
                log.debug("session progress skipped: request not readable as %s: %s", dialect, failure.error.message)
            else:
                progress, text = await self._begin(route, headers, request)
        changed = edit_raw(dialect, doc, self.system_edit(route) or SystemEdit(), text)
        if progress is not None and request is not None:
            await self.tracker.record_request(progress.key, request)
        return changed, progress, request

    async def _begin(
        self, route: Route, headers: Mapping[str, str], request: Request
    ) -> tuple[Progress | None, str | None]:
        if not route.inject_progress:
            return None, None
        key = session_key(f"{route.frontend_base_url}|{route.frontend_model_name}", headers, request)
        return Progress(self.tracker, key), await self.tracker.render(key)

    async def close(self) -> None:
        await self.store.close()
