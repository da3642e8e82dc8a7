"""One home for the session features, and one way to watch a response.

``Sessions`` owns the state store and everything kept in it: the progress record (``progress``),
remembered thinking and stored conversations (``memory``). For each request it opens a ``Turn``: the
store reads happen in ``open``/``open_raw`` (expand a ``previous_response_id``, render the progress
section, restore thinking), the request is edited, and the ``Turn`` then watches the response as
canonical stream events (``observe``) or as a whole ``Response`` (``answered``), whether those come from
a translated stream or from proxy-mode bytes read with the path dialect's own decoder (``tap``).
``close`` performs the store writes once the response is complete.

The mode shells call ``open``, hand ``Turn.observe`` to the stream translator, and call ``close``;
they never touch the store.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import orjson

from llm_proxy.canonical import Request, Response, StreamEvent
from llm_proxy.config import Route
from llm_proxy.dialects import get_dialect, get_spec
from llm_proxy.dialects.base import StreamDecoder, Summary
from llm_proxy.errors import ProxyFailure
from llm_proxy.prompt import SystemEdit, edit_request
from llm_proxy.session.assemble import ResponseAssembler
from llm_proxy.session.memory import ConversationStore, ThinkingMemory, new_response_id
from llm_proxy.session.progress import ProgressTracker, ResponseObserver, session_key
from llm_proxy.session.store import StateStore

log = logging.getLogger("llm_proxy.session")

MAX_OBSERVED_BODY = 8 << 20
"""Proxy mode: JSON responses larger than this are passed through but not read for progress."""


class Turn:
    """One request's part in its session: the edited request, and what the response adds."""

    __slots__ = (
        "request",
        "original",
        "scope",
        "response_id",
        "_progress_key",
        "_observer",
        "_assembler",
        "_remember",
        "_keep",
        "_tap",
        "_answer",
    )

    def __init__(self, request: Request, original: Request, scope: str) -> None:
        self.request = request
        """The request to send upstream (edited: system prompt, restored thinking)."""
        self.original = original
        """The client's request with its stored conversation put back (what a stored conversation holds)."""
        self.scope = scope
        self.response_id: str | None = None
        """The id the proxy minted for this response (set when the conversation is stored by the proxy)."""
        self._progress_key: str | None = None
        self._observer: ResponseObserver | None = None
        self._assembler: ResponseAssembler | None = None
        self._remember = False
        self._keep = False
        self._tap: Tap | None = None
        self._answer: Response | None = None

    @property
    def watching(self) -> bool:
        """Whether the response must be observed at all (else ``observe`` need not be called)."""
        return self._observer is not None or self._assembler is not None

    def observe(self, events: list[StreamEvent]) -> None:
        """Canonical stream events of the response, in order."""
        if self._observer is not None:
            for event in events:
                self._observer.feed(event)
        if self._assembler is not None:
            self._assembler.feed(events)

    def answered(self, response: Response) -> None:
        """The whole response (not streamed)."""
        if self._observer is not None:
            self._observer.feed_response(response)
        self._answer = response

    def tap(self, dialect: str, request: Request, content_type: str) -> None:
        """Proxy mode: the response bytes will be passed to ``tap_bytes``; read them as ``dialect``."""
        if self._observer is not None:
            self._tap = Tap(dialect, request, content_type)

    def tap_bytes(self, chunk: bytes) -> None:
        if self._tap is not None:
            events = self._tap.feed(chunk)
            if events:
                self.observe(events)

    def _finish(self) -> Response | None:
        """The whole answer, when it is known: given, or assembled from a complete stream."""
        if self._tap is not None:
            events, response = self._tap.close()
            if events:
                self.observe(events)
            if isinstance(response, Response):
                self.answered(response)
        if self._answer is None and self._assembler is not None and self._assembler.complete:
            self._answer = self._assembler.response()
        return self._answer


class Tap:
    """Proxy-mode response bytes read as the path dialect's stream or JSON body (never buffered beyond a limit)."""

    __slots__ = ("_dialect", "_request", "_decoder", "_body", "_size", "_light")

    def __init__(self, dialect: str, request: Request, content_type: str, *, light: bool = False) -> None:
        self._dialect, self._request = dialect, request
        self._light = light
        """Only model, usage, stop reason, errors and the first token are read: a JSON answer summarized
        (``Dialect.summarize``), a stream watched (``Dialect.stream_watcher``); not their content."""
        self._decoder: StreamDecoder | None = None
        self._body: list[bytes] | None = None
        self._size = 0
        if "event-stream" in content_type or "eventstream" in content_type:
            codec = get_dialect(dialect)
            self._decoder = codec.stream_watcher(request) if light else codec.stream_decoder(request)
        elif "json" in content_type:
            self._body = []

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        if self._decoder is not None:
            return self._decoder.feed(chunk)
        if self._body is not None:
            self._body.append(chunk)
            self._size += len(chunk)
            if self._size > MAX_OBSERVED_BODY:
                self._body = None
        return []

    def close(self) -> tuple[list[StreamEvent], Response | Summary | None]:
        """The last events, and the whole answer of a JSON body: decoded, or summarized when ``light``."""
        if self._decoder is not None:
            return self._decoder.close(), None
        if self._body is None:
            return [], None
        try:
            doc = orjson.loads(b"".join(self._body))
            if self._light:
                return [], get_dialect(self._dialect).summarize(doc) if isinstance(doc, dict) else None
            return [], get_dialect(self._dialect).decode_response(doc, self._request)
        except (ProxyFailure, orjson.JSONDecodeError, ValueError) as exc:
            log.debug("response not readable for session progress: %s", exc)
            return [], None


class Sessions:
    """The state store's one owner: progress records, remembered thinking, stored conversations."""

    def __init__(self, store: StateStore, ttl_s: float) -> None:
        self.store = store
        self.progress = ProgressTracker(store, ttl_s)
        self.thinking = ThinkingMemory(store, ttl_s)
        self.conversations = ConversationStore(store, ttl_s)
        self._edits: dict[tuple[tuple[tuple[str, str], ...], str | None], SystemEdit | None] = {}
        """By content, so that a reloaded config never meets a stale entry."""

    def system_edit(self, route: Route) -> SystemEdit | None:
        key = (route.system_replacements, route.system_append)
        if key not in self._edits:
            wanted = route.system_replacements or route.system_append
            self._edits[key] = (
                SystemEdit(replacements=route.system_replacements, append=route.system_append) if wanted else None
            )
        return self._edits[key]

    def edits(self, route: Route) -> bool:
        """Whether proxy mode must look into this route's bodies (prompt edits or progress)."""
        return route.inject_progress or self.system_edit(route) is not None

    async def open(self, route: Route, headers: Mapping[str, str], request: Request) -> Turn:
        """Translation mode: the store reads for ``request`` and the request to send upstream."""
        front, back = get_spec(route.frontend_dialect or ""), get_spec(route.backend_dialect or "")
        scope = route.frontend_base_url
        keep = front.server_side_conversations and not back.server_side_conversations
        if keep:
            request = await self.conversations.expand(request, scope)
        turn = Turn(request, request, scope)
        text = await self._progress(turn, route, headers, request)
        edit = self.system_edit(route)
        edited = edit_request(request, edit or SystemEdit(), text) if edit is not None or text else request
        # Clients of a dialect that keeps no reasoning may drop an upstream's signed thinking when they echo a
        # tool-use turn; the upstream then rejects it (see ThinkingMemory).
        reasoning = request.reasoning
        thinks = reasoning is not None and reasoning.effort != "none" and reasoning.mode != "disabled"
        turn._remember = front.thinking == "plain" and back.thinking == "signed" and thinks
        if turn._remember:
            edited = await self.thinking.restore(edited)
        if keep:
            turn._keep = True
            turn.response_id = new_response_id()
        if turn._remember or keep:
            turn._assembler = ResponseAssembler()
        turn.request = edited
        if turn._progress_key is not None:
            await self.progress.record_request(turn._progress_key, request)
        return turn

    async def open_raw(
        self, route: Route, dialect: str, headers: Mapping[str, str], doc: dict[str, Any], path_model: str | None
    ) -> tuple[bool, Turn | None]:
        """Proxy mode: edit ``doc`` in place. Returns whether it changed, and the turn when progress is kept."""
        turn: Turn | None = None
        text: str | None = None
        if route.inject_progress:
            try:
                request = get_dialect(dialect).decode_request(doc, path_model=path_model)
            except ProxyFailure as failure:
                # Proxy mode forwards what the upstream may accept even if we cannot read it.
                log.debug("session progress skipped: request not readable as %s: %s", dialect, failure.error.message)
            else:
                turn = Turn(request, request, route.frontend_base_url)
                text = await self._progress(turn, route, headers, request)
        edit = self.system_edit(route) or SystemEdit()
        changed = get_dialect(dialect).edit_system_raw(doc, edit, edit.tail(text))
        if turn is not None and turn._progress_key is not None:
            await self.progress.record_request(turn._progress_key, turn.request)
        return changed, turn

    async def close(self, turn: Turn) -> None:
        """The store writes once the response is complete (or as far as it went)."""
        answer = turn._finish()
        if turn._progress_key is not None and turn._observer is not None:
            await self.progress.record_response(turn._progress_key, turn._observer.delta())
        if answer is None:
            return
        if turn._remember:
            await self.thinking.remember(answer.content)
        if turn._keep and turn.response_id is not None:
            await self.conversations.save(turn.scope, turn.response_id, turn.original, answer)

    async def shutdown(self) -> None:
        await self.store.close()

    async def _progress(self, turn: Turn, route: Route, headers: Mapping[str, str], request: Request) -> str | None:
        if not route.inject_progress:
            return None
        turn._progress_key = session_key(f"{route.frontend_base_url}|{route.frontend_model_name}", headers, request)
        turn._observer = ResponseObserver()
        return await self.progress.render(turn._progress_key)


def stamped(response: Response, turn: Turn) -> Response:
    """``response`` under the id the proxy minted for the turn, if it minted one."""
    return response if turn.response_id is None else dataclasses.replace(response, id=turn.response_id)
