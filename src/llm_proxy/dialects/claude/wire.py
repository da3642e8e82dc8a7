"""What every part of the claude codec shares: the dialect's constants and the small wire helpers.

The constants name the dialect and its family (Bedrock speaks the same body), the Anthropic version,
Bedrock's envelope fields and the thinking-budget rules. The validation helpers read one wire value each
and raise ``Invalid(message, path)`` on a malformed one; the public entry points turn that into a
``RequestError`` (client bodies) or an ``UpstreamError`` (upstream bodies). ``tool_id`` and ``message_id``
make ids that Claude accepts.
"""

from __future__ import annotations

import re
import uuid

from llm_proxy.canonical import JSON
from llm_proxy.dialects.jsonread import Reader

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
SYNTHETIC_ID = "msg_synthesized"
"""The message id of a stream whose upstream never sent one."""

read = Reader(array_word="a list")
"""The codec's JSON reader, in Claude's wording ("must be a list")."""


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
