"""Thinking and reasoning in Chat: ``reasoning_content`` for display, ``thinking_blocks`` to carry them.

Chat has no standard field for a model's thinking. Claude thinking travels in LiteLLM's
``thinking_blocks`` (with its signature); OpenAI reasoning travels in a ``thinking_blocks`` entry whose
signature is a carry envelope (``llm_proxy.framing.carry``), so a Chat client echoes both back unchanged.
"""

from __future__ import annotations

from llm_proxy.canonical import JSON, Extra, Reasoning
from llm_proxy.dialects.jsonread import Invalid, put, rest
from llm_proxy.dialects.openai_chat.wire import REASONING_CARRY, read
from llm_proxy.framing import carry


def decode_thinking_block(raw: JSON, param: str) -> Reasoning:
    obj = read.obj(raw, param)
    kind = obj.get("type")
    if kind == "redacted_thinking":
        data = read.string(obj.get("data"), f"{param}.data")
        return Reasoning(provider="anthropic", redacted=data, extra=rest(obj, ("type", "data")))
    if kind != "thinking":
        raise read.fail(f"{param}.type", "must be thinking or redacted_thinking")
    text = read.string(obj.get("thinking", ""), f"{param}.thinking")
    signature = read.opt_string(obj.get("signature"), f"{param}.signature")
    if carry.is_carry(signature) and carry.carry_kind(signature or "") == REASONING_CARRY:
        assert signature is not None
        return _reasoning_from_carry(text, signature, f"{param}.signature")
    extra = rest(obj, ("type", "thinking", "signature"))
    return Reasoning(provider="anthropic", text=text, signature=signature, extra=extra)


def _reasoning_from_carry(text: str, signature: str, param: str) -> Reasoning:
    fields = carry.decode_carry(signature, REASONING_CARRY)
    item_id, encrypted = fields.get("id"), fields.get("enc")
    # The envelope's MAC key is public, so its fields are client input like any other.
    if not (item_id is None or isinstance(item_id, str)) or not (encrypted is None or isinstance(encrypted, str)):
        raise Invalid("a reasoning item carried by the proxy is not readable", param)
    return Reasoning(provider="openai", id=item_id, summary=(text,) if text else (), signature=encrypted)


def needs_thinking_blocks(thinking: list[Reasoning], extra: Extra) -> bool:
    """False when the only thinking is the unsigned text that came from ``reasoning_content``."""
    if len(thinking) != 1:
        return True
    only = thinking[0]
    return not (only.is_thinking and only.signature is None and extra.get("reasoning_content") == only.text)


def thinking_block(part: Reasoning) -> JSON:
    if part.redacted is not None:
        return {**part.extra, "type": "redacted_thinking", "data": part.redacted}
    if part.provider == "openai":
        return {"type": "thinking", "thinking": _reasoning_text(part), "signature": _reasoning_signature(part)}
    block: dict[str, JSON] = {**part.extra, "type": "thinking", "thinking": part.text}
    put(block, "signature", part.signature)
    return block


def _reasoning_text(part: Reasoning) -> str:
    return "\n\n".join(part.summary)


def _reasoning_signature(part: Reasoning) -> str:
    return carry_signature(part.id, part.signature)


def carry_signature(item_id: str | None, encrypted: str | None) -> str:
    return carry.encode_carry(REASONING_CARRY, {"id": item_id, "enc": encrypted})


def thinking_fields(thinking: list[Reasoning]) -> dict[str, JSON]:
    """``reasoning_content`` for display, ``thinking_blocks`` when something must come back exactly."""
    if not thinking:
        return {}
    texts = [p.text if p.is_thinking else _reasoning_text(p) for p in thinking if not p.is_redacted]
    fields: dict[str, JSON] = {"reasoning_content": "".join(texts)}
    if any(not p.is_thinking or p.signature is not None for p in thinking):
        fields["thinking_blocks"] = [thinking_block(p) for p in thinking]
    return fields
