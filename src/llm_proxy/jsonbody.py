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
_JSON_SPACE = frozenset(b" \t\n\r")
_COLON_BYTE = ord(":")
_QUOTE_BYTE = ord('"')


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


def replace_model(body: bytes, current: str, new_model: str) -> bytes | None:
    """``body`` with the value of its top-level ``"model"`` key (``current``, as parsed) replaced by ``new_model``.

    Only the bytes of that one string change. None when that splice could be wrong, for the caller to re-serialise
    the parsed body instead: a key spelled with escapes (``"mod\\u0065l"`` is ``model`` too, without the bytes
    ``"model"``), or ``model`` given twice at the top level (the parser keeps the last; an upstream might read the
    first). If no top-level string ``model`` is found, the body is returned unchanged.
    """
    # A backslash is found by memchr; bytes.find of a longer needle costs several instructions per byte of the body.
    if b"\\" in body and b"\\u006" in body and _ESCAPED_MODEL_LETTER.search(body) is not None:
        return None
    spans = _top_level_model_spans(body)
    if not spans:
        return body
    if len(spans) > 1:
        return None
    span = spans[0]
    if span is None or orjson.loads(body[span[0] : span[1]]) != current:
        return None
    start, end = span
    return body[:start] + orjson.dumps(new_model) + body[end:]


_ESCAPED_MODEL_LETTER = re.compile(rb"\\u006[45cdf]", re.IGNORECASE)
"""An escaped d, e, l, m or o: with none in the body, a key that means ``model`` is spelled ``"model"``."""


def _top_level_model_spans(body: bytes) -> list[tuple[int, int] | None]:
    """Where the string value of each top-level ``"model"`` key is (None for a key whose value is not a string)."""
    quoted = b'"model"'
    first = body.find(quoted)
    if first < 0:
        return []
    if body.find(quoted, first + 1) < 0:
        # The only occurrence: with no key spelled with escapes, a top-level ``model`` (the caller parsed one) is it.
        return [_string_after_colon(body, first + len(quoted))]
    spans: list[tuple[int, int] | None] = []
    depth = 0
    for match in _TOKEN.finditer(body):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
        elif depth == 1 and token == quoted and _COLON.match(body, match.end()) is not None:
            spans.append(_string_after_colon(body, match.end()))
    return spans


def _string_after_colon(body: bytes, pos: int) -> tuple[int, int] | None:
    """Where the string value after the key ending at ``pos`` is (quotes included); None for another value.

    ``body`` is valid JSON (it was parsed), so only JSON whitespace can stand around the colon, and a value
    string without a backslash ends at the next quote. Read by hand: two regular expression matches cost more
    than the rest of the splice.
    """
    size = len(body)
    while pos < size and body[pos] in _JSON_SPACE:
        pos += 1
    if pos >= size or body[pos] != _COLON_BYTE:
        return None
    pos += 1
    while pos < size and body[pos] in _JSON_SPACE:
        pos += 1
    if pos >= size or body[pos] != _QUOTE_BYTE:
        return None
    end = body.find(b'"', pos + 1)
    if end < 0:
        return None
    if body.find(b"\\", pos + 1, end) >= 0:  # an escape: the closing quote is found by the tokenizer
        value = _TOKEN.match(body, pos)
        return None if value is None else (value.start(), value.end())
    return pos, end + 1
