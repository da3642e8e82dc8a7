"""Anthropic errors: the error type tables, ``error_json``/``encode_error`` for clients and the decoding of
upstream errors (``decode_error`` for an HTTP error, ``decode_error_event`` for a stream's ``error`` event).

An upstream error body (or an ``error`` stream event) becomes a canonical ``ProxyError`` whose kind comes
from the error type, the message (context-length markers) or, failing both, the HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from llm_proxy.canonical import JSON, ErrorKind, ProxyError
from llm_proxy.dialects.base import ErrorBody
from llm_proxy.dialects.jsonread import http_error
from llm_proxy.errors import kind_for_status

ERROR_TYPES: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.BILLING: "billing_error",
    ErrorKind.NOT_FOUND: "not_found_error",
    ErrorKind.CONFLICT: "conflict_error",
    ErrorKind.REQUEST_TOO_LARGE: "request_too_large",
    ErrorKind.CONTEXT_LENGTH: "invalid_request_error",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.BUDGET: "rate_limit_error",
    ErrorKind.API_ERROR: "api_error",
    ErrorKind.OVERLOADED: "overloaded_error",
    ErrorKind.TIMEOUT: "timeout_error",
    ErrorKind.UPSTREAM_UNREACHABLE: "api_error",
}
"""Canonical error kind -> Anthropic error ``type``."""

ERROR_KINDS: dict[str, ErrorKind] = {
    "invalid_request_error": ErrorKind.INVALID_REQUEST,
    "authentication_error": ErrorKind.AUTHENTICATION,
    "permission_error": ErrorKind.PERMISSION,
    "billing_error": ErrorKind.BILLING,
    "not_found_error": ErrorKind.NOT_FOUND,
    "conflict_error": ErrorKind.CONFLICT,
    "request_too_large": ErrorKind.REQUEST_TOO_LARGE,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "api_error": ErrorKind.API_ERROR,
    "overloaded_error": ErrorKind.OVERLOADED,
    "timeout_error": ErrorKind.TIMEOUT,
    "context_length_exceeded": ErrorKind.CONTEXT_LENGTH,
}
"""Anthropic error ``type`` -> canonical kind."""

_STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_CLIENT_STATUS = {ErrorKind.OVERLOADED: 529, ErrorKind.UPSTREAM_UNREACHABLE: 502, ErrorKind.TIMEOUT: 504}
_CONTEXT_MARKERS = ("prompt is too long", "context_length_exceeded", "exceed context limit")


def error_json(error: ProxyError) -> dict[str, JSON]:
    return {"type": "error", "error": {"type": ERROR_TYPES.get(error.kind, "api_error"), "message": error.message}}


def encode_error(error: ProxyError) -> ErrorBody:
    status = _CLIENT_STATUS.get(error.kind, error.status)
    headers = (("Retry-After", error.retry_after),) if error.retry_after else ()
    return ErrorBody(status=status, body=orjson.dumps(error_json(error)), headers=headers)


def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
    """An upstream's HTTP error: its type and message, else the body's text, else the status."""
    error_type, message = _error_fields(body)
    return http_error(status, error_type, message, headers, _error_kind)


def _error_kind(error_type: str | None, message: str, status: int) -> ErrorKind:
    lowered = message.lower()
    if any(marker in lowered for marker in _CONTEXT_MARKERS) or error_type == "context_length_exceeded":
        return ErrorKind.CONTEXT_LENGTH
    if error_type in ERROR_KINDS:
        return ERROR_KINDS[error_type]
    return kind_for_status(status)


def _error_fields(body: bytes) -> tuple[str | None, str]:
    """(type, message) of an error body; a body that is not a JSON error object becomes the message."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        inner = obj.get("error")
        source = inner if isinstance(inner, dict) else obj
        error_type, message = source.get("type"), source.get("message")
        if isinstance(message, str):
            return (error_type if isinstance(error_type, str) else None), message
    return None, body.decode("utf-8", "replace")[:500]


def decode_error_event(obj: Mapping[str, JSON]) -> ProxyError:
    """An ``error`` stream event (``{"type":"error","error":{type, message}}``) as a canonical error."""
    inner = obj.get("error")
    fields: Mapping[str, Any] = inner if isinstance(inner, dict) else {}
    error_type, text = fields.get("type"), fields.get("message")
    error_type = error_type if isinstance(error_type, str) else None
    message = text if isinstance(text, str) else "the upstream stream failed"
    status = _STATUS_BY_TYPE.get(error_type or "", 500)
    return ProxyError(status=status, kind=_error_kind(error_type, message, status), message=message)
