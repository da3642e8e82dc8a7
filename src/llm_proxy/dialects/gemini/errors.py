"""Google API errors: ``{"error": {"code": 400, "message": "...", "status": "INVALID_ARGUMENT"}}`` both ways.

The ``status`` is a google.rpc code name; it decides the canonical kind (context-length messages refine
``INVALID_ARGUMENT``), the HTTP status decides when the body has none. The same object arrives inside a stream
as one element (``data: {"error": ...}`` or an array element) and is written there for clients the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from llm_proxy.canonical import JSON, ErrorKind, ProxyError
from llm_proxy.dialects.base import ErrorBody
from llm_proxy.dialects.jsonread import http_error
from llm_proxy.errors import kind_for_status

_KINDS: dict[str, ErrorKind] = {
    "INVALID_ARGUMENT": ErrorKind.INVALID_REQUEST,
    "FAILED_PRECONDITION": ErrorKind.INVALID_REQUEST,
    "OUT_OF_RANGE": ErrorKind.INVALID_REQUEST,
    "UNAUTHENTICATED": ErrorKind.AUTHENTICATION,
    "PERMISSION_DENIED": ErrorKind.PERMISSION,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "ALREADY_EXISTS": ErrorKind.CONFLICT,
    "ABORTED": ErrorKind.CONFLICT,
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMIT,
    "INTERNAL": ErrorKind.API_ERROR,
    "UNKNOWN": ErrorKind.API_ERROR,
    "UNAVAILABLE": ErrorKind.OVERLOADED,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
}
"""google.rpc status name -> canonical kind."""

_STATUSES: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.INVALID_REQUEST: (400, "INVALID_ARGUMENT"),
    ErrorKind.CONTEXT_LENGTH: (400, "INVALID_ARGUMENT"),
    ErrorKind.REQUEST_TOO_LARGE: (400, "INVALID_ARGUMENT"),
    ErrorKind.AUTHENTICATION: (401, "UNAUTHENTICATED"),
    ErrorKind.PERMISSION: (403, "PERMISSION_DENIED"),
    ErrorKind.BILLING: (429, "RESOURCE_EXHAUSTED"),
    ErrorKind.NOT_FOUND: (404, "NOT_FOUND"),
    ErrorKind.CONFLICT: (409, "ABORTED"),
    ErrorKind.RATE_LIMIT: (429, "RESOURCE_EXHAUSTED"),
    ErrorKind.BUDGET: (429, "RESOURCE_EXHAUSTED"),
    ErrorKind.API_ERROR: (500, "INTERNAL"),
    ErrorKind.OVERLOADED: (503, "UNAVAILABLE"),
    ErrorKind.UPSTREAM_UNREACHABLE: (503, "UNAVAILABLE"),
    ErrorKind.TIMEOUT: (504, "DEADLINE_EXCEEDED"),
}
"""Canonical kind -> (HTTP status, status name) shown to a Gemini client."""

_CONTEXT_MARKERS = ("exceeds the maximum number of tokens", "input token count", "context window")


def _kind(status_name: str | None, message: str, status: int) -> ErrorKind:
    kind = _KINDS.get(status_name or "") or kind_for_status(status)
    if kind is ErrorKind.INVALID_REQUEST and any(m in message.lower() for m in _CONTEXT_MARKERS):
        return ErrorKind.CONTEXT_LENGTH
    return kind


def error_json(error: ProxyError) -> dict[str, JSON]:
    status, name = _STATUSES.get(error.kind, (500, "INTERNAL"))
    return {"error": {"code": status, "message": error.message, "status": name}}


def encode_error(error: ProxyError) -> ErrorBody:
    status, _ = _STATUSES.get(error.kind, (500, "INTERNAL"))
    headers = (("Retry-After", error.retry_after),) if error.retry_after else ()
    return ErrorBody(status=status, body=orjson.dumps(error_json(error)), headers=headers)


def _fields(obj: JSON) -> tuple[str | None, str | None, int | None]:
    """(status name, message, code) of an ``error`` object."""
    inner = obj.get("error") if isinstance(obj, dict) else None
    if not isinstance(inner, dict):
        return None, None, None
    name, message, code = inner.get("status"), inner.get("message"), inner.get("code")
    return (
        name if isinstance(name, str) else None,
        message if isinstance(message, str) else None,
        code if isinstance(code, int) and not isinstance(code, bool) else None,
    )


def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
    """An upstream's HTTP error; a body that is not Google's error object becomes the message."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, list) and doc:  # a streamGenerateContent error may come as a one-element array
        doc = doc[0]
    name, message, _ = _fields(doc)
    if message is None:
        message = body.decode("utf-8", "replace")[:500]
    return http_error(status, name, message, headers, _kind)


def decode_error_object(obj: JSON) -> ProxyError:
    """An error element inside a stream as a canonical error."""
    name, message, code = _fields(obj)
    status = code if code is not None and 400 <= code <= 599 else 500
    text = message or "the upstream stream failed"
    return ProxyError(status=status, kind=_kind(name, text, status), message=text, code=name)
