"""Golden translations of the real captured client requests, checked against the official SDKs' own types."""

from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat.completion_create_params import CompletionCreateParamsStreaming
from openai.types.responses.response_create_params import ResponseCreateParamsStreaming
from pydantic import TypeAdapter

from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import EncodeOptions
from tests.fixtures import load_request, request_names

OPTIONS = EncodeOptions()
CLAUDE, CHAT, RESPONSES = get_dialect("claude"), get_dialect("openai-chat"), get_dialect("openai-responses")


def system_text(body: dict[str, Any]) -> str:
    system = body["system"]
    return system if isinstance(system, str) else "\n".join(block["text"] for block in system)


def tool_results(body: dict[str, Any]) -> list[Any]:
    return [
        block
        for message in body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]


@pytest.mark.parametrize("name", request_names("claude_code"))
def test_claude_code_to_chat_is_valid_and_keeps_tools_system_and_results(name: str) -> None:
    body = load_request(name)["body"]
    chat = CHAT.encode_request(CLAUDE.decode_request(body), OPTIONS)
    TypeAdapter(CompletionCreateParamsStreaming).validate_python(chat)
    assert [t["function"]["name"] for t in chat["tools"]] == [t["name"] for t in body["tools"]]
    assert [t["function"]["parameters"] for t in chat["tools"]] == [t["input_schema"] for t in body["tools"]]
    chat_system = "\n".join(
        content if isinstance(content, str) else "\n".join(part["text"] for part in content)
        for content in (m["content"] for m in chat["messages"] if m["role"] == "system")
    )
    for block in body["system"]:
        assert block["text"] in chat_system
    tool_messages = [m for m in chat["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == [r["tool_use_id"] for r in tool_results(body)]
    for message, result in zip(tool_messages, tool_results(body), strict=True):
        expected = result["content"] if isinstance(result["content"], str) else result["content"][0]["text"]
        assert expected in str(message["content"])


@pytest.mark.parametrize("name", request_names("claude_code"))
def test_claude_code_through_chat_and_back(name: str) -> None:
    body = load_request(name)["body"]
    chat = CHAT.encode_request(CLAUDE.decode_request(body), OPTIONS)
    back = CLAUDE.encode_request(CHAT.decode_request(chat), OPTIONS)
    assert [(t["name"], t["input_schema"]) for t in back["tools"]] == [
        (t["name"], t["input_schema"]) for t in body["tools"]
    ]
    assert system_text(back).replace("\n\n", "\n").count(body["system"][-1]["text"]) == 1
    assert [r["tool_use_id"] for r in tool_results(back)] == [r["tool_use_id"] for r in tool_results(body)]
    assert [m["role"] for m in back["messages"]] == [m["role"] for m in body["messages"] if m["role"] != "system"]


@pytest.mark.parametrize("name", request_names("codex"))
def test_codex_to_claude_and_chat_keeps_every_tool(name: str) -> None:
    body = load_request(name)["body"]
    TypeAdapter(ResponseCreateParamsStreaming).validate_python(body)
    request = RESPONSES.decode_request(body)
    claude = CLAUDE.encode_request(request, OPTIONS)
    chat = CHAT.encode_request(request, OPTIONS)
    TypeAdapter(CompletionCreateParamsStreaming).validate_python(chat)
    local = {t["name"] for t in body["tools"] if t["type"] in ("function", "custom")}
    assert {t["name"] for t in claude["tools"]} == local
    assert {t["function"]["name"] if t["type"] == "function" else t["custom"]["name"] for t in chat["tools"]} == local
    developer = next(item for item in body["input"] if item.get("role") == "developer")
    assert developer["content"][0]["text"] in system_text(claude)
