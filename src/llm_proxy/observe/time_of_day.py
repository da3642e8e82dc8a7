"""The time of day of log lines, formatted once a second: ``time.strftime`` is most of a line's formatting."""

from __future__ import annotations

import logging
import time


class TimeOfDay:
    """``formatTime`` with the date and time of day formatted once a second (``time.strftime`` is most of a
    line's formatting); the same text as ``logging.Formatter.formatTime``."""

    __slots__ = ("second", "datefmt", "text", "msec_format", "head", "low", "high")

    def __init__(self) -> None:
        self.second = -1
        self.datefmt: str | None = None
        self.text = ""
        self.msec_format: str | None = None
        """The ``default_msec_format`` that ``head`` was made for."""
        self.head = ""
        """``text`` and the comma before the milliseconds, for the usual ``default_msec_format`` (``%s,%03d``)."""
        self.low = self.high = 0
        """The instants (``time.time_ns()``, from ``low`` up to ``high``) of ``second``, when the text is the
        usual format's (``head``, no ``datefmt``): there ``time_at`` only looks up the milliseconds."""


_USUAL_MSEC_FORMAT = "%s,%03d"
_MILLIS = [f"{ms:03d}" for ms in range(1000)]
"""``%03d`` of each millisecond: indexing a list costs a fraction of a ``%`` format."""


def format_time(owner: logging.Formatter, clock: TimeOfDay, record: logging.LogRecord, datefmt: str | None) -> str:
    """``owner.formatTime(record, datefmt)``, with ``clock`` keeping the last second's text."""
    return time_text(owner, clock, record.created, record.msecs, datefmt)


def time_text(owner: logging.Formatter, clock: TimeOfDay, created: float, msecs: float, datefmt: str | None) -> str:
    """The time of a record made at ``created`` (``msecs`` its milliseconds), as ``owner.formatTime`` gives it."""
    second = int(created)
    msec_format = owner.default_msec_format
    if second != clock.second or datefmt != clock.datefmt or msec_format != clock.msec_format:
        moment = owner.converter(created)
        clock.text = time.strftime(datefmt, moment) if datefmt else time.strftime(owner.default_time_format, moment)
        clock.second, clock.datefmt, clock.msec_format = second, datefmt, msec_format
        clock.head = clock.text + "," if msec_format == _USUAL_MSEC_FORMAT else ""
        clock.low, clock.high = _instants(second) if clock.head and datefmt is None else (0, 0)
    if datefmt or not msec_format:
        return clock.text
    if clock.head and 0 <= msecs < 1000:
        return clock.head + _MILLIS[int(msecs)]
    return msec_format % (clock.text, msecs)


def record_msecs(now_ns: int) -> float:
    """A record's ``msecs`` for an instant in nanoseconds, as ``LogRecord`` computes it."""
    return (now_ns % 1_000_000_000) // 1_000_000 + 0.0


def time_at(owner: logging.Formatter, clock: TimeOfDay, now_ns: int, datefmt: str | None) -> str:
    """``time_text`` of a record made at ``now_ns`` (``time.time_ns()``): the access lines' time, made without a
    record. Within the second ``clock`` already has, in the usual format, only the milliseconds are new."""
    if clock.low <= now_ns < clock.high and datefmt is None and owner.default_msec_format is clock.msec_format:
        return clock.head + _MILLIS[now_ns // 1_000_000 % 1000]
    return time_text(owner, clock, now_ns / 1e9, record_msecs(now_ns), datefmt)


_SLACK = 1_000_000
"""Nanoseconds around a second's start within which ``LogRecord``'s float ``created`` turns to that second: a
float near 1.8e9 seconds is exact to ~240 ns, and ``ns / 1e9`` rounds twice (the integer, then the quotient)."""


def _instants(second: int) -> tuple[int, int]:
    """The instants in nanoseconds, from the first up to the second one returned, whose record shows ``second``:
    its ``created`` (``ns / 1e9``) falls in ``second`` (its ``msecs`` are ``ns``'s, whatever second they are
    of); (0, 0), none, for the first second after 1970 and before."""
    if second < 1:
        return 0, 0
    base = second * 1_000_000_000
    return _turn(second, base), _turn(second + 1, base + 1_000_000_000)


def _turn(second: int, near: int) -> int:
    """The first instant in nanoseconds, within ``_SLACK`` of ``near``, whose ``created`` (``ns / 1e9``, as
    ``LogRecord`` computes it) is in ``second`` or later: float division is monotonic, so a bisection finds it."""
    low, high = near - _SLACK, near + _SLACK  # int(low / 1e9) < second <= int(high / 1e9)
    while high - low > 1:
        middle = (low + high) // 2
        if int(middle / 1e9) >= second:
            high = middle
        else:
            low = middle
    return high
