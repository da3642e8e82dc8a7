"""JSON log lines (``server.log_format: json``): python-json-logger's orjson formatter, imported only when asked for.

Access records take a shorter way through it (the same bytes): their fields are one prepared mapping, and the
proxy's own handler can have their line made without a record (``DirectAccessFormat``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter  # orjson: already ours; a third of json's cost

from llm_proxy.observe.logs import ACCESS_FIELDS, JSON_FIELDS, DirectAccessFormat
from llm_proxy.observe.time_of_day import TimeOfDay, format_time, time_at


class JsonFormatter(OrjsonFormatter, DirectAccessFormat):
    """python-json-logger's orjson formatter; an access record's extra fields are its ``access_fields``
    mapping, merged as they are (the library's own path looks at every attribute of every record)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = TimeOfDay()
        rename = self.rename_fields
        self._head = {rename.get(key, key): value for key, value in self.defaults.items()}
        """The defaults under their output names: the start of every line."""
        self._required = [(rename.get(key, key), key) for key in self._required_fields]
        self._asctime = "asctime" in self._required_fields
        self._direct = not (self.static_fields or self.timestamp or self.rename_fields_keep_missing or self.prefix)
        """Whether an access line can be made in one step (``format``): none of the options it skips is set."""
        self._own = self._head == {"request_id": "-"} and self._required == _OWN_FIELDS and not self.json_indent
        """Whether the line's first keys are the proxy's own (``json_formatter``), in this order: the defaults'
        ``request_id`` first, then the format's fields (``request_id`` keeps its place); and one line per object."""

    def format(self, record: logging.LogRecord) -> str:
        values = record.__dict__
        fields = values.get(ACCESS_FIELDS)
        if (
            fields is None
            or not self._direct
            or record.exc_info
            or record.exc_text
            or record.stack_info
            or not isinstance(record.msg, str)
        ):
            return super().format(record)
        # The library's ``format`` and ``add_fields`` for an access record, without their generic steps (the
        # message's type, the traceback and stack, static fields, the hook that is the identity here, prefix).
        record.message = record.getMessage()
        if self._asctime:
            record.asctime = format_time(self, self._clock, record, self.datefmt)
        log_data = self._head.copy()
        for key, name in self._required:
            log_data[key] = values.get(name)
        log_data.update(fields)
        return self.jsonify_log_record(log_data)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return format_time(self, self._clock, record, datefmt)

    def access_line(
        self, now_ns: int, name: str, message: str, rid: str, fields: Mapping[str, object] | None
    ) -> str | None:
        if fields is None or not self._direct:
            return None
        asctime = time_at(self, self._clock, now_ns, self.datefmt) if self._asctime else None
        if self._own and fields and fields.keys().isdisjoint(_OWN_KEYS):
            # The proxy's own names (json_formatter): the merged object's bytes are the head's object and the
            # fields' object joined, without the merged dict (two dumps of small dicts cost less than a third,
            # whose every key is inserted again).
            try:
                head = orjson.dumps(
                    {"request_id": rid, "time": asctime, "level": "INFO", "logger": name, "message": message}
                )
                rest = orjson.dumps(fields, default=self.json_default)
            except TypeError:  # a key that is not a string: the library's way (below) handles it
                pass
            else:
                return (head[:-1] + b"," + rest[1:]).decode("utf8")
        values = {"name": name, "levelname": "INFO", "message": message, "request_id": rid, "asctime": asctime}
        log_data = self._head.copy()
        for key, attribute in self._required:
            log_data[key] = values[attribute]  # a KeyError when the format reads another attribute
        log_data.update(fields)
        return self.jsonify_log_record(log_data)

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        # The library asks orjson for non-string keys on every line, which makes orjson take its slower
        # path for every key; lines whose keys are all strings (every line of ours) are the same bytes
        # without it, and a line with another key (orjson refuses it: a TypeError) takes the library's way.
        if not self.json_indent:
            try:
                return orjson.dumps(log_data, default=self.json_default).decode("utf8")
            except TypeError:
                pass
        return super().jsonify_log_record(log_data)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        values = record.__dict__
        fields = values.get(ACCESS_FIELDS)
        if fields is None or self.static_fields or message_dict:
            super().add_fields(log_data, record, message_dict)
            if fields is not None:
                log_data.update(fields)
            return
        # What the library's loop gives for such a record: the defaults, the format's fields, the extras.
        log_data.update(self._head)
        for key, name in self._required:
            log_data[key] = values.get(name)
        log_data.update(fields)


_OWN_FIELDS = [
    ("time", "asctime"),
    ("level", "levelname"),
    ("logger", "name"),
    ("request_id", "request_id"),
    ("message", "message"),
]
"""``JSON_FIELDS`` under ``json_formatter``'s names, as the formatter keeps them (output name, attribute)."""
_OWN_KEYS = tuple(key for key, _ in _OWN_FIELDS)


def json_formatter() -> logging.Formatter:
    """The JSON formatter of the proxy's lines: ``JSON_FIELDS`` under their output names, then a record's extras."""
    return JsonFormatter(
        JSON_FIELDS,
        rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
        reserved_attrs=[*RESERVED_ATTRS, "request_tag", ACCESS_FIELDS],  # the text lines' form of request_id
        defaults={"request_id": "-"},
    )
