"""What the proxy remembers between requests, in the state store (shared by replicas when it is Redis).

* ``ThinkingMemory``: Claude's signed thinking blocks sent to OpenAI Chat clients, restored when a
  client echoes a tool-use turn without them.
* ``ConversationStore``: the Responses API's ``previous_response_id`` for upstreams that are not a
  Responses API: each response's whole conversation is kept (bounded, with a TTL) and the next
  request's input is rebuilt from it.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Sequence
from typing import TypeGuard

import orjson

from llm_proxy.canonical import (
    ErrorKind,
    Message,
    Part,
    ProxyError,
    Reasoning,
    Request,
    Response,
    ToolCall,
)
from llm_proxy.errors import ProxyFailure
from llm_proxy.session.snapshot import dump_messages, load_messages
from llm_proxy.session.store import StateStore, StateUnavailable

log = logging.getLogger("llm_proxy.session.memory")

MAX_CONVERSATION_BYTES = 8 << 20


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
        blocks = [_thinking_json(p) for p in parts if _is_claude_thinking(p)]
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
            if message.role != "assistant" or any(_is_claude_thinking(p) for p in message.content):
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


def new_response_id() -> str:
    """A fresh ``resp_`` id minted by the proxy: 200 random bits, never derived from an upstream's ids.

    Upstream ids cannot be trusted to be unique (some OpenAI-compatible servers return a constant id or
    restart a counter), and a stored conversation is found by this id alone.
    """
    return "resp_" + secrets.token_hex(25)


class ConversationStore:
    """``previous_response_id`` for Responses clients whose upstream keeps no state.

    Conversations are stored under the route's scope (its prefix, later also the client key) and the
    proxy's own response id, so an id presented on another route finds nothing, and a save never
    replaces another conversation (the write happens only if the key is free).
    """

    PREFIX = "llmp:resp:"

    def __init__(self, store: StateStore, ttl_s: float) -> None:
        self.store = store
        self.ttl_s = ttl_s

    def _key(self, scope: str, response_id: str) -> str:
        return f"{self.PREFIX}{scope}:{response_id}"

    async def expand(self, request: Request, scope: str) -> Request:
        """``request`` with the stored conversation of its ``previous_response_id`` put before its input."""
        previous = request.previous_response_id
        if not previous:
            return request
        try:
            raw = await self.store.get(self._key(scope, previous))
        except StateUnavailable as exc:
            raise ProxyFailure(
                ProxyError(
                    status=503, kind=ErrorKind.OVERLOADED, message=f"the conversation store is unavailable: {exc}"
                )
            ) from exc
        if raw is None:
            raise ProxyFailure(
                ProxyError(
                    status=404,
                    kind=ErrorKind.NOT_FOUND,
                    message=f"Previous response with id '{previous}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            )
        try:
            history = load_messages(raw)
        except (ValueError, TypeError) as exc:  # written by another version, or damaged: not usable
            log.warning("stored conversation %s is unreadable: %s", previous, exc)
            raise ProxyFailure(
                ProxyError(
                    status=404,
                    kind=ErrorKind.NOT_FOUND,
                    message=f"Previous response with id '{previous}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            ) from None
        return dataclasses.replace(request, messages=history + request.messages, previous_response_id=None)

    async def save(self, scope: str, response_id: str, request: Request, response: Response) -> None:
        """Keep the conversation up to and including ``response`` (unless the client said ``store: false``)."""
        if request.store is False:
            return
        answer = Message(role="assistant", content=response.content)
        data = dump_messages((*request.messages, answer))
        if len(data) > MAX_CONVERSATION_BYTES:
            log.info("conversation of %s not kept: %d bytes is over the limit", response_id, len(data))
            return
        try:
            written = await self.store.add(self._key(scope, response_id), data, self.ttl_s)
        except StateUnavailable as exc:
            log.warning("conversation of %s not kept (state store unavailable): %s", response_id, exc)
            return
        if not written:
            log.warning("conversation of %s not kept: the id is taken (never overwritten)", response_id)


def _is_claude_thinking(part: Part) -> TypeGuard[Reasoning]:
    return isinstance(part, Reasoning) and part.provider == "anthropic"


def _thinking_json(part: Reasoning) -> dict[str, str] | None:
    if part.redacted is not None:
        return {"r": part.redacted}
    if part.signature is None:
        return None
    return {"t": part.text, "s": part.signature}


def _thinking_part(block: dict[str, str]) -> Reasoning:
    if "r" in block:
        return Reasoning(provider="anthropic", redacted=block["r"])
    return Reasoning(provider="anthropic", text=block["t"], signature=block["s"])
