"""System prompt edits on a parsed generateContent body, in place (proxy mode).

The system prompt is ``systemInstruction``: a content whose text parts are edited; appended text is a new
last part. The rules (what is replaced, where appended text goes) are in ``llm_proxy.prompt``.
"""

from __future__ import annotations

import logging
from typing import Any

from llm_proxy.prompt import SystemEdit, joined

log = logging.getLogger("llm_proxy.prompt")


def edit_system_raw(body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
    system = body.get("systemInstruction")
    if system is None:
        if tail is None:
            return False
        body["systemInstruction"] = {"parts": [{"text": tail}]}
        return True
    if isinstance(system, str):
        new = edit.replace_text(system)
        if tail is not None:
            new = joined(new, tail)
        body["systemInstruction"] = new
        return new != system
    parts = system.get("parts") if isinstance(system, dict) else None
    if not isinstance(parts, list):
        log.debug("system prompt edit: a systemInstruction without parts left as is")
        return False
    changed = False
    for part in parts:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            new = edit.replace_text(part["text"])
            if new != part["text"]:
                part["text"] = new
                changed = True
    if tail is not None:
        parts.append({"text": tail})
        changed = True
    return changed
