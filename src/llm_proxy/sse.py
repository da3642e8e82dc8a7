"""Server-sent events: an incremental parser (bytes in, events out) and a writer. No I/O.

The parser follows the WHATWG rules that matter for LLM APIs: lines end in ``\\n``, ``\\r\\n`` or
``\\r``; an empty line dispatches the event; ``data:`` lines are joined with ``\\n``; one optional
space after the colon is removed; comment lines (``:``) are ignored; an event with no ``data`` is
not dispatched. Chunk boundaries may fall anywhere, including inside a ``\\r\\n`` pair or a UTF-8
sequence. Written by hand because the SSE libraries on PyPI are tied to an HTTP client (httpx-sse,
aiohttp-sse-client) rather than being sans-IO.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str | None
    data: str


class SSEParser:
    __slots__ = ("_buf", "_event", "_data", "_pending_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._event: str | None = None
        self._data: list[str] = []
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the \n of a \r\n pair split across chunks
        self._pending_cr = False
        buf = self._buf + chunk if self._buf else chunk
        out: list[SSEEvent] = []
        if b"\r" in buf:
            if buf.endswith(b"\r"):
                self._pending_cr = True
            lines = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        else:
            lines = buf.split(b"\n")
        self._buf = lines.pop()
        for raw in lines:
            self._line(raw, out)
        return out

    def close(self) -> list[SSEEvent]:
        """End of input: an event not ended by a blank line is discarded, as the SSE spec says."""
        self._buf = b""
        self._event, self._data = None, []
        return []

    @property
    def has_partial(self) -> bool:
        """True when bytes of an unfinished event are buffered (the stream was cut mid-event)."""
        return bool(self._buf) or bool(self._data)

    def _line(self, raw: bytes, out: list[SSEEvent]) -> None:
        if not raw:
            if self._data:
                out.append(SSEEvent(self._event, "\n".join(self._data)))
            self._event, self._data = None, []
            return
        line = raw.decode("utf-8", "replace")
        if line[0] == ":":
            return
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value


def encode_event(data: bytes, event: str | None = None) -> bytes:
    """One SSE event. ``data`` must be a single line (compact JSON is)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
