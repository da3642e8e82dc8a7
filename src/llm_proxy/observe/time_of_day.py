"""The time of day of log lines, formatted once a second: ``time.strftime`` is most of a line's formatting."""

from __future__ import annotations

import logging
import time


class TimeOfDay:
    """``formatTime`` with the date and time of day formatted once a second (``time.strftime`` is most of a
    line's formatting); the same text as ``logging.Formatter.formatTime``."""

    __slots__ = ("second", "datefmt", "text", "msec_format", "head")

    def __init__(self) -> None:
        self.second = -1
        self.datefmt: str | None = None
        self.text = ""
        self.msec_format: str | None = None
        """The ``default_msec_format`` that ``head`` was made for."""
        self.head = ""
        """``text`` and the comma before the milliseconds, for the usual ``default_msec_format`` (``%s,%03d``)."""


_USUAL_MSEC_FORMAT = "%s,%03d"
MILLIS = [f"{ms:03d}" for ms in range(1000)]
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
    if datefmt or not msec_format:
        return clock.text
    if clock.head and 0 <= msecs < 1000:
        return clock.head + MILLIS[int(msecs)]
    return msec_format % (clock.text, msecs)
