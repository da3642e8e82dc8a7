"""The time of day of log lines, formatted once a second: ``time.strftime`` is most of a line's formatting."""

from __future__ import annotations

import logging
import time


class TimeOfDay:
    """``formatTime`` with the date and time of day formatted once a second (``time.strftime`` is most of a
    line's formatting); the same text as ``logging.Formatter.formatTime``."""

    __slots__ = ("second", "datefmt", "text")

    def __init__(self) -> None:
        self.second = -1
        self.datefmt: str | None = None
        self.text = ""


def format_time(owner: logging.Formatter, clock: TimeOfDay, record: logging.LogRecord, datefmt: str | None) -> str:
    """``owner.formatTime(record, datefmt)``, with ``clock`` keeping the last second's text."""
    return time_text(owner, clock, record.created, record.msecs, datefmt)


def time_text(owner: logging.Formatter, clock: TimeOfDay, created: float, msecs: float, datefmt: str | None) -> str:
    """The time of a record made at ``created`` (``msecs`` its milliseconds), as ``owner.formatTime`` gives it."""
    second = int(created)
    if second != clock.second or datefmt != clock.datefmt:
        moment = owner.converter(created)
        clock.text = time.strftime(datefmt, moment) if datefmt else time.strftime(owner.default_time_format, moment)
        clock.second, clock.datefmt = second, datefmt
    if datefmt or not owner.default_msec_format:
        return clock.text
    return owner.default_msec_format % (clock.text, msecs)
