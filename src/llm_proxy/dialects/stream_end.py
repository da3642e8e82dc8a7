"""Where a stream is in its life, the one state machine every stream codec keeps.

    new --start--> open --finish--> finished
      \\             \\
       +-------------+--fail-----> failed

An encoder writes its dialect's opening when ``start`` says it is the first time, and nothing once the
stream has ended (``ended``): after its terminal event (``message_stop``, ``response.completed``, Chat's
``data: [DONE]``) or an error. ``close`` returns the dialect's terminator for a stream that has not ended:
Chat ends with ``data: [DONE]`` written at close, so a Chat finish chunk does not end its stream (an error
may still follow it); the other dialects end with an event and have no terminator.

A decoder ends the stream at the upstream's terminal event or error and produces nothing after it;
``error`` and ``cut_short`` give the ``StreamError`` event that ends a stream still open.
"""

from __future__ import annotations

from llm_proxy.canonical import ProxyError, StreamError, StreamEvent
from llm_proxy.errors import stream_cut_short


class StreamEnd:
    """The state machine above. ``started``, ``open`` and ``ended`` are plain attributes, set at each transition:
    codecs read them on every event of every stream, where a property's call would cost more than the read."""

    __slots__ = ("started", "open", "ended", "_terminator")

    def __init__(self, terminator: bytes = b"") -> None:
        self.started = False
        """Not new any more (open, finished or failed)."""
        self.open = False
        """Started and not ended."""
        self.ended = False
        """Finished or failed: nothing more goes out."""
        self._terminator = terminator

    def start(self) -> bool:
        """Open the stream; whether this was the first time (the caller then writes its opening)."""
        if self.started:
            return False
        self.started = self.open = True
        return True

    def finish(self) -> None:
        """The terminal event went out."""
        self._end()

    def fail(self) -> None:
        """An error ended the stream."""
        self._end()

    def close(self) -> bytes:
        """An encoder's last bytes: the terminator, unless the stream already ended."""
        if self.ended:
            return b""
        self._end()
        return self._terminator

    def error(self, error: ProxyError) -> list[StreamEvent]:
        """A decoder's failure: the ``StreamError`` that ends the stream, or nothing once it has ended."""
        if self.ended:
            return []
        self._end()
        return [StreamError(error=error)]

    def cut_short(self) -> list[StreamEvent]:
        """A decoder's close: the upstream closed the stream, which is an error unless it had ended."""
        return self.error(stream_cut_short())

    def _end(self) -> None:
        self.started = self.ended = True
        self.open = False
