"""Server-sent events: an incremental parser (bytes in, events out) and a writer. No I/O.

The parser follows the WHATWG rules that matter for LLM APIs: lines end in ``\\n``, ``\\r\\n`` or
``\\r``; an empty line dispatches the event; ``data:`` lines are joined with ``\\n``; one optional
space after the colon is removed; comment lines (``:``) are ignored; an event with no ``data`` is
not dispatched. Chunk boundaries may fall anywhere, including inside a ``\\r\\n`` pair or a UTF-8
sequence. Written by hand because the SSE libraries on PyPI are tied to an HTTP client (httpx-sse,
aiohttp-sse-client) rather than being sans-IO.
"""

from __future__ import annotations

from typing import NamedTuple


class SSEEvent(NamedTuple):
    event: str | None
    data: bytes
    """The joined ``data:`` lines, still UTF-8 bytes (``orjson.loads`` reads them as they are)."""


class SSEParser:
    """Bytes in, complete events out. Works a whole event block (up to its blank line) at a time."""

    __slots__ = ("_buf", "_pending_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]  # the \n of a \r\n pair split across chunks
        self._pending_cr = False
        if b"\r" in chunk:
            self._pending_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf + chunk if self._buf else chunk
        if buf.startswith(b"\n"):
            buf = buf.lstrip(b"\n")  # blank lines between events dispatch nothing
        end = buf.rfind(b"\n\n")
        if end < 0:
            self._buf = buf
            return []
        self._buf = buf[end + 2 :]
        out: list[SSEEvent] = []
        for block in buf[:end].split(b"\n\n"):
            # The common shapes without a call: one `data:` line (OpenAI), or one `event:` line and one `data:`
            # line (Anthropic); any other block is ``_parse_block``'s.
            newline = block.find(b"\n")
            if newline < 0:
                if block.startswith(b"data: "):
                    out.append(SSEEvent(None, block[6:]))
                    continue
            elif (
                block.startswith(b"event: ")
                and block.startswith(b"data: ", newline + 1)
                and block.find(b"\n", newline + 1) < 0
            ):
                out.append(SSEEvent(block[7:newline].decode("utf-8", "replace"), block[newline + 7 :]))
                continue
            event = _parse_block(block)
            if event is not None:
                out.append(event)
        return out

    def close(self) -> list[SSEEvent]:
        """End of input: an event not ended by a blank line is discarded, as the SSE spec says."""
        self._buf = b""
        return []

    @property
    def has_partial(self) -> bool:
        """True when bytes of an unfinished event are buffered (the stream was cut mid-event)."""
        return bool(self._buf.strip(b"\n"))


def _parse_block(block: bytes) -> SSEEvent | None:
    """One event's lines (no blank line inside, except leading ones): its ``event`` and joined ``data``."""
    name: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    if not data:
        return None
    return SSEEvent(name, b"\n".join(data))


def encode_event(data: bytes, event: str | None = None) -> bytes:
    """One SSE event. ``data`` must be a single line (compact JSON is)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
