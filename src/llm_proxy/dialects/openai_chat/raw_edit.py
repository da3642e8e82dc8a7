"""System prompt edits on a parsed OpenAI Chat Completions body, in place (proxy mode).

The rules (what counts as the system prompt, where appended text goes) are in ``llm_proxy.prompt``.
"""

from __future__ import annotations

import logging
from typing import Any

from llm_proxy.prompt import (
    SystemEdit,
    append_to_raw_content,
    raw_leading_system_end,
    replace_in_raw_messages,
)

log = logging.getLogger("llm_proxy.prompt")

TEXT_TYPES = frozenset({"text"})


def edit_system_raw(body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
    messages = body.get("messages")
    if messages is None:
        return _create_chat_system(body, tail)
    if not isinstance(messages, list):
        log.debug("system prompt edit: chat messages is not a list, body left as is")
        return False
    changed = replace_in_raw_messages(messages, edit, TEXT_TYPES)
    if tail is None:
        return changed
    target = raw_leading_system_end(messages)
    if target is None:
        messages.insert(0, {"role": "system", "content": tail})
        return True
    return append_to_raw_content(messages[target], tail, "text") or changed


def _create_chat_system(body: dict[str, Any], tail: str | None) -> bool:
    if tail is None:
        return False
    body["messages"] = [{"role": "system", "content": tail}]
    return True
