"""System prompt edits on a parsed Converse body, in place (proxy mode).

The system prompt is the top-level ``system`` list of one-key blocks: replacements apply to its ``text``
blocks, appended text becomes a new last ``text`` block (cache points before it keep their prefix intact).
"""

from __future__ import annotations

import logging
from typing import Any

from llm_proxy.prompt import SystemEdit

log = logging.getLogger("llm_proxy.prompt")


def edit_system_raw(body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
    system = body.get("system")
    if system is None:
        if tail is None:
            return False
        body["system"] = [{"text": tail}]
        return True
    if not isinstance(system, list):
        log.debug("system prompt edit: a converse system that is not a list (%s) left as is", type(system).__name__)
        return False
    changed = False
    if edit.replacements:
        for block in system:
            text = block.get("text") if isinstance(block, dict) else None
            if isinstance(text, str):
                new = edit.replace_text(text)
                changed = changed or new != text
                block["text"] = new
    if tail is not None:
        system.append({"text": tail})
        changed = True
    return changed
