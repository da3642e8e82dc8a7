"""The proxy's own log handler: a ``StreamHandler`` that can hold access lines and write them in batches.

``configure_logging`` puts one ``HoldingStreamHandler`` on the root logger (stderr). Every record that goes
through the logging module reaches it as usual and is written at once. An access line (``AccessLine.write``)
takes a shorter way when this handler is the only one its record would reach (``holder``, checked per line:
nothing else on the way, no filter on the access logger): the handler runs its filters and its formatter on
the record, exactly as ``emit`` would, and keeps the finished line instead of writing it. The held lines go
out together (whole lines, in writes of at most ``WRITE_SIZE`` bytes, ``_write``):

- at most ``FLUSH_AFTER`` seconds after the first of them, by an event-loop timer scheduled when the buffer
  stops being empty (no timer per line; with no running loop the line is written at once);
- as soon as they pass ``FLUSH_SIZE`` characters;
- before any other record this handler emits, in the same write, so a warning never comes before the access
  lines of requests that finished earlier;
- whenever the handler is flushed: at the server's lifespan shutdown (after SIGTERM too), when the logging is
  configured again, when its stream is replaced, at exit (``atexit`` and ``logging.shutdown``).

A process killed with SIGKILL loses the lines held at that moment (up to ``FLUSH_AFTER`` seconds of them). A
loop that stops before its timer fires leaves the lines to the next of the other flushes (the lifespan shutdown
comes first when a server stops).

Any other handler on the way (pytest's ``caplog``, a user's) means the whole logging path, as before.
"""

from __future__ import annotations

import asyncio
import logging
import select
from collections import deque
from typing import TextIO

FLUSH_AFTER = 0.2
"""Seconds a held line may wait for its write."""
FLUSH_SIZE = 64 << 10
"""Characters held before they are written without waiting for the timer."""
WRITE_SIZE: int = getattr(select, "PIPE_BUF", 512)
"""Bytes per write at most (whole lines; a longer line goes alone): a pipe takes a write up to ``PIPE_BUF`` bytes
in one piece, so the lines of several workers sharing one stderr never interleave mid-line."""


class HoldingStreamHandler(logging.StreamHandler[TextIO]):
    """A ``StreamHandler`` whose access lines (``hold``) are written in batches, before anything else it emits."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._lines: deque[str] = deque()
        self._size = 0
        """Characters held: approximate while lines are held in several threads at once (it only decides when
        they are written)."""

    def hold(self, record: logging.LogRecord) -> None:
        """Format ``record`` as ``emit`` would (after this handler's level and filters) and keep the line."""
        if record.levelno < self.level:
            return
        passed = self.filter(record)
        if not passed:
            return
        if isinstance(passed, logging.LogRecord):  # Python 3.12+: a filter may hand back another record
            record = passed
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            try:
                self.hold_line(self.format(record) + self.terminator)
            except RecursionError:
                raise
            except Exception:
                self.handleError(record)

    def hold_line(self, line: str) -> None:
        """Keep ``line``, finished (formatted, masked, terminated) by a caller that did this handler's level,
        filter and formatter's work itself (``observe.logs.AccessLine``).

        Without the handler's lock (~2k instructions of the line's ~26k, in-process): appending to the deque is
        atomic, and a write (under the lock, in whichever thread) takes the lines that were held when it began;
        a line held meanwhile stays for the next write, which it has scheduled if it was the first."""
        lines = self._lines
        lines.append(line)
        self._size += len(line)
        if len(lines) == 1 or self._size >= FLUSH_SIZE:
            self._schedule()

    def _schedule(self) -> None:
        if self._size >= FLUSH_SIZE:
            self._flush_due()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop: nothing would flush it later
            self._flush_due()
            return
        loop.call_later(FLUSH_AFTER, self._flush_due)

    def _flush_due(self) -> None:
        try:
            self.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": "held access lines", "levelno": logging.INFO}))

    def emit(self, record: logging.LogRecord) -> None:
        if not self._lines:
            super().emit(record)
            return
        try:
            self._write(self.format(record) + self.terminator)  # the held lines first, in the same write
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._lines:
                self._write("")
            else:
                super().flush()

    def close(self) -> None:
        self.flush()
        super().close()

    def _write(self, last: str) -> None:
        """Write the held lines and ``last`` (under the lock), in writes of whole lines up to ``WRITE_SIZE`` bytes."""
        lines = self._lines
        self._size = 0
        text = "".join([lines.popleft() for _ in range(len(lines))]) + last
        stream = self.stream
        # characters per write: bytes for ASCII text; otherwise a character may take up to 10 bytes (4 in
        # UTF-8, 10 when unencodable and escaped as ``\U0001f600``)
        limit = WRITE_SIZE if text.isascii() else WRITE_SIZE // 10
        start, end = 0, len(text)
        while end - start > limit:
            cut = text.rfind("\n", start, start + limit) + 1
            if cut <= start:  # a line longer than a write: alone
                cut = text.find("\n", start + limit) + 1 or end
            stream.write(text[start:cut])
            stream.flush()
            start = cut
        if start < end:
            stream.write(text[start:])
        stream.flush()


def holder(logger: logging.Logger) -> HoldingStreamHandler | None:
    """The handler that holds ``logger``'s access lines: the one handler its records reach when it is a
    ``HoldingStreamHandler`` and the logger has no filter; else None (the whole logging path)."""
    parent = logger.parent
    if (
        parent is not None
        and parent.parent is None
        and logger.propagate
        and not (logger.handlers or logger.filters or logger.disabled)
    ):
        # The usual case, a logger of the proxy's with nothing on it, whose parent is the root: the root's one
        # handler. Checked for every line, as a change has no hook: ~1.1k instructions fewer than the walk.
        handlers = parent.handlers
        found = handlers[0] if len(handlers) == 1 else None
    else:
        found = _only_handler(logger)
    return found if type(found) is HoldingStreamHandler else None


def _only_handler(logger: logging.Logger) -> logging.Handler | None:
    """The one handler ``logger``'s records reach, up the loggers as ``Logger.callHandlers`` goes; None when they
    reach none or several, or the logger filters or drops them."""
    if logger.disabled or logger.filters:
        return None
    found: logging.Handler | None = None
    node: logging.Logger | None = logger
    while node is not None:
        handlers = node.handlers
        if handlers:
            if found is not None or len(handlers) != 1:
                return None
            found = handlers[0]
        if not node.propagate:
            break
        node = node.parent
    return found


def flush_held_lines() -> None:
    """Write the lines the root logger's holding handlers keep (the server's shutdown)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, HoldingStreamHandler):
            handler.flush()
