"""What every part of the claude codec shares: the dialect's constants and the small wire helpers.

The constants name the dialect and its family (Bedrock speaks the same body), the Anthropic version,
Bedrock's envelope fields and the thinking-budget rules. The validation helpers read one wire value each
and raise ``_Invalid(message, path)`` on a malformed one; the public entry points turn that into a
``RequestError`` (client bodies) or an ``UpstreamError`` (upstream bodies). ``tool_id`` and ``message_id``
make ids that Claude accepts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping

import orjson

from llm_proxy.canonical import JSON, Extra

NAME = "claude"
FAMILY = frozenset({"claude", "bedrock"})
"""Dialects that read Claude-style fields, blocks and hosted tools (Bedrock speaks the same body)."""

ANTHROPIC_VERSION = "2023-06-01"
BEDROCK_ENVELOPE = ("anthropic_version", "anthropic_beta")
"""Bedrock's body fields around the Messages body: the bedrock codec re-sends them; Anthropic rejects them."""
MIN_THINKING_BUDGET = 1024
"""Anthropic rejects ``budget_tokens`` below this."""

EFFORT_BUDGETS: dict[str, int | None] = {
    "none": None,
    "minimal": 1024,
    "low": 2048,
    "medium": 4096,
    "high": 8192,
    "xhigh": 16384,
    "max": 32768,
}
"""OpenAI reasoning effort -> Claude thinking ``budget_tokens`` (``None``: no thinking)."""

CUSTOM_TOOL_SCHEMA: dict[str, JSON] = {
    "type": "object",
    "properties": {"input": {"type": "string"}},
    "required": ["input"],
}
"""Input schema standing in for a Responses freeform (``custom``) tool, whose input is raw text."""

DEFAULT_INPUT_SCHEMA: dict[str, JSON] = {"type": "object", "properties": {}}

_TOOL_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SYNTHETIC_ID = "msg_synthesized"


# ---------------------------------------------------------------------------------------------
# Validation helpers: a malformed body raises _Invalid(message, path), which the public entry points
# turn into a RequestError (client bodies) or an UpstreamError (upstream bodies).
# ---------------------------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def _obj(value: JSON, path: str) -> dict[str, JSON]:
    if not isinstance(value, dict):
        raise _Invalid(f"{path} must be an object", path)
    return value


def _list(value: JSON, path: str) -> list[JSON]:
    if not isinstance(value, list):
        raise _Invalid(f"{path} must be a list", path)
    return value


def _str(value: JSON, path: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{path} must be a string", path)
    return value


def _opt_str(value: JSON, path: str) -> str | None:
    return None if value is None else _str(value, path)


def _opt_bool(value: JSON, path: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _Invalid(f"{path} must be a boolean", path)
    return value


def _opt_int(value: JSON, path: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _Invalid(f"{path} must be an integer", path)
    return value


def _opt_num(value: JSON, path: str) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise _Invalid(f"{path} must be a number", path)
    return value


def _name(value: JSON) -> str:
    """A wire discriminator (``type``, ``role``) usable as a lookup key; "" when it is not a string."""
    return value if isinstance(value, str) else ""


def _index(value: JSON) -> int:
    """A stream block index usable as a lookup key; -1 (never a real index) when it is not an integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _count(value: JSON) -> int:
    """A token count from an upstream; anything but an integer counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _rest(obj: Mapping[str, JSON], known: Iterable[str]) -> Extra:
    """The fields of ``obj`` without a canonical home. A known field set to null is kept too,
    because the decoders read null as absent and the encoder would otherwise not write it back."""
    known = frozenset(known)
    return {k: v for k, v in obj.items() if k not in known or v is None}


def _dumps(value: JSON, path: str) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as exc:
        raise _Invalid(f"{path} cannot be represented as JSON: {exc}", path) from None


def _merge_into(target: dict[str, JSON], extra: Mapping[str, JSON]) -> None:
    """Add ``extra`` fields to an encoded object; canonical values win, nested objects merge."""
    for key, value in extra.items():
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            target[key] = dict(target[key])  # never mutate a dict shared with the canonical request
            _merge_into(target[key], value)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def tool_id(value: str) -> str:
    """A tool id Claude accepts (``^[a-zA-Z0-9_-]+$``); used for tool_use and tool_result alike."""
    return _TOOL_ID_UNSAFE.sub("_", value)


def message_id(value: str) -> str:
    """A ``msg_``-prefixed id: kept when it already is one, else derived from it (or random if empty)."""
    if value.startswith("msg_"):
        return value
    if not value:
        return "msg_" + uuid.uuid4().hex[:24]
    return "msg_" + _TOOL_ID_UNSAFE.sub("_", value)
