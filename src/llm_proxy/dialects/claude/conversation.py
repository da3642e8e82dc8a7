"""The conversation toward Claude: canonical messages as the ``system`` prompt and the ``messages`` turns.

Claude has a top-level system prompt and only user/assistant turns, so system and developer messages of
other origins are hoisted into ``system``, OpenAI ``tool`` messages merge into one user turn, and a user
turn's tool_result blocks come before anything else in it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from llm_proxy.canonical import JSON, Message, Part, Request, Text
from llm_proxy.dialects.base import drop, log
from llm_proxy.dialects.claude.blocks import encode_parts, encode_text
from llm_proxy.dialects.claude.wire import NAME
from llm_proxy.dialects.jsonread import merge_extra


@dataclass(slots=True)
class _SystemBuilder:
    """Collects the top-level system prompt from ``Request.system`` and hoisted system messages."""

    same: bool
    parts: list[tuple[Text, bool]] = field(default_factory=list)

    def add(self, parts: Iterable[Part], string_form: bool) -> None:
        for part in parts:
            if isinstance(part, Text):
                self.parts.append((part, string_form))
            else:
                drop(NAME, "non-text content in a system message")

    def build(self) -> JSON:
        kept = [(p, s) for p, s in self.parts if p.text]  # Claude rejects empty system text blocks
        if len(kept) < len(self.parts):
            log.debug("dropped %d empty system text block(s) toward %s", len(self.parts) - len(kept), NAME)
        if not kept:
            return None
        (first, string_form), *others = kept
        if not others and string_form and first.cache_control is None and not (self.same and first.extra):
            return first.text
        return [encode_text(p, self.same) for p, _ in kept]


def _plain_text(block: dict[str, JSON]) -> bool:
    return set(block) == {"type", "text"} and block["type"] == "text"


def _results_first(blocks: list[dict[str, JSON]]) -> list[dict[str, JSON]]:
    """Claude requires a user turn's tool_result blocks to come before anything else in it."""
    results = [b for b in blocks if b.get("type") == "tool_result"]
    return results + [b for b in blocks if b.get("type") != "tool_result"]


def _encode_message(message: Message, same: bool) -> dict[str, JSON] | None:
    role = "system" if message.role in ("system", "developer") else message.role
    blocks = encode_parts(message.content, same)
    if not blocks:
        log.debug("dropped a %s message with no content left toward %s", role, NAME)
        return None
    if role == "user":
        blocks = _results_first(blocks)
    content: JSON = blocks
    if message.native.get("content") == "string" and len(blocks) == 1 and _plain_text(blocks[0]):
        content = blocks[0]["text"]
    turn: dict[str, JSON] = {"role": role, "content": content}
    if same:
        merge_extra(turn, message.extra, nested=True)
    elif message.name is not None:
        drop(NAME, "message name")
    return turn


def encode_conversation(request: Request, same: bool) -> tuple[JSON, list[dict[str, JSON]]]:
    system = _SystemBuilder(same)
    system.add(request.system or (), request.native.get("system") != "list")
    turns: list[dict[str, JSON]] = []
    results: list[dict[str, JSON]] | None = None  # content of a user turn made from "tool" messages, still open
    for message in request.messages:
        if message.role in ("system", "developer") and not same:
            system.add(message.content, message.native.get("content") == "string")  # no system turns in Claude
            continue
        if message.role == "tool":
            blocks = encode_parts(message.content, same)
            if results is None:
                results = []
                turns.append({"role": "user", "content": results})
            results.extend(blocks)
            continue
        if message.role == "user" and results is not None:
            # the user message right after tool results joins their turn, after them
            results.extend(encode_parts(message.content, same))
            results[:] = _results_first(results)
            results = None
            continue
        results = None
        turn = _encode_message(message, same)
        if turn is not None:
            turns.append(turn)
    return system.build(), [t for t in turns if t["content"]]
