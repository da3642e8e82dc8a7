from __future__ import annotations

import pytest

from llm_proxy.canonical import (
    Image,
    Message,
    Opaque,
    Reasoning,
    RedactedThinking,
    Refusal,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
)
from llm_proxy.session.snapshot import dump_messages, load_messages


def test_every_part_type_round_trips_exactly() -> None:
    messages = (
        Message(role="user", content=(Text(text="hi", cache_control={"type": "ephemeral"}, extra={"citations": [1]}),)),
        Message(
            role="user", content=(Image(media_type="image/png", data="AAA", detail="low"), Image(url="https://x/y.png"))
        ),
        Message(
            role="assistant",
            content=(
                Thinking(thinking="hmm", signature="sig"),
                RedactedThinking(data="blob"),
                Reasoning(id="rs_1", summary=("a", "b"), content=("raw",), encrypted_content="enc"),
                Refusal(text="no"),
                ToolCall(id="c1", name="f", arguments='{"a": [1, 2]}', kind="custom", item_id="fc_1"),
                Opaque(dialects=frozenset({"claude", "bedrock"}), raw={"type": "document", "list": [1, {"a": 2}]}),
            ),
            extra={"id": "msg_1", "nested": [1, [2]]},
        ),
        Message(
            role="tool",
            content=(
                ToolResult(call_id="c1", content=(Text(text="out"), Image(url="u")), is_error=True, string_form=False),
            ),
        ),
    )
    assert load_messages(dump_messages(messages)) == messages


def test_unknown_type_tag_is_refused() -> None:
    # Only the listed part types are rebuilt from the store: never an arbitrary class named in the data.
    with pytest.raises(ValueError, match="a stored conversation holds an unknown part type 'Request'"):
        load_messages(b'[{"_t": "Request", "model": "x"}]')
    with pytest.raises(ValueError, match="unknown part type None"):
        load_messages(b'[{"role": "user"}]')
