"""What an error body must look like in each client dialect, checked the same way by the fuzzer and the fault tests.

Exactly the shapes the codecs' ``encode_error`` write: Anthropic ``{"type":"error","error":{"type","message"}}``,
OpenAI ``{"error":{"message","type","param","code"}}``, Bedrock ``{"message"}`` with ``x-amzn-errortype``.
"""

from __future__ import annotations

import orjson

from tests.inprocess import Answer


def _opt_str(value: object) -> bool:
    return value is None or isinstance(value, str)


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
    if dialect == "bedrock":
        if set(doc) != {"message"} or not isinstance(doc["message"], str):
            return "not a Bedrock error body"
        return None if answer.headers.get("x-amzn-errortype") else "Bedrock error without x-amzn-errortype"
    inner = doc.get("error")
    if set(doc) != {"error"} or not isinstance(inner, dict) or set(inner) != {"message", "type", "param", "code"}:
        return "not an OpenAI error body"
    ok = isinstance(inner["message"], str) and isinstance(inner["type"], str)
    return None if ok and _opt_str(inner["param"]) and _opt_str(inner["code"]) else "OpenAI error fields mistyped"
