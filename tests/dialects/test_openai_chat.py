"""Tests of the OpenAI Chat Completions codec: round trips, cross-origin encoding, responses, streams, errors."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

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
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import EncodeOptions
from llm_proxy.dialects.openai_chat import DIALECT
from llm_proxy.errors import RequestError, UpstreamError
from llm_proxy.framing import carry

OPTIONS = EncodeOptions()
CHAT = frozenset({"openai-chat"})
REASONING_SIG = carry.encode_carry("openai-reasoning", {"id": "rs_1", "enc": "ENC=="})


def roundtrip(body: dict[str, Any]) -> Any:
    original = copy.deepcopy(body)
    encoded = DIALECT.encode_request(DIALECT.decode_request(body), OPTIONS)
    assert body == original  # decoding does not mutate the client's document
    return encoded


# ---------------------------------------------------------------------------------------------
# Request round trips (client dialect == upstream dialect)
# ---------------------------------------------------------------------------------------------

RICH_REQUEST: dict[str, Any] = {
    "model": "gpt-5",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
        {
            "role": "user",
            "name": "alice",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}},
                {"type": "file", "file": {"file_id": "file-abc"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "Two lookups needed.",
            "thinking_blocks": [
                {"type": "thinking", "thinking": "Two lookups needed.", "signature": "EqQBCkYIBxgCKkA"},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3"},
            ],
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "cat"}'}},
                {"id": "call_b", "type": "function", "function": {"name": "lookup", "arguments": "{not json"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "a cat"},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "error: bad json"}]},
        {"role": "assistant", "content": "Done.", "refusal": None, "name": "bot"},
        {"role": "assistant", "content": [{"type": "text", "text": "Part one."}], "refusal": "I can't."},
        {"role": "user", "content": "thanks"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look something up.",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "noargs"}},
        {"type": "custom", "custom": {"name": "patch", "description": "Apply a patch", "format": {"type": "text"}}},
    ],
    "tool_choice": {"type": "function", "function": {"name": "lookup"}},
    "parallel_tool_calls": False,
    "max_completion_tokens": 2048,
    "stop": ["\n\n", "END"],
    "temperature": 0.2,
    "top_p": 1,
    "n": 1,
    "seed": 7,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True, "description": "An answer"},
    },
    "stream": True,
    "stream_options": {"include_usage": True},
    "reasoning_effort": "low",
    "user": "user-1",
    "metadata": {"session": "s1"},
    "store": False,
    "logprobs": True,
    "top_logprobs": 2,
    "frequency_penalty": 0.5,
    "presence_penalty": -0.5,
    "logit_bias": {"50256": -100},
    "service_tier": "flex",
    "safety_identifier": "hash-1",
    "prompt_cache_key": "pck",
    "modalities": ["text"],
    "audio": {"voice": "alloy", "format": "mp3"},
    "prediction": {"type": "content", "content": "x"},
    "verbosity": "low",
    "web_search_options": {"search_context_size": "low"},
}


def test_rich_request_round_trips_exactly() -> None:
    assert roundtrip(RICH_REQUEST) == RICH_REQUEST


def test_rich_request_decodes_to_canonical_fields() -> None:
    request = DIALECT.decode_request(RICH_REQUEST)
    assert request.origin == "openai-chat"
    assert request.system is None  # leading system messages stay messages
    assert [m.role for m in request.messages] == [
        "system",
        "developer",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "assistant",
        "user",
    ]
    assert request.messages[0] == Message(
        role="system", content=(Text(text="You are terse."),), native={"content": "string"}
    )
    user = request.messages[2]
    assert user.name == "alice"
    assert user.content == (
        Text(text="What is in these?"),
        Image(media_type="image/jpeg", data="/9j/4AAQ", detail="high"),
        Image(url="https://example.com/cat.png"),
        Opaque(dialects=CHAT, raw={"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}}),
        Opaque(dialects=CHAT, raw={"type": "file", "file": {"file_id": "file-abc"}}),
    )
    assistant = request.messages[3]
    assert assistant.native == {"content": "null"}
    assert assistant.content == (
        Reasoning(provider="anthropic", text="Two lookups needed.", signature="EqQBCkYIBxgCKkA"),
        Reasoning(provider="anthropic", redacted="EmwKAhgBEgy3"),
        ToolCall(id="call_a", name="lookup", arguments='{"q": "cat"}'),
        ToolCall(id="call_b", name="lookup", arguments="{not json"),
    )
    assert request.messages[4] == Message(
        role="tool", content=(ToolResult(call_id="call_a", content=(Text(text="a cat"),)),)
    )
    assert request.messages[5].content == (
        ToolResult(call_id="call_b", content=(Text(text="error: bad json"),), native={"content": "list"}),
    )
    assert request.messages[7].content == (Text(text="Part one."), Refusal(text="I can't."))
    assert request.tools == (
        Tool(
            name="lookup",
            description="Look something up.",
            parameters={"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
            strict=True,
        ),
        Tool(name="noargs"),
        Tool(name="patch", description="Apply a patch", kind="custom", extra={"format": {"type": "text"}}),
    )
    assert request.tool_choice == ToolChoice(mode="tool", name="lookup")
    assert request.parallel_tool_calls is False
    assert request.max_tokens == 2048
    assert request.stop == ("\n\n", "END") and "stop" not in request.native
    assert (request.temperature, request.top_p, request.n, request.seed) == (0.2, 1, 1, 7)
    assert request.response_format == ResponseFormat(
        type="json_schema", name="answer", schema={"type": "object"}, strict=True, description="An answer"
    )
    assert (request.stream, request.include_usage) == (True, True)
    assert request.reasoning == ReasoningConfig(effort="low")
    assert (request.user, request.metadata, request.store) == ("user-1", {"session": "s1"}, False)
    assert set(request.extra) == {
        "logprobs",
        "top_logprobs",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "service_tier",
        "safety_identifier",
        "prompt_cache_key",
        "modalities",
        "audio",
        "prediction",
        "verbosity",
        "web_search_options",
    }


LEGACY_REQUEST: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "cached", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "function_call": {"name": "get", "arguments": "{}"}},
        {"role": "function", "name": "get", "content": "42"},
        {"role": "assistant", "content": "The answer is 42.", "reasoning_content": "It said 42."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "c1", "type": "custom", "custom": {"name": "patch", "input": "*** diff"}}],
        },
    ],
    "max_tokens": 300,
    "stop": "STOP",
    "stream": False,
    "tool_choice": "required",
    "tools": [{"type": "web_search_preview"}],
    "temperature": None,
    "max_completion_tokens": None,
}


def test_legacy_request_round_trips_exactly() -> None:
    assert roundtrip(LEGACY_REQUEST) == LEGACY_REQUEST


def test_legacy_request_decodes_to_canonical_fields() -> None:
    request = DIALECT.decode_request(LEGACY_REQUEST)
    assert request.max_tokens == 300
    assert request.stop == ("STOP",) and request.native == {"stop": "string"}
    assert request.stream is False
    assert request.temperature is None
    assert request.tool_choice == ToolChoice(mode="required")
    assert request.tools == (HostedTool(dialects=CHAT, raw={"type": "web_search_preview"}),)
    assert request.messages[0].content == (Text(text="cached", cache_control={"type": "ephemeral"}),)
    assert request.messages[2] == Message(
        role="tool",
        content=(ToolResult(call_id="get", content=(Text(text="42"),)),),
        name="get",
        extra={"role": "function"},
    )
    assert request.messages[3].content == (
        Reasoning(provider="anthropic", text="It said 42."),
        Text(text="The answer is 42."),
    )
    assert request.messages[4].content == (
        Text(text=""),
        ToolCall(id="c1", name="patch", arguments="*** diff", kind="custom"),
    )


@pytest.mark.parametrize(
    "body",
    [
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 10, "max_completion_tokens": 20},
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": None, "max_completion_tokens": 5},
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5, "max_completion_tokens": None},
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": False}},
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "stream": True,
            "stream_options": {"include_usage": True, "include_obfuscation": False},
        },
        {"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [], "tool_choice": "none"},
        {
            "model": "m",
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f", "description": None, "parameters": None}}],
            "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}},
        },
        {
            "model": "m",
            "messages": [
                {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [],
                    "audio": None,
                    "function_call": None,
                    "annotations": [],
                }
            ],
        },
        {
            "model": "m",
            "messages": [
                {
                    "role": "assistant",
                    "content": "ok",
                    "reasoning_content": "summary",
                    "thinking_blocks": [{"type": "thinking", "thinking": "summary", "signature": REASONING_SIG}],
                }
            ],
        },
        {
            "model": "m",
            "messages": [{"role": "assistant", "thinking_blocks": [{"type": "thinking", "thinking": "no sig"}]}],
        },
        {"model": "m", "messages": [{"role": "user", "content": []}], "response_format": {"type": "json_object"}},
    ],
)
def test_edge_requests_round_trip(body: dict[str, Any]) -> None:
    assert roundtrip(body) == body


def test_both_max_token_names_keep_their_values() -> None:
    body = {"model": "m", "messages": [], "max_tokens": 10, "max_completion_tokens": 20}
    assert DIALECT.decode_request(body).max_tokens == 20


def test_carry_signature_restores_reasoning_item() -> None:
    body = {
        "model": "m",
        "messages": [
            {
                "role": "assistant",
                "content": "ok",
                "thinking_blocks": [{"type": "thinking", "thinking": "summary", "signature": REASONING_SIG}],
            }
        ],
    }
    request = DIALECT.decode_request(body)
    assert request.messages[0].content == (
        Reasoning(provider="openai", id="rs_1", summary=("summary",), signature="ENC=="),
        Text(text="ok"),
    )


def test_streaming_request_always_asks_for_usage() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True}
    assert roundtrip(body) == {**body, "stream_options": {"include_usage": True}}


def test_path_model_is_used_when_body_has_none() -> None:
    assert DIALECT.decode_request({"messages": []}, path_model="from-path").model == "from-path"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"messages": []}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": {}}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0].image_url.url",
        ),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f"}}]}]},
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {"model": "m", "messages": [{"role": "assistant", "thinking_blocks": [{"type": "other"}]}]},
            "messages[0].thinking_blocks[0].type",
        ),
        ({"model": "m", "messages": [], "tools": {}}, "tools"),
        ({"model": "m", "messages": [], "tools": [{"type": "function"}]}, "tools[0].function"),
        ({"model": "m", "messages": [], "tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
        ({"model": "m", "messages": [], "tool_choice": 3}, "tool_choice"),
        ({"model": "m", "messages": [], "max_tokens": "10"}, "max_tokens"),
        ({"model": "m", "messages": [], "max_completion_tokens": True}, "max_completion_tokens"),
        ({"model": "m", "messages": [], "temperature": "hot"}, "temperature"),
        ({"model": "m", "messages": [], "stop": [1]}, "stop[0]"),
        ({"model": "m", "messages": [], "stream": "yes"}, "stream"),
        ({"model": "m", "messages": [], "stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
        ({"model": "m", "messages": [], "response_format": {"type": "xml"}}, "response_format.type"),
        ({"model": "m", "messages": [], "metadata": []}, "metadata"),
    ],
)
def test_malformed_requests_raise_with_param(body: Any, param: str | None) -> None:
    with pytest.raises(RequestError) as info:
        DIALECT.decode_request(body)
    assert info.value.error.status == 400
    assert info.value.error.kind is ErrorKind.INVALID_REQUEST
    assert info.value.error.param == param


def test_tampered_carry_signature_is_a_request_error() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "assistant", "thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "lpx1.x.y"}]}
        ],
    }
    with pytest.raises(RequestError):
        DIALECT.decode_request(body)


@pytest.mark.parametrize("fields", [{"id": 5, "enc": "e"}, {"id": "rs_1", "enc": {"x": 1}}, {"enc": ["e"]}])
def test_forged_carry_with_mistyped_fields_is_a_request_error(fields: dict[str, Any]) -> None:
    """Found by the fuzzer: the carry's MAC key is public, and a forged id or encrypted_content that is not a
    string crashed the Claude encoder (AttributeError) and reached Responses upstreams as sent."""
    signature = carry.encode_carry("openai-reasoning", fields)
    block = {"type": "thinking", "thinking": "t", "signature": signature}
    body = {"model": "m", "messages": [{"role": "assistant", "content": "ok", "thinking_blocks": [block]}]}
    with pytest.raises(RequestError) as info:
        DIALECT.decode_request(body)
    assert info.value.error.param == "messages[0].thinking_blocks[0].signature"


# ---------------------------------------------------------------------------------------------
# Encoding requests of other origins
# ---------------------------------------------------------------------------------------------


def claude_request(**fields: Any) -> Request:
    base: dict[str, Any] = {"model": "gpt-up", "messages": (), "origin": "claude"}
    return Request(**{**base, **fields})


def test_claude_tool_turn_becomes_tool_messages_then_user() -> None:
    request = claude_request(
        system=(Text(text="Be brief.", cache_control={"type": "ephemeral"}), Text(text="Use tools.")),
        native={"system": "list"},
        messages=(
            Message(role="user", content=(Text(text="look"),), native={"content": "string"}),
            Message(
                role="assistant",
                content=(
                    Reasoning(provider="anthropic", text="hmm", signature="sig"),
                    Text(text="Checking."),
                    ToolCall(id="toolu_1", name="read", arguments='{"p": 1}'),
                    ToolCall(id="toolu_2", name="shot", arguments="{}"),
                ),
            ),
            Message(
                role="user",
                content=(
                    ToolResult(call_id="toolu_1", content=(Text(text="file body"),), is_error=False),
                    ToolResult(
                        call_id="toolu_2",
                        content=(Text(text="shot taken"), Image(media_type="image/png", data="iVBOR")),
                        native={"content": "list"},
                    ),
                    Text(text="<reminder>", cache_control={"type": "ephemeral"}),
                ),
            ),
            Message(role="assistant", content=(ToolCall(id="toolu_3", name="read", arguments="{}"),)),
            Message(
                role="user",
                content=(ToolResult(call_id="toolu_3", content=(Text(text="not found"),), is_error=True),),
            ),
        ),
        tools=(
            Tool(name="read", description="Read", parameters={"type": "object"}, cache_control={"type": "ephemeral"}),
            HostedTool(dialects=frozenset({"claude", "bedrock"}), raw={"type": "web_search_20250305"}),
        ),
        tool_choice=ToolChoice(mode="tool", name="read"),
        parallel_tool_calls=False,
        max_tokens=64000,
        temperature=1,
        top_k=40,
        stop=("###",),
        stream=True,
        reasoning=ReasoningConfig(mode="enabled", budget_tokens=31999),
        user="u-1",
        metadata={"user_id": "u-1"},
        extra={"context_management": {"edits": []}},
    )
    assert DIALECT.encode_request(request, OPTIONS) == {
        "model": "gpt-up",
        "messages": [
            {
                "role": "system",
                "content": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use tools."}],
            },
            {"role": "user", "content": "look"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "read", "arguments": '{"p": 1}'}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "shot", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "file body"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "shot taken"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Image returned by tool call toolu_2:"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                    {"type": "text", "text": "<reminder>"},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "toolu_3", "type": "function", "function": {"name": "read", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "toolu_3", "content": "Error: not found"},
        ],
        "tools": [
            {"type": "function", "function": {"name": "read", "description": "Read", "parameters": {"type": "object"}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "read"}},
        "parallel_tool_calls": False,
        "max_completion_tokens": 64000,
        "temperature": 1,
        "stop": ["###"],
        "stream": True,
        "stream_options": {"include_usage": True},
        "reasoning_effort": "high",
        "user": "u-1",
    }


def test_single_system_string_and_images_only_tool_result() -> None:
    request = claude_request(
        system=(Text(text="Sys."),),
        messages=(
            Message(
                role="user",
                content=(
                    ToolResult(
                        call_id="t1", content=(Image(url="https://x/y.png"),), native={"content": "list"}, is_error=True
                    ),
                ),
            ),
            Message(role="assistant", content=(Reasoning(provider="anthropic", text="only thinking", signature="s"),)),
        ),
    )
    assert DIALECT.encode_request(request, OPTIONS) == {
        "model": "gpt-up",
        "messages": [
            {"role": "system", "content": "Sys."},
            {"role": "tool", "tool_call_id": "t1", "content": "Error: "},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Image returned by tool call t1:"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                ],
            },
            {"role": "assistant", "content": ""},
        ],
    }


def test_error_prefix_is_not_doubled_and_applies_to_first_text_part() -> None:
    request = claude_request(
        messages=(
            Message(
                role="user",
                content=(
                    ToolResult(call_id="a", content=(Text(text="Error: already"),), is_error=True),
                    ToolResult(
                        call_id="b", content=(Text(text="x"), Text(text="y")), native={"content": "list"}, is_error=True
                    ),
                ),
            ),
        )
    )
    assert DIALECT.encode_request(request, OPTIONS)["messages"] == [
        {"role": "tool", "tool_call_id": "a", "content": "Error: already"},
        {
            "role": "tool",
            "tool_call_id": "b",
            "content": [{"type": "text", "text": "Error: x"}, {"type": "text", "text": "y"}],
        },
    ]


def test_images_of_foreign_tool_messages_follow_all_tool_messages() -> None:
    # a Responses-style decode keeps role=tool messages; the images wait until the tool messages end
    request = Request(
        model="m",
        origin="openai-responses",
        messages=(
            Message(role="tool", content=(ToolResult(call_id="c1", content=(Image(url="https://i/1.png"),)),)),
            Message(role="tool", content=(ToolResult(call_id="c2", content=(Text(text="ok"),)),)),
            Message(role="user", content=(Text(text="next"),), native={"content": "string"}),
        ),
        store=True,
        previous_response_id="resp_1",
        reasoning=ReasoningConfig(effort="medium", summary="auto"),
        response_format=ResponseFormat(type="json_schema", schema={"type": "object"}),
    )
    assert DIALECT.encode_request(request, OPTIONS) == {
        "model": "m",
        "messages": [
            {"role": "tool", "tool_call_id": "c1", "content": ""},
            {"role": "tool", "tool_call_id": "c2", "content": "ok"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Image returned by tool call c1:"},
                    {"type": "image_url", "image_url": {"url": "https://i/1.png"}},
                ],
            },
            {"role": "user", "content": "next"},
        ],
        "reasoning_effort": "medium",
        "response_format": {"type": "json_schema", "json_schema": {"name": "response", "schema": {"type": "object"}}},
    }


@pytest.mark.parametrize(
    ("reasoning", "effort"),
    [
        (ReasoningConfig(mode="enabled", budget_tokens=1024), "low"),
        (ReasoningConfig(mode="enabled", budget_tokens=4096), "low"),
        (ReasoningConfig(mode="enabled", budget_tokens=4097), "medium"),
        (ReasoningConfig(mode="enabled", budget_tokens=16384), "medium"),
        (ReasoningConfig(mode="enabled", budget_tokens=16385), "high"),
        (ReasoningConfig(mode="adaptive", effort="max"), "max"),
        (ReasoningConfig(mode="adaptive"), None),
        (ReasoningConfig(mode="disabled", budget_tokens=2000), None),
        (None, None),
    ],
)
def test_reasoning_effort_table(reasoning: ReasoningConfig | None, effort: str | None) -> None:
    body = DIALECT.encode_request(claude_request(reasoning=reasoning), OPTIONS)
    assert body.get("reasoning_effort") == effort


def test_all_tools_dropped_removes_tool_choice() -> None:
    request = claude_request(
        tools=(HostedTool(dialects=frozenset({"claude"}), raw={"type": "bash_20250124"}),),
        tool_choice=ToolChoice(mode="auto"),
        parallel_tool_calls=True,
    )
    assert DIALECT.encode_request(request, OPTIONS) == {"model": "gpt-up", "messages": []}


def test_foreign_custom_tool_and_choice() -> None:
    request = Request(
        model="m",
        origin="openai-responses",
        messages=(),
        tools=(Tool(name="apply", kind="custom", extra={"format": {"type": "grammar"}, "x": 1}),),
        tool_choice=ToolChoice(mode="tool", name="apply"),
    )
    body = DIALECT.encode_request(request, OPTIONS)
    assert body["tools"] == [{"type": "custom", "custom": {"name": "apply", "format": {"type": "grammar"}}}]
    assert body["tool_choice"] == {"type": "custom", "custom": {"name": "apply"}}


def test_claude_code_fixture_encodes_to_valid_chat_shape() -> None:
    from tests.fixtures import load_request

    claude = get_dialect("claude")
    body = load_request("claude_code_tool_result_turn")["body"]
    chat = DIALECT.encode_request(claude.decode_request(body), OPTIONS)
    roles = [m["role"] for m in chat["messages"]]
    assert roles[0] == "system" and roles[-2:] == ["assistant", "tool"]
    tool_use = body["messages"][-2]["content"][0]
    assert chat["messages"][-2]["tool_calls"][0]["id"] == tool_use["id"]
    assert chat["messages"][-1]["tool_call_id"] == tool_use["id"]
    assert orjson.loads(chat["messages"][-2]["tool_calls"][0]["function"]["arguments"]) == tool_use["input"]
    assert chat["stream_options"] == {"include_usage": True}
    assert "thinking" not in chat and "context_management" not in chat and "metadata" not in chat


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------

CHAT_REQUEST = DIALECT.decode_request({"model": "client-model", "messages": []})


def test_decode_response() -> None:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-up-2025",
        "system_fingerprint": "fp_1",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello",
                    "refusal": None,
                    "reasoning_content": "thinking...",
                    "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            },
            {"index": 1, "message": {"role": "assistant", "content": "ignored"}, "finish_reason": "stop"},
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": 60},
            "completion_tokens_details": {"reasoning_tokens": 5},
        },
    }
    assert DIALECT.decode_response(body, CHAT_REQUEST) == Response(
        id="chatcmpl-1",
        model="gpt-up-2025",
        content=(
            Reasoning(provider="anthropic", text="thinking..."),
            Text(text="Hello"),
            ToolCall(id="call_1", name="f", arguments="{}"),
        ),
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=40, output_tokens=20, cache_read_tokens=60, reasoning_tokens=5),
        created=1700000000,
        extra={"system_fingerprint": "fp_1"},
        origin="openai-chat",
    )


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", StopReason.END_TURN),
        ("length", StopReason.MAX_TOKENS),
        ("tool_calls", StopReason.TOOL_USE),
        ("function_call", StopReason.TOOL_USE),
        ("content_filter", StopReason.CONTENT_FILTER),
        (None, None),
    ],
)
def test_decode_finish_reasons(finish: str | None, stop: StopReason | None) -> None:
    body = {"id": "x", "choices": [{"message": {"content": "a"}, "finish_reason": finish}]}
    assert DIALECT.decode_response(body, CHAT_REQUEST).stop_reason == stop


@pytest.mark.parametrize("body", [{}, {"choices": []}, {"choices": [{"message": 3}]}, []])
def test_decode_malformed_response_is_upstream_error(body: Any) -> None:
    with pytest.raises(UpstreamError) as info:
        DIALECT.decode_response(body, CHAT_REQUEST)
    assert info.value.error.status == 502


def test_encode_response_from_claude_with_thinking() -> None:
    response = Response(
        id="msg_01",
        model="claude-upstream",
        content=(
            Reasoning(provider="anthropic", text="Let me think.", signature="sig1"),
            Reasoning(provider="anthropic", redacted="REDACTED"),
            Reasoning(provider="openai", id="rs_9", summary=("First.", "Second."), signature="E"),
            Text(text="Hi "),
            Text(text="there"),
            ToolCall(id="toolu_1", name="f", arguments='{"a": 1}'),
        ),
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=10, output_tokens=7, cache_read_tokens=100, cache_write_tokens=5, reasoning_tokens=3),
        created=1700000001,
        origin="claude",
        extra={"container": None},
    )
    encoded = orjson.loads(DIALECT.encode_response(response, CHAT_REQUEST))
    signature = carry.encode_carry("openai-reasoning", {"id": "rs_9", "enc": "E"})
    assert encoded == {
        "id": "chatcmpl-msg_01",
        "object": "chat.completion",
        "created": 1700000001,
        "model": "client-model",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hi there",
                    "refusal": None,
                    "tool_calls": [
                        {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
                    ],
                    "reasoning_content": "Let me think.First.\n\nSecond.",
                    "thinking_blocks": [
                        {"type": "thinking", "thinking": "Let me think.", "signature": "sig1"},
                        {"type": "redacted_thinking", "data": "REDACTED"},
                        {"type": "thinking", "thinking": "First.\n\nSecond.", "signature": signature},
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 115,
            "completion_tokens": 7,
            "total_tokens": 122,
            "prompt_tokens_details": {"cached_tokens": 100},
            "completion_tokens_details": {"reasoning_tokens": 3},
        },
    }
    ChatCompletion.model_validate(encoded)
    # the client sends the message back: the thinking comes back exactly (the reasoning item as one summary)
    replay = DIALECT.decode_request(
        {"model": "m", "messages": [{k: v for k, v in encoded["choices"][0]["message"].items() if k != "refusal"}]}
    )
    assert replay.messages[0].content[:3] == (
        Reasoning(provider="anthropic", text="Let me think.", signature="sig1"),
        Reasoning(provider="anthropic", redacted="REDACTED"),
        Reasoning(provider="openai", id="rs_9", summary=("First.\n\nSecond.",), signature="E"),
    )


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        (StopReason.END_TURN, "stop"),
        (StopReason.STOP_SEQUENCE, "stop"),
        (StopReason.PAUSE_TURN, "stop"),
        (StopReason.MAX_TOKENS, "length"),
        (StopReason.CONTEXT_WINDOW_EXCEEDED, "length"),
        (StopReason.TOOL_USE, "tool_calls"),
        (StopReason.REFUSAL, "content_filter"),
        (StopReason.CONTENT_FILTER, "content_filter"),
        (None, "stop"),
    ],
)
def test_encode_finish_reasons(stop: StopReason | None, finish: str) -> None:
    response = Response(id="chatcmpl-keep", model="x", content=(Refusal(text="no"),), stop_reason=stop, created=5)
    encoded = orjson.loads(DIALECT.encode_response(response, CHAT_REQUEST))
    assert encoded["id"] == "chatcmpl-keep"
    assert encoded["choices"][0]["finish_reason"] == finish
    assert encoded["choices"][0]["message"] == {"role": "assistant", "content": "", "refusal": "no"}
    ChatCompletion.model_validate(encoded)


def test_encode_response_of_chat_origin_keeps_fingerprint_and_unsigned_reasoning() -> None:
    response = Response(
        id="chatcmpl-2",
        model="up",
        content=(Reasoning(provider="anthropic", text="plain"), Text(text="ok")),
        stop_reason=StopReason.END_TURN,
        created=9,
        extra={"system_fingerprint": "fp"},
        origin="openai-chat",
    )
    encoded = orjson.loads(DIALECT.encode_response(response, CHAT_REQUEST))
    assert encoded["system_fingerprint"] == "fp"
    assert encoded["choices"][0]["message"] == {
        "role": "assistant",
        "content": "ok",
        "refusal": None,
        "reasoning_content": "plain",
    }
    ChatCompletion.model_validate(encoded)


# ---------------------------------------------------------------------------------------------
# Stream decoder
# ---------------------------------------------------------------------------------------------


def sse(*chunks: dict[str, Any] | str) -> bytes:
    return b"".join(b"data: " + (c.encode() if isinstance(c, str) else orjson.dumps(c)) + b"\n\n" for c in chunks)


def chunk(delta: dict[str, Any], finish: str | None = None, **top: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-up",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
        **top,
    }


def tool_fragment(index: int, arguments: str, call_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        fragment.update(id=call_id, type="function")
        fragment["function"]["name"] = name
    return fragment


TRANSCRIPT = sse(
    chunk({"role": "assistant", "content": "", "refusal": None}),
    chunk({"reasoning_content": "Think"}),
    chunk({"reasoning_content": "ing…"}),
    chunk({"content": "Héllo"}),
    chunk({"content": " wörld"}),
    chunk({"tool_calls": [tool_fragment(0, "", "call_A", "get")]}),
    chunk({"tool_calls": [tool_fragment(0, '{"ci')]}),
    chunk({"tool_calls": [tool_fragment(0, 'ty": "Paris"}')]}),
    chunk({"tool_calls": [tool_fragment(1, "", "call_B", "time")]}),
    chunk({"tool_calls": [tool_fragment(1, "{}")]}),
    chunk({}, "tool_calls"),
    {
        "id": "chatcmpl-up",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-up",
        "choices": [],
        "usage": {
            "prompt_tokens": 50,
            "completion_tokens": 30,
            "total_tokens": 80,
            "prompt_tokens_details": {"cached_tokens": 20},
            "completion_tokens_details": {"reasoning_tokens": 4},
        },
    },
    "[DONE]",
)

TRANSCRIPT_EVENTS: list[StreamEvent] = [
    MessageStart(id="chatcmpl-up", model="gpt-up", created=1700000000),
    BlockStart(index=0, kind="thinking"),
    ThinkingDelta(index=0, text="Think"),
    ThinkingDelta(index=0, text="ing…"),
    BlockStop(index=0),
    BlockStart(index=1, kind="text"),
    TextDelta(index=1, text="Héllo"),
    TextDelta(index=1, text=" wörld"),
    BlockStop(index=1),
    BlockStart(index=2, kind="tool_call", id="call_A", name="get"),
    ToolArgsDelta(index=2, partial_json='{"ci'),
    ToolArgsDelta(index=2, partial_json='ty": "Paris"}'),
    BlockStop(index=2),
    BlockStart(index=3, kind="tool_call", id="call_B", name="time"),
    ToolArgsDelta(index=3, partial_json="{}"),
    BlockStop(index=3),
    Finish(
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=30, output_tokens=30, cache_read_tokens=20, reasoning_tokens=4),
    ),
]


def decode_all(data: bytes, pieces: list[int] | None = None, request: Request = CHAT_REQUEST) -> list[StreamEvent]:
    decoder = DIALECT.stream_decoder(request)
    events: list[StreamEvent] = []
    start = 0
    for cut in [*(pieces or []), len(data)]:
        events += decoder.feed(data[start:cut])
        start = cut
    return events + decoder.close()


def test_stream_decoder_transcript() -> None:
    assert decode_all(TRANSCRIPT) == TRANSCRIPT_EVENTS


def test_stream_decoder_every_split_point() -> None:
    for cut in range(len(TRANSCRIPT) + 1):
        assert decode_all(TRANSCRIPT, [cut]) == TRANSCRIPT_EVENTS, cut


def test_stream_decoder_one_byte_at_a_time_and_crlf() -> None:
    assert decode_all(TRANSCRIPT, list(range(1, len(TRANSCRIPT)))) == TRANSCRIPT_EVENTS
    crlf = TRANSCRIPT.replace(b"\n", b"\r\n")
    assert decode_all(crlf, list(range(1, len(crlf)))) == TRANSCRIPT_EVENTS


def test_stream_cut_before_finish_is_an_error() -> None:
    cut = TRANSCRIPT[: TRANSCRIPT.index(b'"finish_reason":"tool_calls"') - 200]
    events = decode_all(cut)
    assert events[-1] == StreamError(
        error=ProxyError(status=502, kind=ErrorKind.API_ERROR, message="upstream closed the stream before it finished")
    )
    assert sum(isinstance(e, StreamError | Finish) for e in events) == 1


def test_stream_without_done_after_finish_reason_finishes() -> None:
    data = sse(chunk({"content": "hi"}), chunk({}, "stop"))
    assert decode_all(data) == [
        MessageStart(id="chatcmpl-up", model="gpt-up", created=1700000000),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="hi"),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.END_TURN),
    ]


def test_stream_error_object_ends_the_stream() -> None:
    error = {"error": {"message": "Rate limit reached", "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}
    data = sse(chunk({"content": "hi"}), error, chunk({"content": "after"}), "[DONE]")
    events = decode_all(data)
    assert events == [
        MessageStart(id="chatcmpl-up", model="gpt-up", created=1700000000),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="hi"),
        StreamError(
            error=ProxyError(
                status=429, kind=ErrorKind.RATE_LIMIT, message="Rate limit reached", code="rate_limit_exceeded"
            )
        ),
    ]


def test_stream_invalid_json_is_an_error() -> None:
    events = decode_all(b"data: {not json\n\n")
    assert events == [
        StreamError(
            error=ProxyError(status=502, kind=ErrorKind.API_ERROR, message="upstream sent a chunk that is not JSON")
        )
    ]


def test_stream_done_only_synthesizes_start() -> None:
    events = decode_all(b": keepalive\n\ndata: [DONE]\n\n")
    assert len(events) == 2 and isinstance(events[0], MessageStart) and events[0].model == "client-model"
    assert events[1] == Finish(stop_reason=None)


def test_stream_thinking_blocks_reasoning_alias_refusal_and_missing_index() -> None:
    data = sse(
        chunk({"reasoning": "plan"}),
        chunk({"thinking_blocks": [{"type": "thinking", "thinking": "plan", "signature": "SIG"}]}),
        chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": "RED"}]}),
        chunk({"thinking_blocks": [{"type": "thinking", "thinking": "whole", "signature": "S2"}]}),
        chunk({"refusal": "No."}),
        chunk({"tool_calls": [{"id": "c9", "type": "function", "function": {"name": "f", "arguments": "{"}}]}),
        chunk({"tool_calls": [{"function": {"arguments": "}"}}]}),
        {**chunk({}, "content_filter"), "choices": [{"index": 1, "delta": {"content": "other choice"}}]},
        chunk({}, "content_filter"),
        "[DONE]",
    )
    assert decode_all(data)[1:] == [
        BlockStart(index=0, kind="thinking"),
        ThinkingDelta(index=0, text="plan"),
        SignatureDelta(index=0, signature="SIG"),
        BlockStop(index=0),
        BlockStart(index=1, kind="redacted_thinking", data="RED"),
        BlockStop(index=1),
        BlockStart(index=2, kind="thinking"),
        ThinkingDelta(index=2, text="whole"),
        SignatureDelta(index=2, signature="S2"),
        BlockStop(index=2),
        BlockStart(index=3, kind="refusal"),
        TextDelta(index=3, text="No."),
        BlockStop(index=3),
        BlockStart(index=4, kind="tool_call", id="c9", name="f"),
        ToolArgsDelta(index=4, partial_json="{"),
        ToolArgsDelta(index=4, partial_json="}"),
        BlockStop(index=4),
        Finish(stop_reason=StopReason.CONTENT_FILTER),
    ]


# ---------------------------------------------------------------------------------------------
# Stream encoder
# ---------------------------------------------------------------------------------------------

STREAM_REQUEST = DIALECT.decode_request(
    {"model": "client-model", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
)
PLAIN_STREAM_REQUEST = DIALECT.decode_request({"model": "client-model", "messages": [], "stream": True})

ENCODER_EVENTS: list[StreamEvent] = [
    MessageStart(id="msg_01", model="claude-up", created=1700000000),
    BlockStart(index=0, kind="thinking"),
    ThinkingDelta(index=0, text="Hm"),
    SignatureDelta(index=0, signature="SIG"),
    BlockStop(index=0),
    BlockStart(index=1, kind="text"),
    TextDelta(index=1, text="Hi"),
    BlockStop(index=1),
    BlockStart(index=2, kind="tool_call", id="toolu_1", name="get"),
    ToolArgsDelta(index=2, partial_json='{"a":'),
    ToolArgsDelta(index=2, partial_json="1}"),
    BlockStop(index=2),
    BlockStart(index=3, kind="tool_call", id="toolu_2", name="put"),
    BlockStop(index=3),
    Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=5, output_tokens=9, cache_read_tokens=3)),
]

_HEAD = '{"id":"chatcmpl-msg_01","object":"chat.completion.chunk","created":1700000000,"model":"client-model",'


def _line(delta: str, finish: str = "null", usage: bool = True) -> bytes:
    tail = ',"usage":null' if usage else ""
    return (
        f'data: {_HEAD}"choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]{tail}}}\n\n'
    ).encode()


def encode_all(events: list[StreamEvent], request: Request) -> bytes:
    encoder = DIALECT.stream_encoder(request)
    return b"".join(encoder.encode(e) for e in events) + encoder.close()


def test_stream_encoder_exact_bytes() -> None:
    assert encode_all(ENCODER_EVENTS, STREAM_REQUEST) == b"".join(
        [
            _line('{"role":"assistant","content":""}'),
            _line('{"reasoning_content":"Hm"}'),
            _line('{"thinking_blocks":[{"type":"thinking","thinking":"Hm","signature":"SIG"}]}'),
            _line('{"content":"Hi"}'),
            _line(
                '{"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"get","arguments":""}}]}'
            ),
            _line('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"a\\":"}}]}'),
            _line('{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]}'),
            _line(
                '{"tool_calls":[{"index":1,"id":"toolu_2","type":"function","function":{"name":"put","arguments":""}}]}'
            ),
            _line("{}", '"tool_calls"'),
            (
                f'data: {_HEAD}"choices":[],"usage":{{"prompt_tokens":8,"completion_tokens":9,"total_tokens":17,'
                '"prompt_tokens_details":{"cached_tokens":3},"completion_tokens_details":{"reasoning_tokens":0}}}\n\n'
            ).encode(),
            b"data: [DONE]\n\n",
        ]
    )


def test_stream_encoder_without_include_usage() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="chatcmpl-same", model="x", created=1700000000),
        BlockStart(index=0, kind="refusal"),
        TextDelta(index=0, text="No"),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.REFUSAL, usage=Usage(input_tokens=1, output_tokens=1)),
    ]
    head = '{"id":"chatcmpl-same","object":"chat.completion.chunk","created":1700000000,"model":"client-model",'
    choice = '"choices":[{"index":0,"delta":'
    assert (
        encode_all(events, PLAIN_STREAM_REQUEST)
        == (
            f'data: {head}{choice}{{"role":"assistant","content":""}},"logprobs":null,"finish_reason":null}}]}}\n\n'
            f'data: {head}{choice}{{"refusal":"No"}},"logprobs":null,"finish_reason":null}}]}}\n\n'
            f'data: {head}{choice}{{}},"logprobs":null,"finish_reason":"content_filter"}}]}}\n\n'
            "data: [DONE]\n\n"
        ).encode()
    )


def chunks_of(data: bytes) -> list[Any]:
    parts = [p for p in data.split(b"\n\n") if p]
    assert all(p.startswith(b"data: ") for p in parts)
    return [p[6:].decode() if p == b"data: [DONE]" else orjson.loads(p[6:]) for p in parts]


def test_stream_encoder_chunks_validate_with_openai_sdk() -> None:
    events = [*ENCODER_EVENTS[:1], BlockStart(index=0, kind="reasoning", id="rs_1"), ThinkingDelta(index=0, text="s")]
    events += [SignatureDelta(index=0, signature="ENC"), BlockStop(index=0), *ENCODER_EVENTS[5:]]
    for request in (STREAM_REQUEST, PLAIN_STREAM_REQUEST):
        chunks = chunks_of(encode_all(events, request))
        assert chunks[-1] == "[DONE]"
        for item in chunks[:-1]:
            ChatCompletionChunk.model_validate(item)
    reasoning_chunk = chunks_of(encode_all(events, PLAIN_STREAM_REQUEST))[2]
    assert reasoning_chunk["choices"][0]["delta"] == {
        "thinking_blocks": [
            {
                "type": "thinking",
                "thinking": "s",
                "signature": carry.encode_carry("openai-reasoning", {"id": "rs_1", "enc": "ENC"}),
            }
        ]
    }


def test_decoder_reads_encoder_output_back() -> None:
    data = encode_all(ENCODER_EVENTS, STREAM_REQUEST)
    expected = [MessageStart(id="chatcmpl-msg_01", model="client-model", created=1700000000), *ENCODER_EVENTS[1:]]
    assert decode_all(data) == expected
    for cut in range(len(data) + 1):
        assert decode_all(data, [cut]) == expected


def test_stream_encoder_error_ends_output() -> None:
    encoder = DIALECT.stream_encoder(STREAM_REQUEST)
    out = encoder.encode(ENCODER_EVENTS[0]) + encoder.encode(ENCODER_EVENTS[1])
    error = ProxyError(status=529, kind=ErrorKind.OVERLOADED, message="Overloaded")
    tail = encoder.encode(StreamError(error=error))
    assert tail == b'data: {"error":{"message":"Overloaded","type":"server_error","param":null,"code":null}}\n\n'
    assert encoder.encode(ENCODER_EVENTS[2]) == b"" and encoder.close() == b""
    assert out.startswith(b"data: ")


def test_stream_encoder_error_before_start() -> None:
    encoder = DIALECT.stream_encoder(STREAM_REQUEST)
    error = ProxyError(status=400, kind=ErrorKind.CONTEXT_LENGTH, message="too long", param="messages")
    assert encoder.encode(StreamError(error=error)) == (
        b'data: {"error":{"message":"too long","type":"invalid_request_error","param":"messages",'
        b'"code":"context_length_exceeded"}}\n\n'
    )
    assert encoder.close() == b""


# ---------------------------------------------------------------------------------------------
# Errors and upstream plumbing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (
            429,
            b'{"error":{"message":"Rate limit","type":"requests","param":null,"code":"rate_limit_exceeded"}}',
            {"Retry-After": "3"},
            ProxyError(
                status=429, kind=ErrorKind.RATE_LIMIT, message="Rate limit", code="rate_limit_exceeded", retry_after="3"
            ),
        ),
        (
            400,
            b'{"error":{"message":"This model\'s maximum context length is 128000 tokens",'
            b'"type":"invalid_request_error",'
            b'"param":"messages","code":"context_length_exceeded"}}',
            {},
            ProxyError(
                status=400,
                kind=ErrorKind.CONTEXT_LENGTH,
                message="This model's maximum context length is 128000 tokens",
                param="messages",
                code="context_length_exceeded",
            ),
        ),
        (
            404,
            b'{"error":{"message":"no such model","type":"invalid_request_error","param":null,'
            b'"code":"model_not_found"}}',
            {},
            ProxyError(status=404, kind=ErrorKind.NOT_FOUND, message="no such model", code="model_not_found"),
        ),
        (
            401,
            b'{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}',
            {},
            ProxyError(status=401, kind=ErrorKind.AUTHENTICATION, message="bad key", code="invalid_api_key"),
        ),
        (
            400,
            b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens"}}',
            {},
            ProxyError(status=400, kind=ErrorKind.CONTEXT_LENGTH, message="prompt is too long: 210000 tokens"),
        ),
        (
            529,
            b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            {},
            ProxyError(status=529, kind=ErrorKind.OVERLOADED, message="Overloaded"),
        ),
        (
            503,
            b"<html>Service Unavailable</html>",
            {},
            ProxyError(status=503, kind=ErrorKind.OVERLOADED, message="<html>Service Unavailable</html>"),
        ),
        (500, b"", {}, ProxyError(status=500, kind=ErrorKind.API_ERROR, message="upstream returned HTTP 500")),
        (
            502,
            b'{"error":"bad gateway"}',
            {},
            ProxyError(status=502, kind=ErrorKind.UPSTREAM_UNREACHABLE, message="bad gateway"),
        ),
        (
            418,
            b'{"message":"teapot", "code": 5}',
            {},
            ProxyError(status=418, kind=ErrorKind.INVALID_REQUEST, message="teapot"),
        ),
        (500, b"x" * 600, {}, ProxyError(status=500, kind=ErrorKind.API_ERROR, message="x" * 500)),
    ],
)
def test_decode_error(status: int, body: bytes, headers: dict[str, str], expected: ProxyError) -> None:
    assert DIALECT.decode_error(status, body, headers) == expected


@pytest.mark.parametrize(
    ("error", "status", "body", "headers"),
    [
        (
            ProxyError(status=400, kind=ErrorKind.INVALID_REQUEST, message="bad", param="messages[0]"),
            400,
            {"message": "bad", "type": "invalid_request_error", "param": "messages[0]", "code": None},
            (),
        ),
        (
            ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="slow down", retry_after="12"),
            429,
            {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"},
            (("Retry-After", "12"),),
        ),
        (
            ProxyError(status=529, kind=ErrorKind.OVERLOADED, message="Overloaded"),
            503,
            {"message": "Overloaded", "type": "server_error", "param": None, "code": None},
            (),
        ),
        (
            ProxyError(status=500, kind=ErrorKind.UPSTREAM_UNREACHABLE, message="connect failed"),
            502,
            {"message": "connect failed", "type": "server_error", "param": None, "code": None},
            (),
        ),
        (
            ProxyError(status=500, kind=ErrorKind.TIMEOUT, message="timed out"),
            504,
            {"message": "timed out", "type": "server_error", "param": None, "code": None},
            (),
        ),
        (
            ProxyError(status=401, kind=ErrorKind.AUTHENTICATION, message="no", code="invalid_api_key"),
            401,
            {"message": "no", "type": "authentication_error", "param": None, "code": "invalid_api_key"},
            (),
        ),
    ],
)
def test_encode_error(
    error: ProxyError, status: int, body: dict[str, Any], headers: tuple[tuple[str, str], ...]
) -> None:
    rendered = DIALECT.encode_error(error)
    assert (rendered.status, orjson.loads(rendered.body), rendered.headers) == (status, {"error": body}, headers)
    assert rendered.content_type == "application/json"


def test_upstream_path_and_headers() -> None:
    assert DIALECT.name == "openai-chat"
    assert get_dialect("openai-chat") is DIALECT
    assert DIALECT.upstream_path(CHAT_REQUEST) == "/v1/chat/completions"
    assert DIALECT.upstream_headers(CHAT_REQUEST, {"Authorization": "Bearer x"}) == {}
    assert DIALECT.stream_encoder(CHAT_REQUEST).content_type == "text/event-stream"


def test_stream_litellm_style_thinking_blocks_on_every_delta() -> None:
    # LiteLLM repeats each thinking delta in thinking_blocks and sends the signature in a last one
    data = sse(
        chunk(
            {"reasoning_content": "a", "thinking_blocks": [{"type": "thinking", "thinking": "a", "signature": None}]}
        ),
        chunk({"reasoning_content": "b", "thinking_blocks": [{"type": "thinking", "thinking": "b"}]}),
        chunk({"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "SIG"}]}),
        chunk({"content": "ok"}, "stop"),
        "[DONE]",
    )
    assert decode_all(data)[1:] == [
        BlockStart(index=0, kind="thinking"),
        ThinkingDelta(index=0, text="a"),
        ThinkingDelta(index=0, text="b"),
        SignatureDelta(index=0, signature="SIG"),
        BlockStop(index=0),
        BlockStart(index=1, kind="text"),
        TextDelta(index=1, text="ok"),
        BlockStop(index=1),
        Finish(stop_reason=StopReason.END_TURN),
    ]
