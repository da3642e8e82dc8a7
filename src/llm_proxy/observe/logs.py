"""Log lines: the request id on every line about a request, and the text or JSON format (``server.log_format``).

The request id lives in a context variable set when a request arrives (each request runs in its own task,
so its value follows the request into everything it awaits); a filter on the handlers copies it onto every
record as ``request_id`` (``-`` outside a request). JSON lines come from ``python-json-logger``, imported
only when asked for; the access record's fields (``Exchange.log``) become keys of the object. Either way the
``RedactingFormatter`` masks the configured secrets in the finished line.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

from llm_proxy.observe.redact import RedactingFormatter, Redactor

REQUEST_ID: ContextVar[str] = ContextVar("llm_proxy_request_id", default="-")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(request_tag)s"
"""The line as before request ids, which come last (`` [request <id>]``) so that readers of the old lines still
match; lines outside a request have no tag."""
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
LOG_FORMATS = ("text", "json")


class _Fields:
    structured = False
    """Whether a JSON formatter is in use: only then does the access line carry its fields as attributes
    (putting 19 attributes on a record that a text line never shows costs more than the line itself)."""


FIELDS = _Fields()


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (as ``request_id``, and ``request_tag`` for text lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = getattr(record, "request_id", None)
        if rid is None:
            record.request_id = rid = REQUEST_ID.get()
        record.request_tag = "" if rid == "-" else f" [request {rid}]"
        return True


def formatter(log_format: str, redactor: Redactor | None) -> logging.Formatter:
    """The formatter for ``log_format`` (``text`` or ``json``), masking ``redactor``'s secrets."""
    inner: logging.Formatter
    if log_format == "json":
        FIELDS.structured = True
        from pythonjsonlogger.core import RESERVED_ATTRS
        from pythonjsonlogger.orjson import OrjsonFormatter  # orjson: already ours; a third of json's cost

        inner = OrjsonFormatter(
            JSON_FIELDS,
            rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
            reserved_attrs=[*RESERVED_ATTRS, "request_tag"],  # the text lines' form of request_id
            defaults={"request_id": "-"},
        )
    else:
        # Defaults: a handler set up without ``RequestIdFilter`` still formats (with no tag).
        inner = logging.Formatter(TEXT_FORMAT, defaults={"request_tag": "", "request_id": "-"})
    return RedactingFormatter(redactor or Redactor(), inner=inner)
