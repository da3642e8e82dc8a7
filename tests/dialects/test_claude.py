"""The ``claude`` codec: round trips, cross-origin encoding, responses, streams (split at every byte) and errors."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from llm_proxy.canonical import (
    BlockStart,
    BlockStop,
    ErrorKind,
    Finish,
    HostedTool,
    Image,
    Message,
    MessageStart,
    Opaque,
    ProxyError,
    Reasoning,
    ReasoningConfig,
    Refusal,
    Request,
    Response,
    ResponseFormat,
    SignatureDelta,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    ThinkingDelta,
    Tool,
    ToolArgsDelta,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from llm_proxy.dialects.base import EncodeOptions
from llm_proxy.dialects.claude import DIALECT, ClaudeStreamDecoder, ClaudeStreamEncoder, reasoning_signature
from llm_proxy.errors import RequestError, UpstreamError
from llm_proxy.framing.carry import encode_carry
from tests.fixtures import load_request, request_names

OPTIONS = EncodeOptions()
CUT = StreamError(
    error=ProxyError(status=502, kind=ErrorKind.API_ERROR, message="upstream closed the stream before it finished")
)


def encode(request: Request) -> dict[str, Any]:
    body = DIALECT.encode_request(request, OPTIONS)
    assert isinstance(body, dict)
    return body


def chat_request(*messages: Message, **fields: Any) -> Request:
    return Request(model="claude-x", messages=messages, origin="openai-chat", **fields)


def user(text: str) -> Message:
    return Message(role="user", content=(Text(text=text),), native={"content": "string"})


# ---------------------------------------------------------------------------------------------
# Requests from Claude clients: exact round trips
# ---------------------------------------------------------------------------------------------


CLAUDE_CODE = request_names("claude_code")


def test_fixtures_present() -> None:
    assert CLAUDE_CODE == ["claude_code_first_turn", "claude_code_tool_result_turn"]


@pytest.mark.parametrize("name", CLAUDE_CODE)
def test_claude_code_round_trip(name: str) -> None:
    body = load_request(name)["body"]
    original = copy.deepcopy(body)
    request = DIALECT.decode_request(body)
    assert encode(request) == original
    assert body == original  # decoding does not mutate the client's body


def test_claude_code_decoded_fields() -> None:
    request = DIALECT.decode_request(load_request("claude_code_tool_result_turn")["body"])
    assert request.model == "claude-opus-4-8"
    assert request.stream is True
    assert request.max_tokens == 64000
    assert request.reasoning == ReasoningConfig(mode="adaptive", effort="high")
    assert request.extra == {"context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}}
    assert request.user is not None and request.user.startswith('{"device_id":')
    assert request.metadata is None
    assert request.system is not None and request.native == {"system": "list"}
    assert request.system[1] == Text(
        text="You are a Claude agent, built on Anthropic's Claude Agent SDK.", cache_control={"type": "ephemeral"}
    )
    assert [m.role for m in request.messages] == ["user", "system", "assistant", "user"]
    assert request.messages[1].native == {"content": "string"}
    assert request.messages[2].content == (
        ToolCall(
            id="toolu_fake_1bf22be042",
            name="Bash",
            arguments='{"command":"echo tool-ran-ok","description":"echo test"}',
        ),
    )
    assert request.messages[3].content == (
        ToolResult(
            call_id="toolu_fake_1bf22be042",
            content=(Text(text="tool-ran-ok"),),
            is_error=False,
            cache_control={"type": "ephemeral"},
        ),
    )
    assert request.tools is not None and len(request.tools) == 24
    assert all(isinstance(t, Tool) for t in request.tools)


RICH: dict[str, Any] = {
    "model": "claude-opus-4-1",
    "max_tokens": 2048,
    "system": "You are terse.",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Consider.", "signature": "EqQBsig"},
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
                {"type": "text", "text": "Calling.", "citations": None},
                {"type": "tool_use", "id": "toolu_01", "name": "lookup", "input": {"q": "x", "n": 2.5}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": [
                        {"type": "text", "text": "found"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4A"}},
                        {"type": "search_result", "source": "s", "title": "t", "content": []},
                    ],
                    "is_error": True,
                },
                {"type": "tool_result", "tool_use_id": "toolu_02"},
            ],
        },
        {"role": "system", "content": [{"type": "text", "text": "Mid-conversation note."}]},
        {"role": "assistant", "content": "Done."},
    ],
    "tools": [
        {
            "name": "lookup",
            "description": "Look up",
            "input_schema": {"type": "object"},
            "strict": True,
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "custom", "name": "c", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
    ],
    "tool_choice": {"type": "tool", "name": "lookup", "disable_parallel_tool_use": True},
    "stop_sequences": ["\n\nHuman:"],
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "metadata": {"user_id": "u-7", "tenant": "acme"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "output_config": {"effort": "medium", "format": {"type": "json_schema", "schema": {"type": "object"}}},
    "service_tier": "auto",
    "container": "c_1",
    "mcp_servers": [{"type": "url", "url": "https://mcp.example.com", "name": "m"}],
    "stream": False,
}


def test_rich_body_round_trip() -> None:
    assert encode(DIALECT.decode_request(copy.deepcopy(RICH))) == RICH


def test_rich_body_decoded() -> None:
    request = DIALECT.decode_request(copy.deepcopy(RICH))
    first, second, third, fourth, fifth = request.messages
    assert first.content[:3] == (
        Text(text="Look", cache_control={"type": "ephemeral", "ttl": "1h"}),
        Image(media_type="image/png", data="iVBORw0KGgo="),
        Image(url="https://example.com/a.jpg"),
    )
    assert first.content[3] == Opaque(
        dialects=frozenset({"claude", "bedrock"}),
        raw={"type": "image", "source": {"type": "file", "file_id": "file_1"}},
    )
    assert isinstance(first.content[4], Opaque)
    assert second.content == (
        Reasoning(provider="anthropic", text="Consider.", signature="EqQBsig"),
        Reasoning(provider="anthropic", redacted="EmwKAhgB"),
        Text(text="Calling.", extra={"citations": None}),
        ToolCall(id="toolu_01", name="lookup", arguments='{"q":"x","n":2.5}'),
    )
    result = third.content[0]
    assert isinstance(result, ToolResult)
    assert result.is_error is True and result.native == {"content": "list"}
    assert result.content[:2] == (Text(text="found"), Image(media_type="image/jpeg", data="/9j/4A"))
    assert isinstance(result.content[2], Opaque)
    assert third.content[1] == ToolResult(call_id="toolu_02", content=())
    assert fourth.role == "system" and fourth.content == (Text(text="Mid-conversation note."),)
    assert fifth == Message(role="assistant", content=(Text(text="Done."),), native={"content": "string"})
    assert request.system == (Text(text="You are terse."),) and "system" not in request.native
    assert request.tools is not None
    assert request.tools[0] == Tool(
        name="lookup",
        description="Look up",
        parameters={"type": "object"},
        strict=True,
        cache_control={"type": "ephemeral"},
    )
    assert request.tools[1] == Tool(name="c", parameters={"type": "object"}, extra={"type": "custom"})
    assert request.tools[2] == HostedTool(dialects=frozenset({"claude", "bedrock"}), raw=RICH["tools"][2])
    assert request.tool_choice == ToolChoice(mode="tool", name="lookup")
    assert request.parallel_tool_calls is False
    assert request.stop == ("\n\nHuman:",)
    assert (request.temperature, request.top_p, request.top_k) == (0.5, 0.9, 40)
    assert request.user == "u-7" and request.metadata == {"tenant": "acme"}
    assert request.reasoning == ReasoningConfig(mode="enabled", budget_tokens=1024, effort="medium")
    assert request.response_format == ResponseFormat(type="json_schema", schema={"type": "object"})
    assert request.stream is False
    assert request.extra == {
        "service_tier": "auto",
        "container": "c_1",
        "mcp_servers": [{"type": "url", "url": "https://mcp.example.com", "name": "m"}],
        "stream": False,
    }
    assert request.origin == "claude"


def test_thinking_with_carry_signature_decodes_to_reasoning() -> None:
    signature = reasoning_signature("rs_1", "gAAAAenc")
    body = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "sum", "signature": signature}]}
        ],
    }
    request = DIALECT.decode_request(body)
    assert request.messages[0].content == (
        Reasoning(provider="openai", id="rs_1", summary=("sum",), signature="gAAAAenc"),
    )
    # toward a Claude upstream the OpenAI reasoning item means nothing: dropped, and the empty turn with it
    assert encode(request)["messages"] == []


def test_path_model_used_when_body_has_none() -> None:
    request = DIALECT.decode_request({"max_tokens": 5, "messages": []}, path_model="from-path")
    assert request.model == "from-path"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"messages": []}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": {}}, "messages"),
        ({"model": "m", "messages": [{"role": "bot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        ({"model": "m", "messages": [{"role": "user", "content": ["hi"]}]}, "messages[0].content[0]"),
        (
            {
                "model": "m",
                "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f"}]}],
            },
            "messages[0].content[0].input",
        ),
        ({"model": "m", "messages": [], "system": [{"type": "image", "source": {}}]}, "system[0]"),
        ({"model": "m", "messages": [], "tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"model": "m", "messages": [], "thinking": {"type": "on"}}, "thinking.type"),
        ({"model": "m", "messages": [], "temperature": "hot"}, "temperature"),
        ({"model": "m", "messages": [], "stream": "yes"}, "stream"),
        ({"model": "m", "messages": [], "max_tokens": 1.5}, "max_tokens"),
        ({"model": "m", "messages": [], "tools": [{"description": "x"}]}, "tools[0].name"),
        ({"model": "m", "messages": [], "stop_sequences": "END"}, "stop_sequences"),
    ],
)
def test_malformed_request_raises_request_error(body: Any, param: str | None) -> None:
    with pytest.raises(RequestError) as info:
        DIALECT.decode_request(body)
    assert info.value.error.status == 400
    assert info.value.error.param == param


# ---------------------------------------------------------------------------------------------
# Requests of other origins toward a Claude upstream
# ---------------------------------------------------------------------------------------------


def test_chat_tool_messages_merge_into_one_user_turn() -> None:
    request = chat_request(
        Message(role="system", content=(Text(text="Be brief."),), native={"content": "string"}),
        user("Weather in Paris and Rome?"),
        Message(
            role="assistant",
            content=(
                ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
                ToolCall(id="call.2", name="get_weather", arguments='{"city":"Rome"}'),
            ),
            native={"content": "null"},
        ),
        Message(role="tool", content=(ToolResult(call_id="call_1", content=(Text(text="18C"),)),)),
        Message(role="tool", content=(ToolResult(call_id="call.2", content=(Text(text="21C"),)),)),
        user("Thanks, and Oslo?"),
        tools=(
            Tool(
                name="get_weather",
                description="Weather",
                parameters={"properties": {"city": {"type": "string"}}},
                strict=True,
            ),
        ),
        tool_choice=ToolChoice(mode="required"),
        parallel_tool_calls=False,
        max_tokens=500,
        temperature=1.5,
        stop=("END",),
        user="u-1",
        stream=True,
        seed=3,
        metadata={"k": "v"},
        extra={"logprobs": True},
    )
    assert encode(request) == {
        "model": "claude-x",
        "max_tokens": 500,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "21C"},
                    {"type": "text", "text": "Thanks, and Oslo?"},
                ],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "temperature": 1.0,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
        "stream": True,
    }


def test_tool_results_alone_and_placed_first() -> None:
    request = chat_request(
        Message(role="assistant", content=(ToolCall(id="c1", name="f", arguments="{}"),)),
        Message(role="tool", content=(ToolResult(call_id="c1", content=(Text(text="ok"),)),)),
        Message(role="assistant", content=(Text(text="Next"),), native={"content": "string"}),
        Message(
            role="user",
            content=(
                Text(text="and"),
                ToolResult(call_id="c2", content=(Text(text="late"),), native={"content": "list"}),
            ),
        ),
    )
    assert encode(request)["messages"] == [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "ok"}]},
        {"role": "assistant", "content": "Next"},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "c2", "content": [{"type": "text", "text": "late"}]},
                {"type": "text", "text": "and"},
            ],
        },
    ]


def test_system_and_developer_messages_are_hoisted() -> None:
    request = Request(
        model="claude-x",
        origin="openai-responses",
        system=(Text(text="A"),),
        messages=(
            Message(role="developer", content=(Text(text="B"),), native={"content": "string"}),
            user("hi"),
            Message(role="developer", content=(Text(text="C"), Text(text=""))),
            Message(role="assistant", content=(Text(text="ok"),)),
        ),
    )
    body = encode(request)
    assert body["system"] == [
        {"type": "text", "text": "A"},
        {"type": "text", "text": "B"},
        {"type": "text", "text": "C"},
    ]
    assert body["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
    ]
    assert body["max_tokens"] == 8192
    assert "stream" not in body


def test_single_string_system_stays_a_string_and_claude_keeps_mid_system_turns() -> None:
    chat = chat_request(Message(role="system", content=(Text(text="S"),), native={"content": "string"}), user("hi"))
    assert encode(chat)["system"] == "S"
    claude = Request(
        model="m",
        origin="claude",
        max_tokens=10,
        messages=(user("hi"), Message(role="system", content=(Text(text="note"),), native={"content": "string"})),
    )
    assert encode(claude) == {
        "model": "m",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "note"}],
    }


def test_empty_text_and_empty_messages_are_dropped() -> None:
    request = chat_request(
        user(""),
        Message(role="user", content=(Text(text=""), Text(text="x"))),
        Message(role="assistant", content=(Reasoning(provider="anthropic", text="no signature"),)),
    )
    assert encode(request)["messages"] == [{"role": "user", "content": [{"type": "text", "text": "x"}]}]


def test_images_toward_claude() -> None:
    request = chat_request(
        Message(
            role="user",
            content=(
                Image(url="data:image/jpeg;base64,/9j/4AAQ", detail="high"),
                Image(url="https://example.com/cat.png"),
                Image(url="data:;base64,iVBORw0KGgo="),
                Image(data="R0lGODlh"),
                Image(url="ftp://example.com/x.png"),
                Image(url="data:image/svg+xml,<svg/>"),
            ),
        )
    )
    assert encode(request)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/gif", "data": "R0lGODlh"}},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("", {}),
        ("  ", {}),
        ('{"a": ', {"_raw_arguments": '{"a": '}),
        ("[1, 2]", {"_raw_arguments": "[1, 2]"}),
        ("null", {"_raw_arguments": "null"}),
    ],
)
def test_tool_arguments_toward_claude(arguments: str, expected: dict[str, Any]) -> None:
    request = chat_request(Message(role="assistant", content=(ToolCall(id="c", name="f", arguments=arguments),)))
    assert encode(request)["messages"][0]["content"][0]["input"] == expected


def test_thinking_parts_toward_claude() -> None:
    claude_carry = encode_carry("claude-thinking", {"t": "deep", "s": "sig-9"})
    redacted_carry = encode_carry("claude-thinking", {"r": "blob"})
    request = chat_request(
        Message(
            role="assistant",
            content=(
                Reasoning(provider="anthropic", text="kept", signature="sig-1"),
                Reasoning(provider="anthropic", text="dropped"),
                Reasoning(provider="anthropic", redacted="opaque"),
                Reasoning(provider="openai", id="rs_1", summary=("s",), signature="gAAA"),
                Reasoning(provider="openai", id="rs_2", signature=claude_carry),
                Reasoning(provider="openai", id="rs_3", signature=redacted_carry),
                Reasoning(provider="openai", id="rs_4", signature="lpx1.tampered.mac"),
                Refusal(text="I can't."),
                Opaque(dialects=frozenset({"openai-responses"}), raw={"type": "web_search_call"}),
                Opaque(dialects=frozenset({"claude", "bedrock"}), raw={"type": "server_tool_use", "id": "s"}),
            ),
        )
    )
    assert encode(request)["messages"][0]["content"] == [
        {"type": "thinking", "thinking": "kept", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "thinking", "thinking": "deep", "signature": "sig-9"},
        {"type": "redacted_thinking", "data": "blob"},
        {"type": "text", "text": "I can't."},
        {"type": "server_tool_use", "id": "s"},
    ]


@pytest.mark.parametrize(
    ("effort", "client_max", "budget", "max_tokens"),
    [
        ("none", None, None, 8192),
        ("minimal", None, 1024, 8192),
        ("low", None, 2048, 8192),
        ("medium", None, 4096, 8192),
        ("high", None, 8192, 16384),
        ("xhigh", None, 16384, 24576),
        ("max", None, 32768, 40960),
        ("high", 4000, 2000, 4000),
        ("low", 1000, 1024, 2024),
        ("low", 30000, 2048, 30000),
        ("turbo", None, None, 8192),
    ],
)
def test_effort_table(effort: str, client_max: int | None, budget: int | None, max_tokens: int) -> None:
    request = chat_request(
        user("hi"),
        reasoning=ReasoningConfig(effort=effort),
        max_tokens=client_max,
        temperature=0.2,
        top_p=0.5,
    )
    body = encode(request)
    assert body["max_tokens"] == max_tokens
    if budget is None:
        assert "thinking" not in body
        assert (body["temperature"], body["top_p"]) == (0.2, 0.5)
    else:
        assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert "temperature" not in body and "top_p" not in body  # Claude rejects them with thinking
    assert "output_config" not in body


def test_effort_is_dropped_when_a_tool_use_is_forced() -> None:
    request = chat_request(
        user("hi"),
        tools=(Tool(name="f"),),
        tool_choice=ToolChoice(mode="tool", name="f"),
        reasoning=ReasoningConfig(effort="high"),
    )
    body = encode(request)
    assert "thinking" not in body
    assert body["tool_choice"] == {"type": "tool", "name": "f"}
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]


def test_claude_effort_goes_back_as_output_config() -> None:
    request = Request(
        model="m", messages=(user("hi"),), origin="claude", reasoning=ReasoningConfig(mode="adaptive", effort="low")
    )
    body = encode(request)
    assert body["thinking"] == {"type": "adaptive"}
    assert body["output_config"] == {"effort": "low"}


def test_n_greater_than_one_is_refused() -> None:
    with pytest.raises(RequestError) as info:
        encode(chat_request(user("hi"), n=2))
    assert info.value.error.message == "n > 1 is not supported by a claude backend"
    assert info.value.error.param == "n"
    assert encode(chat_request(user("hi"), n=1))["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("given", "sent"), [(1.5, 1.0), (2, 1.0), (1, 1), (0.3, 0.3), (0, 0)])
def test_temperature_clamp(given: float, sent: float) -> None:
    assert encode(chat_request(user("hi"), temperature=given))["temperature"] == sent


def test_response_format_tool_choice_and_foreign_tools() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    request = chat_request(
        user("hi"),
        response_format=ResponseFormat(type="json_schema", name="x", schema=schema, strict=True),
        tools=(
            Tool(name="f", parameters={"type": "object"}),
            Tool(name="apply_patch", description="Patch", kind="custom", extra={"format": {"type": "grammar"}}),
            HostedTool(dialects=frozenset({"openai-responses"}), raw={"type": "web_search"}),
        ),
        tool_choice=ToolChoice(mode="none"),
        parallel_tool_calls=True,
    )
    body = encode(request)
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert body["tool_choice"] == {"type": "none"}
    assert body["tools"] == [
        {"name": "f", "input_schema": {"type": "object"}},
        {
            "name": "apply_patch",
            "description": "Patch",
            "input_schema": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]},
        },
    ]
    json_object = encode(chat_request(user("hi"), response_format=ResponseFormat(type="json_object")))
    assert "output_config" not in json_object
    no_tools = encode(chat_request(user("hi"), tool_choice=ToolChoice(mode="auto"), tools=()))
    assert "tools" not in no_tools and "tool_choice" not in no_tools


def test_custom_tool_call_wraps_its_raw_input() -> None:
    request = chat_request(
        Message(role="assistant", content=(ToolCall(id="c", name="apply_patch", arguments="*** Begin", kind="custom"),))
    )
    assert encode(request)["messages"][0]["content"][0]["input"] == {"input": "*** Begin"}


def test_upstream_path_and_headers() -> None:
    request = chat_request(user("hi"))
    assert DIALECT.upstream_path(request) == "/v1/messages"
    assert DIALECT.upstream_headers(request, {"Authorization": "Bearer x"}) == {"anthropic-version": "2023-06-01"}
    client = {"Anthropic-Version": "2024-01-01", "anthropic-beta": "a-1,b-2", "x-api-key": "k"}
    assert DIALECT.upstream_headers(request, client) == {"anthropic-version": "2024-01-01", "anthropic-beta": "a-1,b-2"}


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------

RESPONSE: dict[str, Any] = {
    "id": "msg_01X",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "sig=="},
        {"type": "redacted_thinking", "data": "abc"},
        {"type": "text", "text": "Hi", "citations": [{"type": "char_location", "cited_text": "x"}]},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, 2]}},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 3,
        "output_tokens": 20,
        "service_tier": "standard",
    },
    "container": None,
}


def test_response_round_trip() -> None:
    request = Request(model="claude-sonnet-4-5", messages=(), origin="claude")
    response = DIALECT.decode_response(copy.deepcopy(RESPONSE), request)
    assert response.id == "msg_01X"
    assert response.stop_reason is StopReason.TOOL_USE
    assert response.usage == Usage(input_tokens=10, output_tokens=20, cache_read_tokens=3)
    assert response.content[:2] == (
        Reasoning(provider="anthropic", text="hmm", signature="sig=="),
        Reasoning(provider="anthropic", redacted="abc"),
    )
    assert response.content[3] == ToolCall(id="toolu_1", name="f", arguments='{"a":[1,2]}')
    assert orjson.loads(DIALECT.encode_response(response, request)) == RESPONSE


def test_response_shows_the_client_model_and_converts_foreign_parts() -> None:
    response = Response(
        id="chatcmpl-1.2",
        model="gpt-5",
        content=(
            Reasoning(provider="openai", id="rs_9", summary=("a", "b"), signature="gAAA"),
            Text(text="Hello"),
            Refusal(text="No."),
            ToolCall(id="call:1", name="f", arguments="oops"),
            Reasoning(provider="anthropic", text="unsigned"),
            Image(url="https://x/y.png"),
        ),
        stop_reason=StopReason.CONTENT_FILTER,
        usage=Usage(input_tokens=4, output_tokens=6, cache_read_tokens=2, cache_write_tokens=1, reasoning_tokens=3),
        extra={"system_fingerprint": "fp"},
        origin="openai-chat",
    )
    request = Request(model="client-model", messages=())
    assert orjson.loads(DIALECT.encode_response(response, request)) == {
        "id": "msg_chatcmpl-1_2",
        "type": "message",
        "role": "assistant",
        "model": "client-model",
        "content": [
            {"type": "thinking", "thinking": "a\n\nb", "signature": reasoning_signature("rs_9", "gAAA")},
            {"type": "text", "text": "Hello"},
            {"type": "text", "text": "No."},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"_raw_arguments": "oops"}},
            {"type": "thinking", "thinking": "unsigned", "signature": ""},
        ],
        "stop_reason": "refusal",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 4,
            "cache_creation_input_tokens": 1,
            "cache_read_input_tokens": 2,
            "output_tokens": 6,
        },
    }


def test_response_custom_tool_is_unwrapped() -> None:
    request = Request(model="m", messages=(), tools=(Tool(name="apply_patch", kind="custom"),))
    body = {
        "id": "msg_1",
        "content": [{"type": "tool_use", "id": "t", "name": "apply_patch", "input": {"input": "*** Begin"}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    response = DIALECT.decode_response(body, request)
    assert response.content == (ToolCall(id="t", name="apply_patch", arguments="*** Begin", kind="custom"),)


def test_malformed_response_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError) as info:
        DIALECT.decode_response({"id": "msg_1", "content": [{"type": "text"}]}, Request(model="m", messages=()))
    assert info.value.error.status == 502
    assert info.value.error.kind is ErrorKind.API_ERROR


# ---------------------------------------------------------------------------------------------
# Stream decoding
# ---------------------------------------------------------------------------------------------

TRANSCRIPT = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_01ABC","type":"message","role":"assistant",'
    b'"model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,'
    b'"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1}}}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"",'
    b'"signature":""}}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think"}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta",'
    b'"thinking":" \xc3\xa9\xe2\x80\x94\xe6\x97\xa5\xe6\x9c\xac."}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCkYIBx=="}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":0}\n\n'
    b"event: content_block_start\r\n"
    b'data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}\r\n\r\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Checking both."}}\n\n'
    b": keepalive comment\n\n"
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":1}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01A",'
    b'"name":"get_weather","input":{}}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta",'
    b'"partial_json":"{\\"city\\": \\"Par"}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"is\\"}"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":2}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_01B",'
    b'"name":"get_weather","input":{}}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta",'
    b'"partial_json":"{\\"city\\": \\"Rome\\"}"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":3}\n\n'
    b"event: ping\n"
    b'data: {"type": "ping"}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},'
    b'"usage":{"output_tokens":89}}\n\n'
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n\n'
)

TRANSCRIPT_EVENTS: list[StreamEvent] = [
    MessageStart(
        id="msg_01ABC",
        model="claude-sonnet-4-5",
        usage=Usage(input_tokens=25, output_tokens=1, cache_read_tokens=2000, cache_write_tokens=100),
    ),
    BlockStart(index=0, kind="thinking"),
    ThinkingDelta(index=0, text="Let me think"),
    ThinkingDelta(index=0, text=" é—日本."),
    SignatureDelta(index=0, signature="EqQBCkYIBx=="),
    BlockStop(index=0),
    BlockStart(index=1, kind="text"),
    TextDelta(index=1, text="Checking both."),
    BlockStop(index=1),
    BlockStart(index=2, kind="tool_call", id="toolu_01A", name="get_weather"),
    ToolArgsDelta(index=2, partial_json=""),
    ToolArgsDelta(index=2, partial_json='{"city": "Par'),
    ToolArgsDelta(index=2, partial_json='is"}'),
    BlockStop(index=2),
    BlockStart(index=3, kind="tool_call", id="toolu_01B", name="get_weather"),
    ToolArgsDelta(index=3, partial_json='{"city": "Rome"}'),
    BlockStop(index=3),
    Finish(
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=25, output_tokens=89, cache_read_tokens=2000, cache_write_tokens=100),
    ),
]

STREAM_REQUEST = Request(model="claude-sonnet-4-5", messages=(), stream=True, origin="claude")


def decode_split(data: bytes, split: int, request: Request = STREAM_REQUEST) -> list[StreamEvent]:
    decoder = DIALECT.stream_decoder(request)
    return decoder.feed(data[:split]) + decoder.feed(data[split:]) + decoder.close()


def decode_bytewise(data: bytes, request: Request = STREAM_REQUEST) -> list[StreamEvent]:
    decoder = DIALECT.stream_decoder(request)
    events: list[StreamEvent] = []
    for i in range(len(data)):
        events += decoder.feed(data[i : i + 1])
    return events + decoder.close()


def test_stream_decoder_transcript_at_every_split() -> None:
    for split in range(len(TRANSCRIPT) + 1):
        assert decode_split(TRANSCRIPT, split) == TRANSCRIPT_EVENTS, split
    assert decode_bytewise(TRANSCRIPT) == TRANSCRIPT_EVENTS


def test_stream_decoder_feed_event_takes_parsed_objects() -> None:
    decoder = ClaudeStreamDecoder(STREAM_REQUEST)
    events: list[StreamEvent] = []
    for chunk in TRANSCRIPT.replace(b"\r\n", b"\n").split(b"\n\n"):
        for line in chunk.split(b"\n"):
            if line.startswith(b"data: "):
                events += decoder.feed_event(orjson.loads(line[6:]))
    assert events == TRANSCRIPT_EVENTS
    assert decoder.close() == []


def test_stream_decoder_cut_stream() -> None:
    cut_at = TRANSCRIPT.index(b"event: message_delta")
    for split in (cut_at, cut_at + 30, len(TRANSCRIPT) - 3):
        events = decode_split(TRANSCRIPT[:split], split // 2)
        assert events[-1] == CUT
        assert Finish not in [type(e) for e in events]
    assert decode_split(b"", 0) == [CUT]


def test_stream_decoder_error_event() -> None:
    data = TRANSCRIPT[: TRANSCRIPT.index(b"event: content_block_stop")] + (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    )
    expected = TRANSCRIPT_EVENTS[:5] + [
        StreamError(error=ProxyError(status=529, kind=ErrorKind.OVERLOADED, message="Overloaded"))
    ]
    for split in range(len(data) + 1):
        assert decode_split(data, split) == expected, split


def test_stream_decoder_repairs_a_sloppy_upstream() -> None:
    data = (
        b'data: {"type":"content_block_start","index":5,"content_block":{"type":"text","text":"Hi"}}\n\n'
        b'data: {"type":"content_block_delta","index":9,"delta":{"type":"text_delta","text":"lost"}}\n\n'
        b'data: {"type":"content_block_start","index":7,"content_block":{"type":"server_tool_use","id":"s",'
        b'"name":"web_search","input":{}}}\n\n'
        b'data: {"type":"content_block_delta","index":7,"delta":{"type":"input_json_delta",'
        b'"partial_json":"{\\"q\\":1}"}}\n\n'
        b'data: {"type":"content_block_stop","index":7}\n\n'
        b'data: {"type":"some_future_event"}\n\n'
        b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":3,'
        b'"output_tokens":4}}\n\n'
        b'data: {"type":"message_stop"}\n\n'
        b'data: {"type":"message_stop"}\n\n'
    )
    expected = [
        MessageStart(id="msg_synthesized", model="claude-sonnet-4-5"),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="Hi"),
        BlockStart(
            index=1,
            kind="opaque",
            raw={"type": "server_tool_use", "id": "s", "name": "web_search", "input": {"q": 1}},
        ),
        BlockStop(index=1),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.END_TURN, usage=Usage(input_tokens=3, output_tokens=4)),
    ]
    for split in range(len(data) + 1):
        assert decode_split(data, split) == expected, split


def test_stream_decoder_bad_json_is_a_stream_error() -> None:
    events = decode_split(b"event: message_start\ndata: {nope\n\n", 0)
    assert events == [
        StreamError(
            error=ProxyError(
                status=502,
                kind=ErrorKind.API_ERROR,
                message="the upstream sent a stream event that is not a JSON object",
            )
        )
    ]


def test_stream_decoder_unwraps_custom_tool_input() -> None:
    request = Request(model="m", messages=(), tools=(Tool(name="apply_patch", kind="custom"),))
    data = (
        b'data: {"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":1}}}\n\n'
        b'data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t",'
        b'"name":"apply_patch","input":{}}}\n\n'
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta",'
        b'"partial_json":"{\\"input\\":"}}\n\n'
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta",'
        b'"partial_json":"\\"a\\\\nb\\"}"}}\n\n'
        b'data: {"type":"content_block_stop","index":0}\n\n'
        b'data: {"type":"message_stop"}\n\n'
    )
    assert decode_split(data, 0, request) == [
        MessageStart(id="msg_1", model="m", usage=Usage(input_tokens=1)),
        BlockStart(index=0, kind="tool_call", id="t", name="apply_patch", tool_kind="custom"),
        ToolArgsDelta(index=0, partial_json="a\nb"),
        BlockStop(index=0),
        Finish(stop_reason=None, usage=Usage(input_tokens=1)),
    ]


# ---------------------------------------------------------------------------------------------
# Stream encoding
# ---------------------------------------------------------------------------------------------

ENCODER_REQUEST = Request(model="client-model", messages=(), stream=True)

CANONICAL: list[StreamEvent] = [
    MessageStart(id="msg_1", model="client-model", usage=Usage(input_tokens=10, cache_read_tokens=5)),
    BlockStart(index=0, kind="thinking"),
    ThinkingDelta(index=0, text="hmm"),
    SignatureDelta(index=0, signature="sig"),
    BlockStop(index=0),
    BlockStart(index=1, kind="text"),
    TextDelta(index=1, text="Hi \u00e9"),
    BlockStop(index=1),
    BlockStart(index=2, kind="tool_call", id="toolu_1", name="f"),
    ToolArgsDelta(index=2, partial_json='{"a":'),
    ToolArgsDelta(index=2, partial_json="1}"),
    BlockStop(index=2),
    Finish(
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=10, output_tokens=7, cache_read_tokens=5, cache_write_tokens=2),
    ),
]

CANONICAL_SSE = (
    b"event: message_start\n"
    b'data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",'
    b'"model":"client-model","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,'
    b'"cache_creation_input_tokens":0,"cache_read_input_tokens":5,"output_tokens":0}}}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"",'
    b'"signature":""}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":0}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi \xc3\xa9"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":1}\n\n'
    b"event: content_block_start\n"
    b'data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_1","name":"f",'
    b'"input":{}}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"a\\":"}}\n\n'
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"1}"}}\n\n'
    b"event: content_block_stop\n"
    b'data: {"type":"content_block_stop","index":2}\n\n'
    b"event: message_delta\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":10,'
    b'"cache_creation_input_tokens":2,"cache_read_input_tokens":5,"output_tokens":7}}\n\n'
    b"event: message_stop\n"
    b'data: {"type":"message_stop"}\n\n'
)


def encode_stream(events: list[StreamEvent], request: Request = ENCODER_REQUEST) -> bytes:
    encoder = DIALECT.stream_encoder(request)
    assert encoder.content_type == "text/event-stream"
    return b"".join(encoder.encode(e) for e in events) + encoder.close()


def test_stream_encoder_exact_bytes() -> None:
    assert encode_stream(CANONICAL) == CANONICAL_SSE


def test_stream_encoder_output_decodes_to_the_same_events() -> None:
    data = encode_stream(CANONICAL)
    for split in range(len(data) + 1):
        assert decode_split(data, split, ENCODER_REQUEST) == CANONICAL, split
    assert decode_split(encode_stream(TRANSCRIPT_EVENTS, STREAM_REQUEST), 7) == TRANSCRIPT_EVENTS


def test_stream_encoder_objects_match_the_sse() -> None:
    encoder = ClaudeStreamEncoder(ENCODER_REQUEST)
    objects = [obj for event in CANONICAL for obj in encoder.encode_objects(event)]
    assert [o["type"] for o in objects] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert b"".join(b"event: " + o["type"].encode() + b"\ndata: " + orjson.dumps(o) + b"\n\n" for o in objects) == (
        CANONICAL_SSE
    )


def test_stream_encoder_from_a_foreign_upstream() -> None:
    events: list[StreamEvent] = [
        BlockStart(index=0, kind="reasoning", id="rs_1"),
        ThinkingDelta(index=0, text="plan"),
        SignatureDelta(index=0, signature="gAAAenc"),
        BlockStop(index=0),
        BlockStart(index=1, kind="opaque", raw={"type": "web_search_call", "id": "ws"}),
        BlockStop(index=1),
        BlockStart(index=2, kind="refusal"),
        TextDelta(index=2, text="No."),
        BlockStart(index=3, kind="tool_call", id="call.9", name="apply_patch", tool_kind="custom"),
        ToolArgsDelta(index=3, partial_json='say "hi"\n'),
        BlockStop(index=3),
        Finish(stop_reason=StopReason.CONTENT_FILTER, usage=Usage(input_tokens=3, output_tokens=4)),
        TextDelta(index=2, text="after the end"),
    ]
    encoder = ClaudeStreamEncoder(ENCODER_REQUEST)
    objects = [obj for event in events for obj in encoder.encode_objects(event)]
    message_start = objects[0]
    assert message_start["message"]["id"].startswith("msg_") and len(message_start["message"]["id"]) == 28
    assert objects[1:] == [
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "plan"}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": reasoning_signature("rs_1", "gAAAenc")},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "No."}},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "call_9", "name": "apply_patch", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"input":"'},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": 'say \\"hi\\"\\n'},
        },
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '"}'}},
        {"type": "content_block_stop", "index": 2},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "refusal", "stop_sequence": None},
            "usage": {
                "input_tokens": 3,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 4,
            },
        },
        {"type": "message_stop"},
    ]
    # what the Claude client sends back restores the OpenAI reasoning item
    block = {"type": "thinking", "thinking": "plan", "signature": reasoning_signature("rs_1", "gAAAenc")}
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": [block]}]}
    decoded = DIALECT.decode_request(body).messages[0].content
    assert decoded == (Reasoning(provider="openai", id="rs_1", summary=("plan",), signature="gAAAenc"),)


def test_stream_encoder_error_ends_the_stream() -> None:
    error = ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="slow down")
    events: list[StreamEvent] = [*CANONICAL[:7], StreamError(error=error), *CANONICAL[7:]]
    data = encode_stream(events)
    assert data.endswith(
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi \xc3\xa9"}}\n\n'
        b"event: error\n"
        b'data: {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}\n\n'
    )
    assert encode_stream([StreamError(error=error)]) == (
        b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}\n\n'
    )


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "client_status", "error_type"),
    [
        (ErrorKind.INVALID_REQUEST, 400, 400, "invalid_request_error"),
        (ErrorKind.AUTHENTICATION, 401, 401, "authentication_error"),
        (ErrorKind.BILLING, 402, 402, "billing_error"),
        (ErrorKind.PERMISSION, 403, 403, "permission_error"),
        (ErrorKind.NOT_FOUND, 404, 404, "not_found_error"),
        (ErrorKind.CONFLICT, 409, 409, "conflict_error"),
        (ErrorKind.REQUEST_TOO_LARGE, 413, 413, "request_too_large"),
        (ErrorKind.CONTEXT_LENGTH, 400, 400, "invalid_request_error"),
        (ErrorKind.RATE_LIMIT, 429, 429, "rate_limit_error"),
        (ErrorKind.API_ERROR, 500, 500, "api_error"),
        (ErrorKind.OVERLOADED, 503, 529, "overloaded_error"),
        (ErrorKind.TIMEOUT, 408, 504, "timeout_error"),
        (ErrorKind.UPSTREAM_UNREACHABLE, 500, 502, "api_error"),
    ],
)
def test_encode_error(kind: ErrorKind, status: int, client_status: int, error_type: str) -> None:
    rendered = DIALECT.encode_error(ProxyError(status=status, kind=kind, message="msg"))
    assert rendered.status == client_status
    assert rendered.headers == ()
    assert rendered.content_type == "application/json"
    assert orjson.loads(rendered.body) == {"type": "error", "error": {"type": error_type, "message": "msg"}}


def test_encode_error_retry_after() -> None:
    error = ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="m", retry_after="30")
    assert DIALECT.encode_error(error).headers == (("Retry-After", "30"),)


def anthropic_error(error_type: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_1"})


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (
            529,
            anthropic_error("overloaded_error", "Overloaded"),
            {},
            ProxyError(status=529, kind=ErrorKind.OVERLOADED, message="Overloaded"),
        ),
        (
            400,
            anthropic_error("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            {},
            ProxyError(
                status=400,
                kind=ErrorKind.CONTEXT_LENGTH,
                message="prompt is too long: 210000 tokens > 200000 maximum",
            ),
        ),
        (
            429,
            anthropic_error("rate_limit_error", "Too many"),
            {"Retry-After": "12"},
            ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="Too many", retry_after="12"),
        ),
        (
            401,
            anthropic_error("authentication_error", "invalid x-api-key"),
            {"retry-after": "1"},
            ProxyError(status=401, kind=ErrorKind.AUTHENTICATION, message="invalid x-api-key", retry_after="1"),
        ),
        (
            400,
            anthropic_error("weird_error", "strange"),
            {},
            ProxyError(status=400, kind=ErrorKind.INVALID_REQUEST, message="strange"),
        ),
        (
            403,
            b'{"message":"Forbidden"}',
            {},
            ProxyError(status=403, kind=ErrorKind.PERMISSION, message="Forbidden"),
        ),
        (
            502,
            b"<html>Bad gateway</html>",
            {},
            ProxyError(status=502, kind=ErrorKind.UPSTREAM_UNREACHABLE, message="<html>Bad gateway</html>"),
        ),
        (500, b"x" * 600, {}, ProxyError(status=500, kind=ErrorKind.API_ERROR, message="x" * 500)),
        (404, b"", {}, ProxyError(status=404, kind=ErrorKind.NOT_FOUND, message="the upstream answered HTTP 404")),
        (418, b"[1]", {}, ProxyError(status=418, kind=ErrorKind.INVALID_REQUEST, message="[1]")),
        (500, b"\xff\xfe", {}, ProxyError(status=500, kind=ErrorKind.API_ERROR, message="\ufffd\ufffd")),
    ],
)
def test_decode_error(status: int, body: bytes, headers: dict[str, str], expected: ProxyError) -> None:
    assert DIALECT.decode_error(status, body, headers) == expected


def test_encoded_error_decodes_back() -> None:
    for kind in ErrorKind:
        error = ProxyError(status=400, kind=kind, message="m")
        rendered = DIALECT.encode_error(error)
        decoded = DIALECT.decode_error(rendered.status, rendered.body, dict(rendered.headers))
        assert DIALECT.encode_error(decoded).body == rendered.body
