"""System prompt editing: ordered replacements, an appended text, and the session-progress section.

A route's ``system_replacements`` (old -> new, applied in file order, each to every occurrence),
then its ``system_append``, then the progress section (``progress.py``) are applied to the system
prompt, wherever the dialect keeps it. Two entry points, one rule set:

* ``edit_request`` edits a canonical ``Request`` (translation mode: decode -> edit -> encode);
* ``edit_raw`` edits a parsed JSON body in place (proxy mode: the body is forwarded as it came, with
  only the system prompt changed).

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

from llm_proxy.canonical import Message, Part, Request, Text

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
    string_form = request.system_string_form

    tail = edit.tail(extra_text)
    if tail is not None:
        target = _leading_system_end(messages)
        if system is not None:
            system, string_form = _append_to_system(system, string_form, tail)
        elif target is not None:
            messages = (*messages[:target], _append_to_message(messages[target], tail), *messages[target + 1 :])
        else:
            system, string_form = (Text(text=tail),), True

    if system == request.system and string_form == request.system_string_form and messages == request.messages:
        return request
    return replace(request, system=system, system_string_form=string_form, messages=messages)


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
    if message.string_form and len(content) == 1 and isinstance(content[0], Text):
        only = content[0]
        return replace(message, content=(replace(only, text=only.text + SEPARATOR + tail if only.text else tail),))
    return replace(message, content=(*content, Text(text=tail)), string_form=False)


# ---------------------------------------------------------------------------------------------
# Proxy mode: the parsed JSON body, edited in place
# ---------------------------------------------------------------------------------------------

RAW_KINDS = ("openai-chat", "openai-responses", "claude", "bedrock")


def edit_raw(kind: str, body: dict[str, Any], edit: SystemEdit, extra_text: str | None = None) -> bool:
    """Edit the system prompt of a parsed request body of dialect ``kind`` in place.

    Returns whether anything changed (the caller re-serializes only then). Unknown kinds and bodies of
    an unexpected shape are left alone.
    """
    if kind == "openai-chat":
        return _edit_chat(body, edit, edit.tail(extra_text))
    if kind == "openai-responses":
        return _edit_responses(body, edit, edit.tail(extra_text))
    if kind in ("claude", "bedrock"):
        return _edit_claude(body, edit, edit.tail(extra_text))
    log.debug("system prompt edit: unknown dialect %r, body left as is", kind)
    return False


def _edit_chat(body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
    messages = body.get("messages")
    if messages is None:
        return _create_chat_system(body, tail)
    if not isinstance(messages, list):
        log.debug("system prompt edit: chat messages is not a list, body left as is")
        return False
    changed = _replace_in_raw_messages(messages, edit, _CHAT_TEXT_TYPES)
    if tail is None:
        return changed
    target = _raw_leading_system_end(messages)
    if target is None:
        messages.insert(0, {"role": "system", "content": tail})
        return True
    return _append_to_raw_content(messages[target], tail, "text") or changed


def _create_chat_system(body: dict[str, Any], tail: str | None) -> bool:
    if tail is None:
        return False
    body["messages"] = [{"role": "system", "content": tail}]
    return True


def _edit_responses(body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
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
        changed = _replace_in_raw_messages(items, edit, _RESPONSES_TEXT_TYPES) or changed
    if tail is None:
        return changed
    if isinstance(instructions, str):
        body["instructions"] = _joined(body["instructions"], tail)
        return True
    if isinstance(items, list) and (target := _raw_leading_system_end(items)) is not None:
        return _append_to_raw_content(items[target], tail, "input_text") or changed
    body["instructions"] = tail
    return True


def _edit_claude(body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
    changed = False
    messages = body.get("messages")
    if isinstance(messages, list):
        # Claude Code's mid-conversation {"role": "system"} messages.
        changed = _replace_in_raw_messages(messages, edit, _CLAUDE_TEXT_TYPES)
    system = body.get("system")
    if system is None:
        if tail is None:
            return changed
        body["system"] = tail
        return True
    if isinstance(system, str):
        new = edit.replace_text(system)
        if tail is not None:
            new = _joined(new, tail)
        body["system"] = new
        return new != system or changed
    if not isinstance(system, list):
        log.debug("system prompt edit: non-text claude system (%s) left as is", type(system).__name__)
        return changed
    changed = _replace_in_blocks(system, edit, _CLAUDE_TEXT_TYPES) or changed
    if tail is not None:
        # A new last block without cache_control: the cached blocks before it stay byte-identical.
        system.append({"type": "text", "text": tail})
        changed = True
    return changed


_CHAT_TEXT_TYPES = frozenset({"text"})
_RESPONSES_TEXT_TYPES = frozenset({"input_text", "text"})
_CLAUDE_TEXT_TYPES = frozenset({"text"})


def _joined(text: str, tail: str) -> str:
    return text + SEPARATOR + tail if text else tail


def _is_system_item(item: Any) -> bool:
    # Responses input items may omit "type" for messages; chat/claude messages never have one.
    return isinstance(item, dict) and item.get("role") in _SYSTEM_ROLES and item.get("type", "message") == "message"


def _raw_leading_system_end(messages: list[Any]) -> int | None:
    last = None
    for i, message in enumerate(messages):
        if not _is_system_item(message):
            break
        last = i
    return last


def _replace_in_raw_messages(messages: list[Any], edit: SystemEdit, text_types: frozenset[str]) -> bool:
    if not edit.replacements:
        return False
    changed = False
    for message in messages:
        if not _is_system_item(message):
            continue
        content = message.get("content")
        if isinstance(content, str):
            new = edit.replace_text(content)
            changed = changed or new != content
            message["content"] = new
        elif isinstance(content, list):
            changed = _replace_in_blocks(content, edit, text_types) or changed
        else:
            log.debug("system prompt edit: non-text %s message content left as is", message.get("role"))
    return changed


def _replace_in_blocks(blocks: list[Any], edit: SystemEdit, text_types: frozenset[str]) -> bool:
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


def _append_to_raw_content(message: dict[str, Any], tail: str, part_type: str) -> bool:
    content = message.get("content")
    if isinstance(content, str):
        message["content"] = _joined(content, tail)
        return True
    if isinstance(content, list):
        content.append({"type": part_type, "text": tail})
        return True
    log.debug("system prompt edit: non-text %s message content, nothing appended", message.get("role"))
    return False
