"""The two framings of ``streamGenerateContent``: SSE (``?alt=sse``) and a JSON array written progressively.

Without ``alt=sse`` Google streams one JSON array, ``[{...}\\r\\n,{...}\\r\\n]``, whose elements arrive as they
are made. ``ArraySplitter`` cuts such bytes into the elements' bytes (sans-IO: ``feed`` then ``close``) by
following string and nesting state, so an element split anywhere is found whole.
"""

from __future__ import annotations


class ArraySplitter:
    """The elements of a JSON array of objects, as they complete; ``ended`` once the closing ``]`` came."""

    __slots__ = ("_buffer", "_depth", "_in_string", "_escape", "_started", "ended", "_start")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._started = False
        self._start = 0
        self.ended = False

    def feed(self, data: bytes) -> list[bytes]:
        """Complete elements in ``data`` (with what came before); bytes after the closing ``]`` are ignored."""
        out: list[bytes] = []
        for byte in data:
            if self.ended:
                break
            self._byte(byte, out)
        return out

    def _byte(self, byte: int, out: list[bytes]) -> None:
        if self._depth > 0:
            self._buffer.append(byte)
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif byte == 0x5C:  # backslash
                    self._escape = True
                elif byte == 0x22:
                    self._in_string = False
            elif byte == 0x22:
                self._in_string = True
            elif byte in (0x7B, 0x5B):
                self._depth += 1
            elif byte in (0x7D, 0x5D):
                self._depth -= 1
                if self._depth == 0:
                    out.append(bytes(self._buffer))
                    self._buffer.clear()
            return
        if not self._started:
            if byte == 0x5B:
                self._started = True
            return
        if byte in (0x7B, 0x5B):
            self._depth = 1
            self._buffer.append(byte)
        elif byte == 0x5D:
            self.ended = True
        # commas and whitespace between elements carry nothing

    @property
    def partial(self) -> bool:
        """An element has begun and not ended."""
        return self._depth > 0
