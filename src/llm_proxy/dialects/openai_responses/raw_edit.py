"""System prompt edits on a parsed OpenAI Responses body, in place (proxy mode).

The rules (what counts as the system prompt, where appended text goes) are in ``llm_proxy.prompt``.
"""

from __future__ import annotations

import logging
from typing import Any

from llm_proxy.prompt import (
    SystemEdit,
    append_to_raw_content,
    joined,
    raw_leading_system_end,
    replace_in_raw_messages,
)

log = logging.getLogger("llm_proxy.prompt")

TEXT_TYPES = frozenset({"input_text", "text"})


def edit_system_raw(body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
    changed = False
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        new = edit.replace_text(instructions)
        changed = new != instructions
        body["instructions"] = new
    elif instructions is not None:
        log.debug("system prompt edit: non-text instructions left as is")
        return False
    items = body.get("input")
    if isinstance(items, list):
        changed = replace_in_raw_messages(items, edit, TEXT_TYPES) or changed
    if tail is None:
        return changed
    if isinstance(instructions, str):
        body["instructions"] = joined(body["instructions"], tail)
        return True
    if isinstance(items, list) and (target := raw_leading_system_end(items)) is not None:
        return append_to_raw_content(items[target], tail, "input_text") or changed
    body["instructions"] = tail
    return True
