"""What an error body must look like in each client dialect, checked the same way by the fuzzer and the fault tests.

Exactly the shapes the codecs' ``encode_error`` write: Anthropic ``{"type":"error","error":{"type","message"}}``,
OpenAI ``{"error":{"message","type","param","code"}}``, Bedrock (InvokeModel and Converse) ``{"message"}`` with
``x-amzn-errortype``, Gemini ``{"error":{"code","message","status"}}`` (``code`` the HTTP status, ``status`` a
``google.rpc.Code`` name). A dialect with no recogniser here is an error, not a pass.
"""

from __future__ import annotations

import orjson

from tests.inprocess import Answer


def _opt_str(value: object) -> bool:
    return value is None or isinstance(value, str)


_GOOGLE_CODES = frozenset(
    {
        "INVALID_ARGUMENT",
        "FAILED_PRECONDITION",
        "OUT_OF_RANGE",
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "ABORTED",
        "RESOURCE_EXHAUSTED",
        "CANCELLED",
        "INTERNAL",
        "UNKNOWN",
        "UNAVAILABLE",
        "DEADLINE_EXCEEDED",
        "UNIMPLEMENTED",
        "DATA_LOSS",
    }
)


def _gemini_problem(doc: dict[str, object], status: int) -> str | None:
    inner = doc.get("error")
    if set(doc) != {"error"} or not isinstance(inner, dict) or set(inner) != {"code", "message", "status"}:
        return "not a Google error body"
    if not isinstance(inner["message"], str) or inner["status"] not in _GOOGLE_CODES:
        return "Google error fields mistyped"
    return None if inner["code"] == status else f"Google error code {inner['code']!r} is not the HTTP status"


def error_shape_problem(dialect: str, answer: Answer) -> str | None:
    """Why ``answer`` is not an error body in ``dialect`` (None: it is one)."""
    if not answer.headers.get("content-type", "").startswith("application/json"):
        return f"error content-type {answer.headers.get('content-type')!r}"
    try:
        doc = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return "error body is not JSON"
    if not isinstance(doc, dict):
        return "error body is not an object"
    if dialect == "claude":
        inner = doc.get("error")
        ok = set(doc) == {"type", "error"} and doc["type"] == "error" and isinstance(inner, dict)
        ok = ok and isinstance(inner, dict) and set(inner) == {"type", "message"}
        ok = ok and isinstance(inner, dict) and isinstance(inner["type"], str) and isinstance(inner["message"], str)
        return None if ok else "not an Anthropic error body"
    if dialect == "gemini":
        return _gemini_problem(doc, answer.status)
    if dialect in ("bedrock", "bedrock-converse"):
        if set(doc) != {"message"} or not isinstance(doc["message"], str):
            return "not a Bedrock error body"
        return None if answer.headers.get("x-amzn-errortype") else "Bedrock error without x-amzn-errortype"
    if dialect not in ("openai-chat", "openai-responses"):
        raise KeyError(f"no error-shape recogniser for the {dialect!r} dialect: add one to tests/error_shapes.py")
    inner = doc.get("error")
    if set(doc) != {"error"} or not isinstance(inner, dict) or set(inner) != {"message", "type", "param", "code"}:
        return "not an OpenAI error body"
    ok = isinstance(inner["message"], str) and isinstance(inner["type"], str)
    return None if ok and _opt_str(inner["param"]) and _opt_str(inner["code"]) else "OpenAI error fields mistyped"
