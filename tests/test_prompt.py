"""System prompt edits: exact results per dialect in proxy mode (edit_raw) and on canonical requests."""

from __future__ import annotations

import copy
import logging
from typing import Any

import orjson
import pytest

from llm_proxy.canonical import Image, Message, Request, Text, ToolResult
from llm_proxy.prompt import SystemEdit, edit_raw, edit_request
from tests.fixtures import load_request

EDIT = SystemEdit(replacements=(("Claude", "Model"), ("Model agent", "assistant")), append="Be brief.")
PROGRESS = "## Session progress (added by llm-proxy)\nRequests so far: 1."


def test_replacements_apply_in_order_to_every_occurrence() -> None:
    assert SystemEdit(replacements=(("a", "b"), ("b", "c"))).replace_text("ab a") == "cc c"
    assert SystemEdit(replacements=(("b", "c"), ("a", "b"))).replace_text("ab a") == "bc b"


def test_empty_replacement_key_is_rejected() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        SystemEdit(replacements=(("", "x"),))


def test_tail_joins_append_and_progress() -> None:
    assert EDIT.tail(PROGRESS) == "Be brief.\n\n" + PROGRESS
    assert EDIT.tail(None) == "Be brief."
    assert SystemEdit().tail(PROGRESS) == PROGRESS
    assert SystemEdit().tail(None) is None


# ---------------------------------------------------------------------------------------------
# Proxy mode: openai-chat
# ---------------------------------------------------------------------------------------------


def chat_body() -> dict[str, Any]:
    return {
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "You are Claude agent."},
            {"role": "developer", "content": [{"type": "text", "text": "Claude rules"}, {"type": "image_url"}]},
            {"role": "user", "content": "Hi Claude"},
            {"role": "assistant", "content": "Claude here"},
            {"role": "system", "content": "Claude reminder"},
            {"role": "tool", "tool_call_id": "c1", "content": "Claude output"},
        ],
        "temperature": 0.5,
        "stream": True,
    }


def test_chat_edits_system_and_developer_messages() -> None:
    body = chat_body()
    assert edit_raw("openai-chat", body, EDIT, PROGRESS) is True
    expected = chat_body()
    expected["messages"][0]["content"] = "You are assistant."
    expected["messages"][1]["content"] = [
        {"type": "text", "text": "Model rules"},
        {"type": "image_url"},
        {"type": "text", "text": "Be brief.\n\n" + PROGRESS},
    ]
    expected["messages"][4]["content"] = "Model reminder"  # replaced, nothing appended
    assert body == expected


def test_chat_append_to_string_system() -> None:
    body = {"model": "m", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "u"}]}
    assert edit_raw("openai-chat", body, SystemEdit(append="A"), None) is True
    assert body == {
        "model": "m",
        "messages": [{"role": "system", "content": "S\n\nA"}, {"role": "user", "content": "u"}],
    }


def test_chat_without_system_gets_one_first() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "u"}, {"role": "system", "content": "late"}]}
    assert edit_raw("openai-chat", body, SystemEdit(append="A"), None) is True
    assert body == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "A"},
            {"role": "user", "content": "u"},
            {"role": "system", "content": "late"},
        ],
    }


def test_nothing_to_do_reports_no_change() -> None:
    body = chat_body()
    assert edit_raw("openai-chat", body, SystemEdit(replacements=(("absent", "x"),)), None) is False
    assert body == chat_body()
    assert edit_raw("openai-chat", body, SystemEdit(), None) is False


# ---------------------------------------------------------------------------------------------
# Proxy mode: openai-responses
# ---------------------------------------------------------------------------------------------


def test_responses_instructions() -> None:
    body: dict[str, Any] = {
        "model": "m",
        "instructions": "You are Claude.",
        "input": [
            {"role": "developer", "content": "Claude dev"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Claude?"}]},
            {"type": "function_call_output", "call_id": "c", "output": "Claude"},
        ],
    }
    original = copy.deepcopy(body)
    assert edit_raw("openai-responses", body, EDIT, None) is True
    original["instructions"] = "You are Model.\n\nBe brief."
    original["input"][0]["content"] = "Model dev"  # replaced; the append went to instructions
    assert body == original


def test_responses_string_input_without_instructions() -> None:
    body = {"model": "m", "input": "hello"}
    assert edit_raw("openai-responses", body, SystemEdit(append="A"), PROGRESS) is True
    assert body == {"model": "m", "input": "hello", "instructions": "A\n\n" + PROGRESS}


def test_responses_codex_fixture_appends_to_the_last_leading_developer_item() -> None:
    body = load_request("codex_function_call_output_turn")["body"]
    original = copy.deepcopy(body)
    edit = SystemEdit(replacements=(("lorem", "LOREM"),), append="Be brief.")
    assert edit_raw("openai-responses", body, edit, PROGRESS) is True

    developer = [i for i, item in enumerate(original["input"]) if item.get("role") == "developer"]
    assert developer == [0, 1]
    for i in developer:
        for part, before in zip(body["input"][i]["content"], original["input"][i]["content"], strict=False):
            assert part == {"type": "input_text", "text": before["text"].replace("lorem", "LOREM")}
    assert len(body["input"][0]["content"]) == len(original["input"][0]["content"])
    assert body["input"][1]["content"][-1] == {"type": "input_text", "text": "Be brief.\n\n" + PROGRESS}
    assert len(body["input"][1]["content"]) == len(original["input"][1]["content"]) + 1
    assert "instructions" not in body
    # Everything else, user text with "lorem" included, is byte-identical.
    rest = {k: v for k, v in body.items() if k != "input"}
    assert orjson.dumps(rest) == orjson.dumps({k: v for k, v in original.items() if k != "input"})
    assert orjson.dumps(body["input"][2:]) == orjson.dumps(original["input"][2:])
    assert "lorem" in orjson.dumps(original["input"][2]).decode()


# ---------------------------------------------------------------------------------------------
# Proxy mode: claude and bedrock
# ---------------------------------------------------------------------------------------------


def test_claude_code_fixture_keeps_cached_blocks_byte_identical() -> None:
    body = load_request("claude_code_tool_result_turn")["body"]
    original = copy.deepcopy(body)
    edit = SystemEdit(replacements=(("Claude agent", "Model agent"),), append="Be brief.")
    assert edit_raw("claude", body, edit, PROGRESS) is True

    system, before = body["system"], original["system"]
    assert system[1] == {
        "type": "text",
        "text": "You are a Model agent, built on Anthropic's Claude Agent SDK.",
        "cache_control": {"type": "ephemeral"},
    }
    assert system[-1] == {"type": "text", "text": "Be brief.\n\n" + PROGRESS}  # no cache_control
    assert len(system) == len(before) + 1
    assert orjson.dumps(system[2:-1]) == orjson.dumps(before[2:])
    assert system[0] == before[0]
    last_cached = max(i for i, block in enumerate(system) if "cache_control" in block)
    assert last_cached < len(system) - 1
    rest = {k: v for k, v in body.items() if k != "system"}
    assert orjson.dumps(rest) == orjson.dumps({k: v for k, v in original.items() if k != "system"})


def test_claude_mid_conversation_system_message_is_replaced_not_appended() -> None:
    body: dict[str, Any] = {
        "model": "m",
        "system": "You are Claude.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Claude, help"}]},
            {"role": "system", "content": "Claude note"},
            {"role": "system", "content": [{"type": "text", "text": "Claude block"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "Claude"}]},
        ],
        "max_tokens": 10,
    }
    expected = copy.deepcopy(body)
    assert edit_raw("claude", body, EDIT, PROGRESS) is True
    expected["system"] = "You are Model.\n\nBe brief.\n\n" + PROGRESS
    expected["messages"][1]["content"] = "Model note"
    expected["messages"][2]["content"][0]["text"] = "Model block"
    assert body == expected


def test_bedrock_without_system_gets_one() -> None:
    body = {"anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    assert edit_raw("bedrock", body, SystemEdit(append="A"), PROGRESS) is True
    assert body == {
        "anthropic_version": "bedrock-2023-05-31",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 5,
        "system": "A\n\n" + PROGRESS,
    }


def test_bedrock_blocks_same_as_claude() -> None:
    body = {"system": [{"type": "text", "text": "Claude", "cache_control": {"type": "ephemeral"}}], "messages": []}
    assert edit_raw("bedrock", body, EDIT, None) is True
    assert body == {
        "system": [
            {"type": "text", "text": "Model", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Be brief."},
        ],
        "messages": [],
    }


# ---------------------------------------------------------------------------------------------
# Non-text system prompts: left as is, debug log, never an exception
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("claude", {"system": 42, "messages": []}),
        ("bedrock", {"system": {"type": "text"}, "messages": []}),
        ("openai-responses", {"instructions": ["x"], "input": []}),
        ("openai-chat", {"messages": "not a list"}),
        ("openai-chat", {"messages": [{"role": "system", "content": None}, {"role": "user", "content": "Claude"}]}),
        ("openai-chat", {"messages": [{"role": "system", "content": {"odd": 1}}]}),
    ],
)
def test_non_text_system_is_left_alone(kind: str, body: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    original = copy.deepcopy(body)
    with caplog.at_level(logging.DEBUG, logger="llm_proxy.prompt"):
        assert edit_raw(kind, body, EDIT, PROGRESS) is False
    assert body == original
    assert [r.levelno for r in caplog.records] and {r.levelno for r in caplog.records} == {logging.DEBUG}


def test_non_text_block_in_claude_system_kept_and_append_still_added() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}
    body = {"system": [image, {"type": "text", "text": "Claude"}], "messages": []}
    assert edit_raw("claude", body, EDIT, None) is True
    assert body == {
        "system": [image, {"type": "text", "text": "Model"}, {"type": "text", "text": "Be brief."}],
        "messages": [],
    }


# ---------------------------------------------------------------------------------------------
# Translation mode: the canonical request
# ---------------------------------------------------------------------------------------------


def user(text: str) -> Message:
    return Message(role="user", content=(Text(text=text),), native={"content": "string"})


def test_canonical_blocks_with_cache_control() -> None:
    cached = Text(text="You are Claude.", cache_control={"type": "ephemeral"})
    request = Request(model="m", messages=(user("Claude?"),), system=(cached,), native={"system": "list"})
    edited = edit_request(request, EDIT, PROGRESS)
    assert edited.system == (
        Text(text="You are Model.", cache_control={"type": "ephemeral"}),
        Text(text="Be brief.\n\n" + PROGRESS),
    )
    assert edited.native == {"system": "list"}
    assert edited.messages == request.messages


def test_canonical_string_system() -> None:
    request = Request(model="m", messages=(user("u"),), system=(Text(text="S Claude"),))
    edited = edit_request(request, EDIT, None)
    assert edited.system == (Text(text="S Model\n\nBe brief."),)
    assert "system" not in edited.native


def test_canonical_no_system_creates_one() -> None:
    request = Request(model="m", messages=(user("u"),))
    edited = edit_request(request, SystemEdit(append="A"), PROGRESS)
    assert edited.system == (Text(text="A\n\n" + PROGRESS),)
    assert "system" not in edited.native
    assert edited.messages == request.messages


def test_canonical_leading_system_messages_and_mid_conversation_system() -> None:
    tool = Message(role="tool", content=(ToolResult(call_id="c", content=(Text(text="Claude"),)),))
    messages = (
        Message(role="system", content=(Text(text="Claude A"),), native={"content": "string"}),
        Message(role="developer", content=(Text(text="Claude B"), Image(url="http://x/i.png"))),
        user("Claude user"),
        tool,
        Message(role="system", content=(Text(text="Claude mid"),), native={"content": "string"}),
    )
    edited = edit_request(Request(model="m", messages=messages), EDIT, PROGRESS)
    assert edited.system is None
    assert edited.messages == (
        Message(role="system", content=(Text(text="Model A"),), native={"content": "string"}),
        Message(
            role="developer",
            content=(Text(text="Model B"), Image(url="http://x/i.png"), Text(text="Be brief.\n\n" + PROGRESS)),
        ),
        user("Claude user"),
        tool,
        Message(role="system", content=(Text(text="Model mid"),), native={"content": "string"}),
    )


def test_canonical_string_form_system_message_append() -> None:
    messages = (Message(role="system", content=(Text(text="S"),), native={"content": "string"}), user("u"))
    edited = edit_request(Request(model="m", messages=messages), SystemEdit(append="A"), None)
    assert edited.messages[0] == Message(role="system", content=(Text(text="S\n\nA"),), native={"content": "string"})


def test_canonical_no_change_returns_the_same_object() -> None:
    request = Request(model="m", messages=(user("Claude"),), system=(Text(text="S"),))
    assert edit_request(request, SystemEdit(replacements=(("Claude", "X"),)), None) is request
    assert edit_request(request, SystemEdit(), None) is request
