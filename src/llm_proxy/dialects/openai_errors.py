"""OpenAI error bodies, shared by the ``openai-chat`` and ``openai-responses`` codecs.

Both APIs answer a failure with ``{"error": {"message", "type", "param", "code"}}``; this module writes
that object for clients (``error_object``, ``encode_error``) and reads it from upstreams.

Reading is where the two codecs grew apart, and each keeps its own reading (an ``ErrorRules``):

* ``CHAT_RULES``: the error ``code`` (five codes), then the error ``type`` (twelve types, Anthropic-style
  ones included), then the HTTP status decide the kind; without a status (a stream's error chunk) the
  status is the kind's usual one, and a bare error message that is empty stays empty;
* ``RESPONSES_RULES``: one table, looked up by ``code`` then by ``type``, also knows the codes Codex acts
  on (``server_is_overloaded``, ``slow_down``, ``invalid_prompt``, ``server_error``) and the phrase
  "context window"; a generic ``server_error`` never overrides a real HTTP status; without a status the
  error is a 500 ``api_error``; a bare empty message becomes "upstream error".

Stream failures also live here:
``response_failure`` (the ``error`` of a failed Responses stream, with the codes Codex reads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson

from llm_proxy.canonical import JSON, ErrorKind, ProxyError
from llm_proxy.dialects.base import ErrorBody
from llm_proxy.dialects.jsonread import header
from llm_proxy.errors import kind_for_status

Classify = Callable[[int | None, str | None, str | None, str], tuple[int, ErrorKind]]
"""(HTTP status or None, error type, error code, message) -> (status for the client, kind)."""


def _text(obj: Mapping[str, JSON], key: str) -> str | None:
    value = obj.get(key)
    return None if value is None else value if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class ErrorRules:
    """How one codec reads an OpenAI error: its classification, and its text for an empty bare message."""

    classify: Classify
    blank_message: str

    def from_object(self, raw: JSON, status: int | None = None, retry_after: str | None = None) -> ProxyError:
        """A canonical error from an OpenAI error object (HTTP body ``error``, stream ``error``, ``response.error``)."""
        err = raw if isinstance(raw, dict) else {}
        message = _text(err, "message") or (raw if isinstance(raw, str) else None) or "upstream error"
        code, err_type = _text(err, "code"), _text(err, "type")
        final_status, kind = self.classify(status, err_type, code, message)
        return ProxyError(
            status=final_status,
            kind=kind,
            message=message,
            param=_text(err, "param"),
            code=code,
            retry_after=retry_after,
        )

    def decode(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
        """An upstream's HTTP error: the ``error`` object, or a bare message, or the body's text."""
        retry_after = header(headers, "retry-after")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            return self.from_object(err, status, retry_after)
        if isinstance(err, str):
            message = err
        elif isinstance(doc, dict) and isinstance(doc.get("message"), str):
            message = doc["message"]
        else:
            message = body.decode("utf-8", "replace")[:500] or f"upstream returned HTTP {status}"
        final_status, kind = self.classify(status, None, None, message)
        return ProxyError(
            status=final_status, kind=kind, message=message or self.blank_message, retry_after=retry_after
        )


# ---------------------------------------------------------------------------------------------
# Chat's reading
# ---------------------------------------------------------------------------------------------

_CHAT_KIND_BY_CODE: dict[str, ErrorKind] = {
    "context_length_exceeded": ErrorKind.CONTEXT_LENGTH,
    "rate_limit_exceeded": ErrorKind.RATE_LIMIT,
    "insufficient_quota": ErrorKind.BILLING,
    "invalid_api_key": ErrorKind.AUTHENTICATION,
    "model_not_found": ErrorKind.NOT_FOUND,
}
# Only types that say more than the status; generic ones (invalid_request_error, server_error) defer to it.
_CHAT_KIND_BY_TYPE: dict[str, ErrorKind] = {
    "authentication_error": ErrorKind.AUTHENTICATION,
    "permission_error": ErrorKind.PERMISSION,
    "not_found_error": ErrorKind.NOT_FOUND,
    "rate_limit_error": ErrorKind.RATE_LIMIT,
    "tokens": ErrorKind.RATE_LIMIT,
    "requests": ErrorKind.RATE_LIMIT,
    "insufficient_quota": ErrorKind.BILLING,
    "billing_error": ErrorKind.BILLING,
    "overloaded_error": ErrorKind.OVERLOADED,
    "timeout_error": ErrorKind.TIMEOUT,
    "request_too_large": ErrorKind.REQUEST_TOO_LARGE,
    "conflict_error": ErrorKind.CONFLICT,
}
_CHAT_CONTEXT_PHRASES = ("prompt is too long", "maximum context length", "context_length_exceeded")
_CHAT_STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.CONTEXT_LENGTH: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.BILLING: 429,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.REQUEST_TOO_LARGE: 413,
    ErrorKind.RATE_LIMIT: 429,
    ErrorKind.OVERLOADED: 503,
    ErrorKind.TIMEOUT: 504,
    ErrorKind.UPSTREAM_UNREACHABLE: 502,
}


def _chat_kind(status: int, err_type: str | None, code: str | None, message: str) -> ErrorKind:
    lowered = message.lower()
    if code == "context_length_exceeded" or any(p in lowered for p in _CHAT_CONTEXT_PHRASES):
        return ErrorKind.CONTEXT_LENGTH
    if code in _CHAT_KIND_BY_CODE:
        return _CHAT_KIND_BY_CODE[code]
    if err_type in _CHAT_KIND_BY_TYPE:
        return _CHAT_KIND_BY_TYPE[err_type]
    return kind_for_status(status)


def _classify_chat(status: int | None, err_type: str | None, code: str | None, message: str) -> tuple[int, ErrorKind]:
    guess = status if status is not None else (400 if err_type == "invalid_request_error" else 500)
    kind = _chat_kind(guess, err_type, code, message)
    return (status if status is not None else _CHAT_STATUS_BY_KIND.get(kind, guess)), kind


CHAT_RULES = ErrorRules(classify=_classify_chat, blank_message="")

# ---------------------------------------------------------------------------------------------
# Responses' reading
# ---------------------------------------------------------------------------------------------

_RESPONSES_KIND_BY_CODE: dict[str, tuple[int, ErrorKind]] = {
    "context_length_exceeded": (400, ErrorKind.CONTEXT_LENGTH),
    "rate_limit_exceeded": (429, ErrorKind.RATE_LIMIT),
    "insufficient_quota": (429, ErrorKind.BILLING),
    "server_is_overloaded": (503, ErrorKind.OVERLOADED),
    "slow_down": (503, ErrorKind.OVERLOADED),
    "invalid_prompt": (400, ErrorKind.INVALID_REQUEST),
    "invalid_api_key": (401, ErrorKind.AUTHENTICATION),
    "model_not_found": (404, ErrorKind.NOT_FOUND),
    "server_error": (500, ErrorKind.API_ERROR),
}
_RESPONSES_CONTEXT_PHRASES = (
    "prompt is too long",
    "maximum context length",
    "context window",
    "context_length_exceeded",
)


def _classify_responses(
    status: int | None, err_type: str | None, code: str | None, message: str
) -> tuple[int, ErrorKind]:
    lowered = message.lower()
    if code != "context_length_exceeded" and any(p in lowered for p in _RESPONSES_CONTEXT_PHRASES):
        code = "context_length_exceeded"
    for key in (code, err_type):
        if key in _RESPONSES_KIND_BY_CODE:
            guess, kind = _RESPONSES_KIND_BY_CODE[key]
            if kind is not ErrorKind.API_ERROR or status is None:
                return (status or guess), kind
    if status is None:
        return 500, ErrorKind.API_ERROR
    return status, kind_for_status(status)


RESPONSES_RULES = ErrorRules(classify=_classify_responses, blank_message="upstream error")

# ---------------------------------------------------------------------------------------------
# Writing errors for clients (the same for both codecs)
# ---------------------------------------------------------------------------------------------

_TYPE_BY_KIND: dict[ErrorKind, str] = {
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION: "permission_error",
    ErrorKind.BILLING: "insufficient_quota",
    ErrorKind.BUDGET: "insufficient_quota",
    ErrorKind.RATE_LIMIT: "rate_limit_error",
    ErrorKind.API_ERROR: "server_error",
    ErrorKind.OVERLOADED: "server_error",
    ErrorKind.TIMEOUT: "server_error",
    ErrorKind.UPSTREAM_UNREACHABLE: "server_error",
}
_CODE_BY_KIND: dict[ErrorKind, str] = {
    ErrorKind.CONTEXT_LENGTH: "context_length_exceeded",
    ErrorKind.RATE_LIMIT: "rate_limit_exceeded",
    ErrorKind.BUDGET: "insufficient_quota",
}
_STATUS_OVERRIDE: dict[ErrorKind, int] = {
    ErrorKind.OVERLOADED: 503,
    ErrorKind.UPSTREAM_UNREACHABLE: 502,
    ErrorKind.TIMEOUT: 504,
}
# Codex reads response.error.code of a failed stream: these are the codes it acts on.
_STREAM_CODE_BY_KIND: dict[ErrorKind, str] = {
    ErrorKind.RATE_LIMIT: "rate_limit_exceeded",
    ErrorKind.CONTEXT_LENGTH: "context_length_exceeded",
    ErrorKind.OVERLOADED: "server_is_overloaded",
    ErrorKind.BILLING: "insufficient_quota",
    ErrorKind.BUDGET: "insufficient_quota",
}


def error_object(error: ProxyError) -> dict[str, JSON]:
    """The ``error`` member of an HTTP error body or of a Chat stream's error chunk."""
    return {
        "message": error.message,
        "type": _TYPE_BY_KIND.get(error.kind, "invalid_request_error"),
        "param": error.param,
        "code": _CODE_BY_KIND.get(error.kind, error.code),
    }


def encode_error(error: ProxyError) -> ErrorBody:
    status = _STATUS_OVERRIDE.get(error.kind, error.status)
    headers = (("Retry-After", error.retry_after),) if error.retry_after else ()
    return ErrorBody(status=status, body=orjson.dumps({"error": error_object(error)}), headers=headers)


def response_failure(error: ProxyError) -> dict[str, JSON]:
    """The ``error`` of a failed Responses stream (``response.failed``)."""
    return {"code": _STREAM_CODE_BY_KIND.get(error.kind, "server_error"), "message": error.message}
