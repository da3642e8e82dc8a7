"""System prompt edits on a parsed Anthropic Messages (and Bedrock) body, in place (proxy mode).

The rules (what counts as the system prompt, where appended text goes) are in ``llm_proxy.prompt``.
"""

from __future__ import annotations

import logging
from typing import Any

from llm_proxy.prompt import (
    SystemEdit,
    joined,
    replace_in_blocks,
    replace_in_raw_messages,
)

log = logging.getLogger("llm_proxy.prompt")

TEXT_TYPES = frozenset({"text"})


def edit_system_raw(body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
    changed = False
    messages = body.get("messages")
    if isinstance(messages, list):
        # Claude Code's mid-conversation {"role": "system"} messages.
        changed = replace_in_raw_messages(messages, edit, TEXT_TYPES)
    system = body.get("system")
    if system is None:
        if tail is None:
            return changed
        body["system"] = tail
        return True
    if isinstance(system, str):
        new = edit.replace_text(system)
        if tail is not None:
            new = joined(new, tail)
        body["system"] = new
        return new != system or changed
    if not isinstance(system, list):
        log.debug("system prompt edit: non-text claude system (%s) left as is", type(system).__name__)
        return changed
    changed = replace_in_blocks(system, edit, TEXT_TYPES) or changed
    if tail is not None:
        # A new last block without cache_control: the cached blocks before it stay byte-identical.
        system.append({"type": "text", "text": tail})
        changed = True
    return changed
