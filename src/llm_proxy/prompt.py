"""System prompt editing: ordered replacements, an appended text, and the session-progress section.

A route's ``system_replacements`` (old -> new, applied in file order, each to every occurrence),
then its ``system_append``, then the progress section (``progress.py``) are applied to the system
prompt, wherever the dialect keeps it. Two entry points, one rule set:

* ``edit_request`` edits a canonical ``Request`` (translation mode: decode -> edit -> encode);
* each dialect's ``edit_system_raw`` edits a parsed JSON body in place (proxy mode: the body is forwarded
  as it came, with only the system prompt changed), with the helpers at the end of this module.

What counts as the system prompt:

* **Replacements** apply to every system-prompt text: the top-level system field (Claude/Bedrock
  ``system``, Responses ``instructions``) and every ``system``/``developer`` message, including the
  mid-conversation ``{"role": "system"}`` messages Claude Code sends (they are instructions to the model,
  not user content). User, assistant and tool content is never touched.
* **The appended text** (append, then progress, joined by a blank line) goes to the *end of the
  system prompt*, once: the top-level system field when the request has one, else the last message of
  the leading run of system/developer messages (OpenAI Chat, Codex's developer items), else a new
  top-level system prompt is created (Chat: a system message inserted first). It never goes to a
  mid-conversation system message: those move as the conversation grows.
* A Claude system given as blocks gets the appended text as a NEW last text block without
  ``cache_control``. The existing blocks, their ``cache_control`` markers included, stay byte-identical,
  so the cached prefix (tools + system up to the last marker) still matches and the cache is hit.
  Extending the last (cached) block in place would change the cached prefix and miss the cache on every
  request whose progress text differs.
* Text is expected where the system prompt lives; anything else (a number, an object, an image block)
  is left as is with a debug log, never an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from llm_proxy.canonical import Message, Native, Part, Request, Text
from llm_proxy.dialects import get_dialect

log = logging.getLogger("llm_proxy.prompt")

SEPARATOR = "\n\n"
"""Between the existing system text and the appended text, and between append and progress."""

_SYSTEM_ROLES = ("system", "developer")


@dataclass(frozen=True, slots=True)
class SystemEdit:
    """A route's system prompt edits (from ``system_replacements`` and ``system_append``)."""

    replacements: tuple[tuple[str, str], ...] = ()
    """(old, new) pairs in file order; each replaces every occurrence, after the previous pairs."""
    append: str | None = None

    def __post_init__(self) -> None:
        for old, _ in self.replacements:
            if not old:
                raise ValueError("a system replacement needs a non-empty text to replace")

    def replace_text(self, text: str) -> str:
        for old, new in self.replacements:
            text = text.replace(old, new)
        return text

    def tail(self, extra_text: str | None) -> str | None:
        """The text to append at the end of the system prompt, or None."""
        parts = [t for t in (self.append, extra_text) if t]
        return SEPARATOR.join(parts) if parts else None


# ---------------------------------------------------------------------------------------------
# Translation mode: the canonical request
# ---------------------------------------------------------------------------------------------


def edit_request(request: Request, edit: SystemEdit, extra_text: str | None = None) -> Request:
    """``request`` with its system prompt edited (the same object when nothing changes)."""
    system = request.system
    if system is not None and edit.replacements:
        system = tuple(_replace_text_part(edit, part) for part in system)
    messages = tuple(_replace_in_message(edit, m) for m in request.messages) if edit.replacements else request.messages
    string_form = request.native.get("system") != "list"

    tail = edit.tail(extra_text)
    if tail is not None:
        target = _leading_system_end(messages)
        if system is not None:
            system, string_form = _append_to_system(system, string_form, tail)
        elif target is not None:
            messages = (*messages[:target], _append_to_message(messages[target], tail), *messages[target + 1 :])
        else:
            system, string_form = (Text(text=tail),), True

    native = _with_form(request.native, "system", None if string_form else "list")
    if system == request.system and native == request.native and messages == request.messages:
        return request
    return replace(request, system=system, native=native, messages=messages)


def _replace_text_part(edit: SystemEdit, part: Text) -> Text:
    new = edit.replace_text(part.text)
    return part if new == part.text else replace(part, text=new)


def _replace_in_message(edit: SystemEdit, message: Message) -> Message:
    if message.role not in _SYSTEM_ROLES:
        return message
    content: list[Part] = []
    for part in message.content:
        if isinstance(part, Text):
            content.append(_replace_text_part(edit, part))
        else:
            log.debug("system prompt edit: %s part in a %s message left as is", type(part).__name__, message.role)
            content.append(part)
    new = tuple(content)
    return message if new == message.content else replace(message, content=new)


def _leading_system_end(messages: tuple[Message, ...]) -> int | None:
    """Index of the last message of the leading run of system/developer messages, if any."""
    last = None
    for i, message in enumerate(messages):
        if message.role not in _SYSTEM_ROLES:
            break
        last = i
    return last


def _append_to_system(system: tuple[Text, ...], string_form: bool, tail: str) -> tuple[tuple[Text, ...], bool]:
    if not system:
        return (Text(text=tail),), string_form
    if string_form and len(system) == 1:
        only = system[0]
        return (replace(only, text=only.text + SEPARATOR + tail if only.text else tail),), True
    # Blocks: a new last block without cache_control keeps every cached block byte-identical.
    return (*system, Text(text=tail)), False


def _append_to_message(message: Message, tail: str) -> Message:
    content = message.content
    if message.native.get("content") == "string" and len(content) == 1 and isinstance(content[0], Text):
        only = content[0]
        return replace(message, content=(replace(only, text=only.text + SEPARATOR + tail if only.text else tail),))
    return replace(message, content=(*content, Text(text=tail)), native=_with_form(message.native, "content", None))


def _with_form(native: Native, key: str, form: str | None) -> Native:
    """``native`` with the wire form of ``key`` set; None is the usual form, which is not recorded."""
    if native.get(key) == form:
        return native
    changed = {k: v for k, v in native.items() if k != key}
    if form is not None:
        changed[key] = form
    return changed


# ---------------------------------------------------------------------------------------------
# Proxy mode: the parsed body, edited in place by its dialect (``Dialect.edit_system_raw``)
# ---------------------------------------------------------------------------------------------


def edit_raw(dialect: str, body: dict[str, Any], edit: SystemEdit, extra_text: str | None = None) -> bool:
    """Edit the system prompt of a parsed ``dialect`` body in place; whether anything changed."""
    return get_dialect(dialect).edit_system_raw(body, edit, edit.tail(extra_text))


# Helpers for the dialects' raw editors.


def joined(text: str, tail: str) -> str:
    return text + SEPARATOR + tail if text else tail


def is_system_item(item: Any) -> bool:
    # Responses input items may omit "type" for messages; chat/claude messages never have one.
    return isinstance(item, dict) and item.get("role") in _SYSTEM_ROLES and item.get("type", "message") == "message"


def raw_leading_system_end(messages: list[Any]) -> int | None:
    last = None
    for i, message in enumerate(messages):
        if not is_system_item(message):
            break
        last = i
    return last


def replace_in_raw_messages(messages: list[Any], edit: SystemEdit, text_types: frozenset[str]) -> bool:
    if not edit.replacements:
        return False
    changed = False
    for message in messages:
        if not is_system_item(message):
            continue
        content = message.get("content")
        if isinstance(content, str):
            new = edit.replace_text(content)
            changed = changed or new != content
            message["content"] = new
        elif isinstance(content, list):
            changed = replace_in_blocks(content, edit, text_types) or changed
        else:
            log.debug("system prompt edit: non-text %s message content left as is", message.get("role"))
    return changed


def replace_in_blocks(blocks: list[Any], edit: SystemEdit, text_types: frozenset[str]) -> bool:
    if not edit.replacements:
        return False
    changed = False
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if isinstance(kind, str) and kind in text_types and isinstance(block.get("text"), str):
            new = edit.replace_text(block["text"])
            if new != block["text"]:
                block["text"] = new
                changed = True
        else:
            log.debug("system prompt edit: non-text system block left as is")
    return changed


def append_to_raw_content(message: dict[str, Any], tail: str, part_type: str) -> bool:
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = joined(content, tail)
        return True
    if isinstance(content, list):
        content.append({"type": part_type, "text": tail})
        return True
    log.debug("system prompt edit: non-text %s message content, nothing appended", message.get("role"))
    return False
