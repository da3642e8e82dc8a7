from __future__ import annotations

from typing import get_args

import pytest

from llm_proxy.canonical import (
    PART_TYPES,
    Image,
    Message,
    Opaque,
    Part,
    Reasoning,
    Refusal,
    Text,
    ToolCall,
    ToolResult,
)
from llm_proxy.session.snapshot import dump_messages, load_messages


def test_every_part_type_round_trips_exactly() -> None:
    messages = (
        Message(
            role="user",
            content=(Text(text="hi", cache_control={"type": "ephemeral"}, extra={"citations": [1]}),),
            native={"content": "string"},
        ),
        Message(
            role="user", content=(Image(media_type="image/png", data="AAA", detail="low"), Image(url="https://x/y.png"))
        ),
        Message(
            role="assistant",
            content=(
                Reasoning(provider="anthropic", text="hmm", signature="sig"),
                Reasoning(provider="anthropic", redacted="blob"),
                Reasoning(provider="openai", id="rs_1", summary=("a", "b"), content=("raw",), signature="enc"),
                Refusal(text="no"),
                ToolCall(id="c1", name="f", arguments='{"a": [1, 2]}', kind="custom", item_id="fc_1"),
                Opaque(dialects=frozenset({"claude", "bedrock"}), raw={"type": "document", "list": [1, {"a": 2}]}),
            ),
            extra={"id": "msg_1", "nested": [1, [2]]},
        ),
        Message(
            role="tool",
            content=(
                ToolResult(
                    call_id="c1", content=(Text(text="out"), Image(url="u")), is_error=True, native={"content": "list"}
                ),
            ),
        ),
    )
    assert load_messages(dump_messages(messages)) == messages


def test_every_part_class_has_its_own_kind() -> None:
    # The registry is derived from the Part union: a new part type is stored and read with no table to update.
    assert set(PART_TYPES.values()) == set(get_args(Part))
    assert sorted(PART_TYPES) == ["image", "opaque", "reasoning", "refusal", "text", "tool_call", "tool_result"]
    assert all(cls.part_kind == kind for kind, cls in PART_TYPES.items())


def test_the_stored_form_is_tagged_by_part_kind_and_leaves_defaults_out() -> None:
    stored = dump_messages((Message(role="user", content=(Text(text="hi"), Refusal(text="no"))),))
    assert stored == (
        b'{"v":2,"messages":[{"role":"user","content":[{"part_kind":"text","text":"hi"},{"part_kind":"refusal","text":"no"}]}]}'
    )


def test_unknown_kinds_and_fields_are_refused() -> None:
    # Only the canonical part kinds are rebuilt from the store: never an arbitrary class named in the data.
    with pytest.raises(ValueError, match="unknown part kind 'Request'"):
        load_messages(b'{"v":2,"messages":[{"role":"user","content":[{"part_kind":"Request","model":"x"}]}]}')
    with pytest.raises(ValueError, match="unknown part kind None"):
        load_messages(b'{"v":2,"messages":[{"role":"user","content":[{"text":"x"}]}]}')
    with pytest.raises(ValueError, match="unknown part kind 'tool_call'"):  # a kind where it cannot be
        load_messages(
            b'{"v":2,"messages":[{"role":"tool","content":[{"part_kind":"tool_result","call_id":"c",'
            b'"content":[{"part_kind":"tool_call","id":"c","name":"f","arguments":"{}"}]}]}]}'
        )
    with pytest.raises(ValueError, match="unknown field 'model' of Text"):
        load_messages(b'{"v":2,"messages":[{"role":"user","content":[{"part_kind":"text","text":"x","model":"m"}]}]}')
    with pytest.raises(TypeError):
        load_messages(b'{"v":2,"messages":[{"content":[]}]}')


# Written by the proxy before parts were tagged by kind (format 1: a bare list, class names under "_t").
OLD_RECORD = (
    b'[{"_t":"Message","role":"user","content":[{"_t":"Text","text":"hi","cache_control":null,"extra":{}}],'
    b'"string_form":true,"null_content":false,"name":null,"extra":{}}]'
)


def test_a_record_of_the_old_format_is_refused_as_unreadable() -> None:
    with pytest.raises(ValueError, match="written in another format"):
        load_messages(OLD_RECORD)
    with pytest.raises(ValueError, match="written in another format"):
        load_messages(b'{"v":1,"messages":[]}')
