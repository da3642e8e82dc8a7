"""Reading JSON request bodies, and changing a body's top-level ``model`` without touching the rest.

In proxy mode only ``model`` may change: key order, unknown fields, number spellings (``1.0``,
``1e5``), string escapes and whitespace must reach the upstream as the client wrote them. Re-serialising
would keep the meaning but not the bytes, so the value is spliced in place instead. Written by hand
because JSON libraries parse to values and lose the byte positions this needs.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson

from llm_proxy.errors import RequestError

log = logging.getLogger("llm_proxy.request")

# A JSON string token, or a structural character that changes nesting depth.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]]', re.S)
_COLON = re.compile(rb"\s*:\s*")


MAX_DEPTH = 128
"""Deepest nesting of arrays and objects accepted in a request body (documented in the README).

orjson parses 1024 levels but serialises only about 255, and the proxy re-serialises bodies (translation,
prompt edits) inside envelopes of its own; real requests (tool schemas included) stay far below 128.
"""


def parse_body(body: bytes) -> Any:
    """Parse a request body. Malformed or too deeply nested JSON is the client's error (400)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"the request body is not valid JSON: {exc}") from None
    # Nesting deeper than MAX_DEPTH takes an opening and a closing bracket per level, so a shorter body cannot
    # be that deep. Otherwise the parsed tree is walked: its cost follows the number of values, which in an LLM
    # request (mostly long strings) is far below the number of bytes that counting brackets would scan.
    container = type(doc) is dict or type(doc) is list
    if container and len(body) > 2 * MAX_DEPTH and _too_deep(doc, MAX_DEPTH):
        log.warning("request refused: JSON nested deeper than %d levels", MAX_DEPTH)
        raise RequestError(f"the request body is nested deeper than {MAX_DEPTH} levels of arrays and objects")
    return doc


def _too_deep(value: Any, room: int) -> bool:
    """Whether the container ``value`` holds containers nested more than ``room`` levels deep (itself included)."""
    if room == 0:
        return True
    room -= 1
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if (kind is dict or kind is list) and _too_deep(item, room):
            return True
    return False


def replace_model(body: bytes, current: str, new_model: str) -> bytes:
    """``body`` with the value of its top-level ``"model"`` key (now ``current``) replaced by ``new_model``.

    Only the bytes of that one string change. If no top-level string ``model`` is found, the body is
    returned unchanged.
    """
    span = _top_level_model_span(body, current)
    if span is None:
        return body
    start, end = span
    return body[:start] + orjson.dumps(new_model) + body[end:]


def _top_level_model_span(body: bytes, current: str) -> tuple[int, int] | None:
    quoted = b'"model"'
    first = body.find(quoted)
    if first < 0:
        return None
    if body.find(quoted, first + 1) < 0:
        # Fast path: the only occurrence, followed by the value the parser saw at the top level.
        span = _string_after_colon(body, first + len(quoted))
        if span is not None and orjson.loads(body[span[0] : span[1]]) == current:
            return span
    depth = 0
    for match in _TOKEN.finditer(body):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
        elif depth == 1 and token == quoted:
            span = _string_after_colon(body, match.end())
            if span is not None:
                return span
    return None


def _string_after_colon(body: bytes, pos: int) -> tuple[int, int] | None:
    colon = _COLON.match(body, pos)
    if colon is None:
        return None
    value = _TOKEN.match(body, colon.end())
    if value is None or not value.group().startswith(b'"'):
        return None
    return value.start(), value.end()
