"""Request edits on the way up (system prompt edits, session progress), wired for both modes.

Translation mode edits the canonical request (decode -> edit -> encode). Proxy mode edits the parsed
JSON body in place, in the dialect its path implies, and re-serialises it only when something changed.
Progress needs the response too: ``Progress`` watches the canonical events (translation mode) or taps
the passthrough bytes with the path dialect's own stream decoder (proxy mode), without buffering the
stream, and records what it saw when the response is complete.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from llm_proxy.canonical import (
    BlockStart,
    BlockStop,
    Part,
    RedactedThinking,
    Request,
    Response,
    SignatureDelta,
    StreamEvent,
    Thinking,
    ThinkingDelta,
    ToolCall,
)
from llm_proxy.config import Route
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import StreamDecoder
from llm_proxy.errors import ProxyFailure
from llm_proxy.progress import ProgressTracker, ResponseObserver, session_key
from llm_proxy.prompt import SystemEdit, edit_raw, edit_request
from llm_proxy.state import StateStore, StateUnavailable

log = logging.getLogger("llm_proxy.editing")

MAX_OBSERVED_BODY = 8 << 20
"""Proxy mode: JSON responses larger than this are passed through but not read for progress."""


class Progress:
    """One request's contribution to its session record."""

    __slots__ = ("_tracker", "key", "observer", "_decoder", "_body", "_dialect", "_request")

    def __init__(self, tracker: ProgressTracker, key: str) -> None:
        self._tracker = tracker
        self.key = key
        self.observer = ResponseObserver()
        self._decoder: StreamDecoder | None = None
        self._body: list[bytes] | None = None
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
            if sum(map(len, self._body)) > MAX_OBSERVED_BODY:
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


class RequestEditor:
    """Holds each route's ``SystemEdit`` and the progress tracker over the state store."""

    def __init__(self, store: StateStore, ttl_s: float) -> None:
        self.store = store
        self.tracker = ProgressTracker(store, ttl_s)
        self.thinking = ThinkingMemory(store, ttl_s)
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


class ThinkingMemory:
    """Remembers Claude thinking blocks sent to OpenAI Chat clients, keyed by the tool call they preceded.

    Claude rejects a tool-use turn whose assistant message lost its signed thinking blocks. Chat clients
    get them as ``thinking_blocks`` and most echo them back; for clients that rebuild the assistant
    message from ``content`` and ``tool_calls`` only, the proxy restores the blocks from this memory
    (in the state store, so replicas sharing Redis share it). Only tool-use turns need it: Claude
    accepts earlier turns without their thinking.
    """

    PREFIX = "llmp:thinking:"

    def __init__(self, store: StateStore, ttl_s: float) -> None:
        self.store = store
        self.ttl_s = ttl_s

    async def remember(self, parts: Sequence[Part]) -> None:
        blocks = [_thinking_json(p) for p in parts if isinstance(p, Thinking | RedactedThinking)]
        call = next((p for p in parts if isinstance(p, ToolCall)), None)
        blocks = [b for b in blocks if b is not None]
        if not blocks or call is None:
            return
        try:
            await self.store.set(self.PREFIX + call.id, orjson.dumps(blocks), self.ttl_s)
        except StateUnavailable as exc:
            log.warning("thinking blocks not remembered (state store unavailable): %s", exc)

    async def restore(self, request: Request) -> Request:
        """``request`` with remembered thinking put back into tool-use turns that lost it."""
        messages = list(request.messages)
        changed = False
        for i, message in enumerate(messages):
            if message.role != "assistant" or any(isinstance(p, Thinking | RedactedThinking) for p in message.content):
                continue
            call = next((p for p in message.content if isinstance(p, ToolCall)), None)
            if call is None:
                continue
            try:
                raw = await self.store.get(self.PREFIX + call.id)
            except StateUnavailable as exc:
                log.warning("thinking blocks not restored (state store unavailable): %s", exc)
                return request
            if raw is None:
                continue
            restored = tuple(_thinking_part(b) for b in orjson.loads(raw))
            messages[i] = dataclasses.replace(message, content=restored + message.content)
            changed = True
        return dataclasses.replace(request, messages=tuple(messages)) if changed else request


class ThinkingCollector:
    """Rebuilds the thinking blocks and the first tool call of a streamed response (small: no text kept)."""

    __slots__ = ("parts", "_kinds", "_text", "_signature")

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self._kinds: dict[int, str] = {}
        self._text: dict[int, list[str]] = {}
        self._signature: dict[int, str] = {}

    def feed(self, events: Sequence[StreamEvent]) -> None:
        for event in events:
            if isinstance(event, BlockStart):
                self._kinds[event.index] = event.kind
                if event.kind == "redacted_thinking" and event.data:
                    self.parts.append(RedactedThinking(data=event.data))
                elif event.kind == "tool_call" and event.id and event.name:
                    self.parts.append(ToolCall(id=event.id, name=event.name, arguments=""))
            elif isinstance(event, ThinkingDelta) and self._kinds.get(event.index) == "thinking":
                self._text.setdefault(event.index, []).append(event.text)
            elif isinstance(event, SignatureDelta) and self._kinds.get(event.index) == "thinking":
                self._signature[event.index] = self._signature.get(event.index, "") + event.signature
            elif isinstance(event, BlockStop) and self._kinds.get(event.index) == "thinking":
                text = "".join(self._text.pop(event.index, []))
                self.parts.append(Thinking(thinking=text, signature=self._signature.pop(event.index, None)))


def _thinking_json(part: Thinking | RedactedThinking) -> dict[str, str] | None:
    if isinstance(part, RedactedThinking):
        return {"r": part.data}
    if part.signature is None:
        return None
    return {"t": part.thinking, "s": part.signature}


def _thinking_part(block: dict[str, str]) -> Thinking | RedactedThinking:
    if "r" in block:
        return RedactedThinking(data=block["r"])
    return Thinking(thinking=block["t"], signature=block["s"])
