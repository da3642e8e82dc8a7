"""Log lines: the request id on every line about a request, and the text or JSON format (``server.log_format``).

The request id lives in a context variable set when a request arrives (each request runs in its own task,
so its value follows the request into everything it awaits); a filter on the handlers copies it onto every
record as ``request_id`` (``-`` outside a request). JSON lines come from ``python-json-logger``, imported
only when asked for; the access record's fields (``Exchange.log``) become keys of the object. Either way the
``RedactingFormatter`` masks the configured secrets in the finished line.

The access line is written once per request, so its path is kept short (``docs/observability.md``, "What it
costs"): its record is an ``AccessRecord`` filled from a template instead of ``LogRecord.__init__``'s work, the
formatters format the time of day once a second, a JSON formatter takes the access fields from one
prepared mapping instead of sifting every attribute of the record, and when the proxy's own handler is the only
one the line would reach, that handler holds it for a batched write (``observe.held_lines``), and with the
proxy's own filter and formatter the line is made from its few values without any record (``AccessLine.write``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from llm_proxy.observe.held_lines import holder
from llm_proxy.observe.redact import RedactingFormatter, Redactor
from llm_proxy.observe.time_of_day import TimeOfDay, format_time, record_msecs, time_at

REQUEST_ID: ContextVar[str] = ContextVar("llm_proxy_request_id", default="-")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(request_tag)s"
"""The line as before request ids, which come last (`` [request <id>]``) so that readers of the old lines still
match; lines outside a request have no tag."""
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
LOG_FORMATS = ("text", "json")
ACCESS_FIELDS = "access_fields"
"""The attribute of an access record that holds its fields (a mapping) when a JSON formatter is in use."""


class _Fields:
    structured = False
    """Whether a JSON formatter is in use: only then does the access line carry its fields (a text line never
    shows them, and building them costs more than the line itself)."""


FIELDS = _Fields()


def request_tag(rid: str) -> str:
    """The end of a text line about request ``rid`` (nothing outside a request)."""
    return "" if rid == "-" else f" [request {rid}]"


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (as ``request_id``, and ``request_tag`` for text lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = getattr(record, "request_id", None)
        if rid is None:
            record.request_id = rid = REQUEST_ID.get()
        record.request_tag = request_tag(rid)
        return True


class AccessRecord(logging.LogRecord):
    """A ``LogRecord`` with every attribute ``LogRecord(...)`` would give it, made for a fraction of the work
    (``AccessLine.record``): its attributes are a copy of a template record's, with the arguments, the time
    and the request id replaced."""


class AccessLine:
    """Makes the access records of one logger.

    Only the arguments, the time and the request id differ from one access line to the next; the rest (name,
    level, file, function, and the thread and process attributes, ``None`` while ``logging.logThreads``,
    ``logProcesses`` and ``logMultiprocessing`` are off) is copied from a template record made once, with
    the keys set later (``request_tag``, ``access_fields``) already in it, so no line grows its record's
    ``__dict__``. With any of those switches on, the records are the standard ones (which read them).
    """

    __slots__ = ("logger", "message", "pathname", "_template", "_start")

    def __init__(self, logger: logging.Logger, message: str, pathname: str) -> None:
        self.logger = logger
        self.message = message
        self.pathname = pathname
        self._template: dict[str, Any] | None = None
        self._start = 0.0

    def write(self, args: tuple[object, ...], rid: str, fields: Mapping[str, object] | None) -> None:
        """Log the line: held by the proxy's own handler when it is the only one the record would reach
        (``observe.held_lines``), else through the logging module's whole path. Held, and with that handler's
        usual filter and formatter (``RequestIdFilter``, the proxy's text or JSON format behind its redaction),
        the formatter makes the line from its few values without a record (``DirectAccessFormat``): the same
        bytes, without the record's copy, the filter call and the generic format steps."""
        handler = holder(self.logger)
        if handler is None:
            self.logger.handle(self.record(args, rid, fields))
            return
        filters = handler.filters
        fmt = handler.formatter
        if (
            handler.level <= logging.INFO
            and len(filters) == 1
            and type(filters[0]) is RequestIdFilter
            and type(fmt) is RedactingFormatter
            and isinstance(fmt.inner, DirectAccessFormat)
        ):
            try:
                line = fmt.inner.access_line(time.time_ns(), self.logger.name, self.message % args, rid, fields)
            except (KeyError, TypeError, ValueError):  # the record path meets it again, and reports it
                line = None
            if line is not None:
                handler.hold_line(fmt.redactor.text(line) + handler.terminator)
                return
        handler.hold(self.record(args, rid, fields))

    def record(self, args: tuple[object, ...], rid: str, fields: Mapping[str, object] | None) -> logging.LogRecord:
        """The INFO record of ``message % args`` about request ``rid`` (its ``request_id``), with ``fields`` as its
        ``access_fields`` when given."""
        if logging.logThreads or logging.logProcesses or logging.logMultiprocessing or (_TASKS and _log_tasks()):
            extra: dict[str, object] = {"request_id": rid}
            if fields is not None:
                extra[ACCESS_FIELDS] = fields
            name = self.logger.name
            return self.logger.makeRecord(name, logging.INFO, self.pathname, 0, self.message, args, None, "log", extra)
        template = self._template
        if template is None:
            template = self._make_template()
        now = time.time_ns()
        values = template.copy()
        values["args"] = args
        values["created"] = created = now / 1e9
        values["msecs"] = record_msecs(now)
        values["relativeCreated"] = (created - self._start) * 1000
        values["request_id"] = rid
        values[ACCESS_FIELDS] = fields
        record = _new_record(AccessRecord)
        record.__dict__ = values
        return record

    def _make_template(self) -> dict[str, Any]:
        model = logging.LogRecord(self.logger.name, logging.INFO, self.pathname, 0, self.message, (), None, "log")
        self._start = model.created - model.relativeCreated / 1000
        template = dict(model.__dict__)
        template.update(request_id="-", request_tag="", access_fields=None)
        self._template = template
        return template


_new_record = object.__new__


_TASKS = hasattr(logging, "logAsyncioTasks")
"""Python 3.12+: records have the current task's name (unless ``logging.logAsyncioTasks`` is off)."""


def _log_tasks() -> bool:
    return bool(getattr(logging, "logAsyncioTasks", False))


class DirectAccessFormat:
    """A formatter that can make an access line from its few values, without a record (``AccessLine.write``)."""

    def access_line(
        self, now_ns: int, name: str, message: str, rid: str, fields: Mapping[str, object] | None
    ) -> str | None:
        """The line of an INFO record of logger ``name`` made at ``now_ns`` (``time.time_ns()``), whose message is
        ``message`` and whose ``request_id`` is ``rid`` (``request_tag`` as ``RequestIdFilter`` sets it), with
        ``fields`` as its ``access_fields``; None when the format reads any other attribute."""
        raise NotImplementedError


class TextFormatter(logging.Formatter, DirectAccessFormat):
    """``logging.Formatter`` for ``TEXT_FORMAT`` (the same lines), in fewer steps: the time of day formatted once a
    second (see ``TimeOfDay``), and the record's attributes used as they are once the filter has set
    ``request_tag`` (the defaults are for a handler without ``RequestIdFilter``)."""

    def __init__(self, fmt: str, defaults: dict[str, Any]) -> None:
        super().__init__(fmt, defaults=defaults)
        self._clock = TimeOfDay()
        self._uses_time = self.usesTime()
        self._line = fmt
        self._own = fmt == TEXT_FORMAT

    def format(self, record: logging.LogRecord) -> str:
        values = record.__dict__
        if record.exc_info or record.exc_text or record.stack_info or "request_tag" not in values:
            return super().format(record)
        record.message = record.getMessage()
        if self._uses_time:
            record.asctime = format_time(self, self._clock, record, self.datefmt)
        return self._line % values

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return format_time(self, self._clock, record, datefmt)

    def access_line(
        self, now_ns: int, name: str, message: str, rid: str, fields: Mapping[str, object] | None
    ) -> str | None:
        asctime = time_at(self, self._clock, now_ns, self.datefmt)
        if self._own:  # the proxy's own format (TEXT_FORMAT): the line in one step
            return f"{asctime} INFO {name}: {message}{request_tag(rid)}"
        tag = request_tag(rid)
        values = {
            "name": name,
            "levelname": "INFO",
            "message": message,
            "request_id": rid,
            "request_tag": tag,
            "asctime": asctime,
        }
        return self._line % values  # a KeyError when the format reads another attribute


def formatter(log_format: str, redactor: Redactor | None) -> logging.Formatter:
    """The formatter for ``log_format`` (``text`` or ``json``), masking ``redactor``'s secrets."""
    inner: logging.Formatter
    if log_format == "json":
        FIELDS.structured = True
        from llm_proxy.observe.json_lines import json_formatter  # python-json-logger: only when asked for

        inner = json_formatter()
    else:
        # Defaults: a handler set up without ``RequestIdFilter`` still formats (with no tag).
        inner = TextFormatter(TEXT_FORMAT, defaults={"request_tag": "", "request_id": "-"})
    return RedactingFormatter(redactor or Redactor(), inner=inner)
