"""Rebuilding a complete canonical ``Response`` from stream events, alongside the stream (no delay).

The stream itself is forwarded event by event; this keeps a copy only where the proxy must know the
whole answer afterwards: the Responses API's ``previous_response_id`` (the conversation is stored) and
Claude thinking remembered for Chat clients.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from llm_proxy.canonical import (
    BlockStart,
    BlockStop,
    Finish,
    MessageStart,
    Opaque,
    Part,
    Reasoning,
    Refusal,
    Response,
    SignatureDelta,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    ToolCall,
    Usage,
)


@dataclass(slots=True)
class _Block:
    start: BlockStart
    chunks: list[str] = field(default_factory=list)
    signature: list[str] = field(default_factory=list)


class ResponseAssembler:
    __slots__ = ("id", "model", "parts", "stop_reason", "stop_sequence", "usage", "failed", "_open")

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.parts: list[Part] = []
        self.stop_reason: StopReason | None = None
        self.stop_sequence: str | None = None
        self.usage = Usage()
        self.failed = False
        self._open: dict[int, _Block] = {}

    def feed(self, events: Iterable[StreamEvent]) -> None:
        for event in events:
            self._feed(event)

    def _feed(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta | ToolArgsDelta | ThinkingDelta):
            block = self._open.get(event.index)
            if block is not None:
                block.chunks.append(event.partial_json if isinstance(event, ToolArgsDelta) else event.text)
        elif isinstance(event, SignatureDelta):
            block = self._open.get(event.index)
            if block is not None:
                block.signature.append(event.signature)
        elif isinstance(event, BlockStart):
            self._open[event.index] = _Block(event)
        elif isinstance(event, BlockStop):
            block = self._open.pop(event.index, None)
            if block is not None:
                part = _part(block)
                if part is not None:
                    self.parts.append(part)
        elif isinstance(event, MessageStart):
            self.id, self.model, self.usage = event.id, event.model, event.usage
        elif isinstance(event, Finish):
            self.stop_reason, self.stop_sequence, self.usage = event.stop_reason, event.stop_sequence, event.usage
        elif isinstance(event, StreamError):
            self.failed = True

    @property
    def complete(self) -> bool:
        return not self.failed and self.stop_reason is not None

    def response(self) -> Response:
        return Response(
            id=self.id,
            model=self.model,
            content=tuple(self.parts),
            stop_reason=self.stop_reason,
            stop_sequence=self.stop_sequence,
            usage=self.usage,
        )


def _part(block: _Block) -> Part | None:
    start = block.start
    text = "".join(block.chunks)
    signature = "".join(block.signature) or None
    if start.kind == "text":
        return Text(text=text)
    if start.kind == "tool_call":
        return ToolCall(id=start.id or "", name=start.name or "", arguments=text, kind=start.tool_kind)
    if start.kind == "thinking":
        return Reasoning(provider="anthropic", text=text, signature=signature)
    if start.kind == "redacted_thinking":
        return Reasoning(provider="anthropic", redacted=start.data or "")
    if start.kind == "reasoning":
        return Reasoning(provider="openai", id=start.id, summary=(text,) if text else (), signature=signature)
    if start.kind == "refusal":
        return Refusal(text=text)
    if start.raw is not None:
        return Opaque(dialects=frozenset(), raw=start.raw)
    return None
