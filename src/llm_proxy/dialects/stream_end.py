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

from enum import Enum

from llm_proxy.canonical import ProxyError, StreamError, StreamEvent
from llm_proxy.errors import stream_cut_short


class _State(Enum):
    NEW = "new"
    OPEN = "open"
    FINISHED = "finished"
    FAILED = "failed"


_NEW, _OPEN, _FINISHED, _FAILED = _State.NEW, _State.OPEN, _State.FINISHED, _State.FAILED
"""The states as module names: read on every event of every stream, and an enum class's attribute costs more."""


class StreamEnd:
    __slots__ = ("_state", "_terminator")

    def __init__(self, terminator: bytes = b"") -> None:
        self._state = _NEW
        self._terminator = terminator

    @property
    def started(self) -> bool:
        return self._state is not _NEW

    @property
    def open(self) -> bool:
        """Started and not ended."""
        return self._state is _OPEN

    @property
    def ended(self) -> bool:
        """Finished or failed: nothing more goes out."""
        state = self._state
        return state is _FINISHED or state is _FAILED

    def start(self) -> bool:
        """Open the stream; whether this was the first time (the caller then writes its opening)."""
        if self._state is not _NEW:
            return False
        self._state = _OPEN
        return True

    def finish(self) -> None:
        """The terminal event went out."""
        self._state = _FINISHED

    def fail(self) -> None:
        """An error ended the stream."""
        self._state = _FAILED

    def close(self) -> bytes:
        """An encoder's last bytes: the terminator, unless the stream already ended."""
        if self.ended:
            return b""
        self._state = _FINISHED
        return self._terminator

    def error(self, error: ProxyError) -> list[StreamEvent]:
        """A decoder's failure: the ``StreamError`` that ends the stream, or nothing once it has ended."""
        if self.ended:
            return []
        self._state = _FAILED
        return [StreamError(error=error)]

    def cut_short(self) -> list[StreamEvent]:
        """A decoder's close: the upstream closed the stream, which is an error unless it had ended."""
        return self.error(stream_cut_short())
