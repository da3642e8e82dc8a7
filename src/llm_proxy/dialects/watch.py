"""Light stream observers: what metrics, the access line, the ledger and the span read from a stream.

Proxy mode relays a streamed answer untouched; without session features it only needs the answer's
model and usage (``MessageStart``), its stop reason and usage (``Finish``), an in-stream error
(``StreamError``) and the time of the first generated token. A ``StreamWatcher`` wraps a dialect's own
stream decoder and keeps just those events: every event up to the first token-bearing one is decoded
(so the first token is seen at the same chunk as with the full decoder), then the decoder is told to skip
the raw events its dialect's cheap bytes test (``skip``) proves cannot carry a usage, a stop reason or an
error, without JSON-decoding them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from llm_proxy.canonical import (
    BlockStart,
    Finish,
    MessageStart,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)

T = TypeVar("T")

_KEPT = (MessageStart, Finish, StreamError)
_TOKENS = (TextDelta, ThinkingDelta, ToolArgsDelta)


class Skipping(Protocol[T]):
    """A stream decoder that skips the raw events ``skip`` accepts (None: decode every event)."""

    skip: Callable[[T], bool] | None

    def feed(self, data: bytes) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]: ...


class StreamWatcher(Generic[T]):
    """A ``StreamDecoder`` that emits only ``MessageStart``, ``Finish``, ``StreamError`` and the first token."""

    __slots__ = ("_decoder", "_skip", "_first")

    def __init__(self, decoder: Skipping[T], skip: Callable[[T], bool] | None) -> None:
        self._decoder = decoder
        self._skip = skip
        """Turned on once the first token was seen (at the next chunk: never before that token)."""
        self._first = False

    def feed(self, data: bytes) -> list[StreamEvent]:
        events = self._decoder.feed(data)
        return self._kept(events) if events else events  # most chunks: skipped, nothing decoded

    def close(self) -> list[StreamEvent]:
        return self._kept(self._decoder.close())

    def _kept(self, events: list[StreamEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            if isinstance(event, _KEPT):
                out.append(event)
            elif not self._first and (
                isinstance(event, _TOKENS) or (isinstance(event, BlockStart) and event.kind == "redacted_thinking")
            ):
                self._first = True
                self._decoder.skip = self._skip
                out.append(event)
        return out
