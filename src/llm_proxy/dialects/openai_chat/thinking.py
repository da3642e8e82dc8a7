"""Thinking and reasoning in Chat: ``reasoning_content`` for display, ``thinking_blocks`` to carry them.

Chat has no standard field for a model's thinking. Claude thinking travels in LiteLLM's
``thinking_blocks`` (with its signature); OpenAI reasoning travels in a ``thinking_blocks`` entry whose
signature is a carry envelope (``llm_proxy.framing.carry``), so a Chat client echoes both back unchanged.
"""

from __future__ import annotations

from llm_proxy.canonical import JSON, Extra, Reasoning, RedactedThinking, Thinking
from llm_proxy.dialects.jsonread import Invalid, put, rest
from llm_proxy.dialects.openai_chat.wire import REASONING_CARRY, read
from llm_proxy.framing import carry


def decode_thinking_block(raw: JSON, param: str) -> Thinking | RedactedThinking | Reasoning:
    obj = read.obj(raw, param)
    kind = obj.get("type")
    if kind == "redacted_thinking":
        return RedactedThinking(data=read.string(obj.get("data"), f"{param}.data"), extra=rest(obj, ("type", "data")))
    if kind != "thinking":
        raise read.fail(f"{param}.type", "must be thinking or redacted_thinking")
    text = read.string(obj.get("thinking", ""), f"{param}.thinking")
    signature = read.opt_string(obj.get("signature"), f"{param}.signature")
    if carry.is_carry(signature):
        assert signature is not None
        return _reasoning_from_carry(text, signature, f"{param}.signature")
    return Thinking(thinking=text, signature=signature, extra=rest(obj, ("type", "thinking", "signature")))


def _reasoning_from_carry(text: str, signature: str, param: str) -> Reasoning:
    fields = carry.decode_carry(signature, REASONING_CARRY)
    item_id, encrypted = fields.get("id"), fields.get("enc")
    # The envelope's MAC key is public, so its fields are client input like any other.
    if not (item_id is None or isinstance(item_id, str)) or not (encrypted is None or isinstance(encrypted, str)):
        raise Invalid("a reasoning item carried by the proxy is not readable", param)
    return Reasoning(id=item_id, summary=(text,) if text else (), encrypted_content=encrypted)


def needs_thinking_blocks(thinking: list[Thinking | RedactedThinking | Reasoning], extra: Extra) -> bool:
    """False when the only thinking is the unsigned text that came from ``reasoning_content``."""
    if len(thinking) != 1:
        return True
    only = thinking[0]
    return not (
        isinstance(only, Thinking) and only.signature is None and extra.get("reasoning_content") == only.thinking
    )


def thinking_block(part: Thinking | RedactedThinking | Reasoning) -> JSON:
    if isinstance(part, RedactedThinking):
        return {**part.extra, "type": "redacted_thinking", "data": part.data}
    if isinstance(part, Reasoning):
        return {"type": "thinking", "thinking": _reasoning_text(part), "signature": _reasoning_signature(part)}
    block: dict[str, JSON] = {**part.extra, "type": "thinking", "thinking": part.thinking}
    put(block, "signature", part.signature)
    return block


def _reasoning_text(part: Reasoning) -> str:
    return "\n\n".join(part.summary)


def _reasoning_signature(part: Reasoning) -> str:
    return carry_signature(part.id, part.encrypted_content)


def carry_signature(item_id: str | None, encrypted: str | None) -> str:
    return carry.encode_carry(REASONING_CARRY, {"id": item_id, "enc": encrypted})


def thinking_fields(thinking: list[Thinking | RedactedThinking | Reasoning]) -> dict[str, JSON]:
    """``reasoning_content`` for display, ``thinking_blocks`` when something must come back exactly."""
    if not thinking:
        return {}
    texts = [
        p.thinking if isinstance(p, Thinking) else _reasoning_text(p)
        for p in thinking
        if not isinstance(p, RedactedThinking)
    ]
    fields: dict[str, JSON] = {"reasoning_content": "".join(texts)}
    if any(not isinstance(p, Thinking) or p.signature is not None for p in thinking):
        fields["thinking_blocks"] = [thinking_block(p) for p in thinking]
    return fields
