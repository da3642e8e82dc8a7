"""The openai-responses codec: requests (Codex fixtures, item variety, cross-origin), responses, streams, errors.

Every encoded stream event and final response is also validated by the official SDK's own types
(``openai.types.responses``), the schema Codex and the OpenAI SDK parse.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

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
from llm_proxy.dialects.openai_responses import DIALECT, custom_tool_input, effort_for_budget
from llm_proxy.errors import RequestError, UpstreamError
from llm_proxy.framing.carry import decode_carry, encode_carry
from llm_proxy.framing.sse import SSEParser, encode_event
from tests.fixtures import load_request, request_names

OPTIONS = EncodeOptions()
FAMILY = frozenset({"openai-responses"})
EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def round_trip(body: dict[str, Any]) -> Any:
    return DIALECT.encode_request(DIALECT.decode_request(body), OPTIONS)


# ---------------------------------------------------------------------------------------------
# Requests: decoding and the same-dialect round trip
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", request_names("codex_"))
def test_codex_fixture_round_trip_is_exact(name: str) -> None:
    body = load_request(name)["body"]
    assert round_trip(body) == body


def test_codex_tool_turn_decodes_to_canonical_turns() -> None:
    body = load_request("codex_function_call_output_turn")["body"]
    request = DIALECT.decode_request(body)
    assert request.origin == "openai-responses"
    assert request.model == "gpt-fake"
    assert request.stream is True
    assert request.store is False
    assert request.reasoning == ReasoningConfig(summary="auto")
    assert request.tool_choice == ToolChoice(mode="auto")
    assert request.parallel_tool_calls is True
    assert request.system is None
    assert set(request.extra) == {"include", "prompt_cache_key", "client_metadata"}
    assert request.extra["include"] == ["reasoning.encrypted_content"]
    assert request.tools is not None
    kinds = [(type(t).__name__, t.name if isinstance(t, Tool) else t.raw["type"]) for t in request.tools]
    assert kinds == [
        ("Tool", "exec_command"),
        ("Tool", "write_stdin"),
        ("Tool", "request_user_input"),
        ("Tool", "view_image"),
        ("HostedTool", "namespace"),
        ("Tool", "get_goal"),
        ("Tool", "create_goal"),
        ("Tool", "update_goal"),
        ("HostedTool", "web_search"),
    ]
    assert request.tools[-1] == HostedTool(dialects=FAMILY, raw={"type": "web_search", "external_web_access": False})
    assert [m.role for m in request.messages] == ["developer", "developer", "user", "user", "assistant", "tool"]
    assert request.messages[3] == Message(
        role="user",
        content=(Text(text="say hi"),),
        extra={"type": "message", "id": "msg_01a20fd2-1fcd-7ad3-81e6-266b2942dbff"},
    )
    assert request.messages[4] == Message(
        role="assistant",
        content=(
            ToolCall(
                id="call_fake_1",
                name="exec_command",
                arguments='{"cmd": "echo tool-ran-ok"}',
                item_id="fc_fake_1",
                extra={"status": "completed"},
            ),
        ),
    )
    output = body["input"][-1]["output"]
    assert request.messages[5] == Message(
        role="tool",
        content=(
            ToolResult(
                call_id="call_fake_1",
                content=(Text(text=output),),
                extra={"id": "fco_01a20fd2-2066-78e0-8620-bcd21075ded7"},
            ),
        ),
    )


def test_string_input_and_instructions() -> None:
    body = {"model": "gpt-5", "input": "hello", "instructions": "Be brief.", "max_output_tokens": 100, "stream": False}
    request = DIALECT.decode_request(body)
    assert request.messages == (Message(role="user", content=(Text(text="hello"),), native={"content": "string"}),)
    assert request.system == (Text(text="Be brief."),)
    assert request.max_tokens == 100
    assert request.stream is False
    assert round_trip(body) == body


def test_items_form_single_user_message_stays_items() -> None:
    body = {"model": "m", "input": [{"role": "user", "content": "hello"}]}
    assert round_trip(body) == body
    assert round_trip({"model": "m"}) == {"model": "m"}


VARIETY_INPUT: list[Any] = [
    {
        "type": "message",
        "role": "user",
        "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"},
            {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
            {"type": "input_image", "file_id": "file-abc", "detail": "auto"},
            {"type": "input_file", "file_id": "file-pdf"},
        ],
    },
    {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "Plan."}],
        "encrypted_content": "gAAA",
    },
    {
        "type": "message",
        "role": "assistant",
        "id": "msg_1",
        "status": "completed",
        "content": [
            {"type": "output_text", "text": "Checking.", "annotations": [{"type": "url_citation", "url": "u"}]},
        ],
    },
    {"type": "function_call", "call_id": "call_a", "name": "ls", "arguments": "{}", "id": "fc_a"},
    {"type": "custom_tool_call", "call_id": "call_b", "name": "apply_patch", "input": "*** Begin Patch"},
    {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "q"}},
    {
        "type": "function_call_output",
        "call_id": "call_a",
        "output": [
            {"type": "input_text", "text": "a.txt"},
            {"type": "input_image", "image_url": "https://example.com/shot.png", "detail": "low"},
        ],
    },
    {"type": "custom_tool_call_output", "call_id": "call_b", "output": "Done!"},
    {"id": "msg_old"},
    {"type": "some_future_item", "payload": 1},
    {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
    {"role": "developer", "content": [{"type": "input_text", "text": "rule"}]},
]


def test_input_item_variety_decodes_exactly() -> None:
    body = {"model": "gpt-5", "input": VARIETY_INPUT}
    messages = DIALECT.decode_request(body).messages
    assert messages == (
        Message(
            role="user",
            content=(
                Text(text="look"),
                Image(media_type="image/png", data="iVBORw0KGgo=", detail="high"),
                Image(url="https://example.com/cat.jpg"),
                Opaque(dialects=FAMILY, raw={"type": "input_image", "file_id": "file-abc", "detail": "auto"}),
                Opaque(dialects=FAMILY, raw={"type": "input_file", "file_id": "file-pdf"}),
            ),
            extra={"type": "message"},
        ),
        # reasoning + assistant message + calls + hosted item: ONE assistant turn, in item order
        Message(
            role="assistant",
            content=(
                Reasoning(provider="openai", id="rs_1", summary=("Plan.",), signature="gAAA"),
                Text(text="Checking.", extra={"annotations": [{"type": "url_citation", "url": "u"}]}),
                ToolCall(id="call_a", name="ls", arguments="{}", item_id="fc_a"),
                ToolCall(id="call_b", name="apply_patch", arguments="*** Begin Patch", kind="custom"),
                Opaque(dialects=FAMILY, raw=VARIETY_INPUT[5]),
            ),
            extra={"type": "message", "id": "msg_1", "status": "completed"},
        ),
        Message(
            role="tool",
            content=(
                ToolResult(
                    call_id="call_a",
                    content=(Text(text="a.txt"), Image(url="https://example.com/shot.png", detail="low")),
                    native={"content": "list"},
                ),
            ),
        ),
        Message(role="tool", content=(ToolResult(call_id="call_b", content=(Text(text="Done!"),), kind="custom"),)),
        Message(
            role="assistant",
            content=(
                Opaque(dialects=FAMILY, raw={"id": "msg_old"}),
                Opaque(dialects=FAMILY, raw={"type": "some_future_item", "payload": 1}),
                Refusal(text="No."),
            ),
            extra={"type": "message"},
        ),
        Message(role="developer", content=(Text(text="rule"),)),
    )
    assert round_trip(body) == body


def test_two_assistant_messages_stay_two_turns() -> None:
    body = {
        "model": "m",
        "input": [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "one"}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "two"}]},
            {"type": "message", "role": "assistant", "content": []},
            {"type": "message", "role": "user", "content": [{"type": "output_text", "text": "odd"}]},
        ],
    }
    messages = DIALECT.decode_request(body).messages
    assert [len(m.content) for m in messages] == [1, 1, 0, 1]
    assert messages[3].content == (Text(text="odd", extra={"type": "output_text"}),)
    assert round_trip(body) == body


def test_top_level_fields_and_unknowns_round_trip() -> None:
    body = {
        "model": "gpt-5",
        "input": "x",
        "tools": [
            {"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}, "strict": True},
            {
                "type": "custom",
                "name": "apply_patch",
                "description": "p",
                "format": {"type": "grammar", "syntax": "lark"},
            },
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
        ],
        "tool_choice": {"type": "custom", "name": "apply_patch"},
        "reasoning": {"effort": "high", "summary": "detailed", "generate_summary": None},
        "text": {
            "format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True},
            "verbosity": "low",
        },
        "temperature": 0.5,
        "top_p": 1,
        "metadata": {"k": "v"},
        "previous_response_id": "resp_prev",
        "user": "u1",
        "truncation": "auto",
        "service_tier": "flex",
        "safety_identifier": "s",
        "prompt": {"id": "pmpt_1"},
        "max_output_tokens": None,
    }
    request = DIALECT.decode_request(body)
    assert request.tools is not None
    assert request.tools[1] == Tool(
        name="apply_patch", description="p", kind="custom", extra={"format": {"type": "grammar", "syntax": "lark"}}
    )
    assert request.tools[2] == HostedTool(dialects=FAMILY, raw={"type": "file_search", "vector_store_ids": ["vs_1"]})
    assert request.tool_choice == ToolChoice(mode="tool", name="apply_patch")
    assert request.reasoning == ReasoningConfig(effort="high", summary="detailed")
    assert request.response_format == ResponseFormat(
        type="json_schema", name="out", schema={"type": "object"}, strict=True
    )
    assert request.temperature == 0.5
    assert request.user == "u1"
    assert request.previous_response_id == "resp_prev"
    assert round_trip(body) == body


def test_other_tool_choice_shapes_are_kept() -> None:
    body = {"model": "m", "input": "x", "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}}
    request = DIALECT.decode_request(body)
    assert request.tool_choice is None
    assert round_trip(body) == body


def test_claude_thinking_carry_is_restored() -> None:
    thinking = encode_carry("claude-thinking", {"t": "I think.", "s": "sig=="})
    redacted = encode_carry("claude-thinking", {"r": "opaque-blob"})
    body: dict[str, Any] = {
        "model": "m",
        "input": [
            {
                "type": "reasoning",
                "id": "rs_x_0",
                "summary": [{"type": "summary_text", "text": "I think."}],
                "encrypted_content": thinking,
            },
            {"type": "reasoning", "id": "rs_x_1", "summary": [], "encrypted_content": redacted},
            {"type": "function_call", "call_id": "toolu_1", "name": "ls", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "toolu_1", "output": "ok"},
        ],
    }
    messages = DIALECT.decode_request(body).messages
    assert messages[0] == Message(
        role="assistant",
        content=(
            Reasoning(provider="anthropic", text="I think.", signature="sig=="),
            Reasoning(provider="anthropic", redacted="opaque-blob"),
            ToolCall(id="toolu_1", name="ls", arguments="{}"),
        ),
    )
    tampered = thinking[:-2] + ("AA" if not thinking.endswith("AA") else "BB")
    body["input"][0]["encrypted_content"] = tampered
    with pytest.raises(RequestError) as info:
        DIALECT.decode_request(body)
    assert info.value.error.status == 400


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], "body"),
        ({"input": "x"}, "model"),
        ({"model": "m", "input": 3}, "input"),
        ({"model": "m", "input": [1]}, "input[0]"),
        ({"model": "m", "input": [{"type": "message", "role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"type": "message", "role": "user", "content": 5}]}, "input[0].content"),
        ({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
        ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": 1}]}, "input[0].output"),
        ({"model": "m", "input": "x", "tools": {}}, "tools"),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "m", "input": "x", "temperature": "hot"}, "temperature"),
        ({"model": "m", "input": "x", "max_output_tokens": 1.5}, "max_output_tokens"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
        # Found by the fuzzer: kept-as-is parts and items are filed by type when re-encoded, so a content part
        # with an item's type (or none) left its message, and an item with a part's type entered one.
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": 7, "text": "x"}]}]},
            "input[0].content[0].type",
        ),
        ({"model": "m", "input": [{"role": "user", "content": [{"text": "x"}]}]}, "input[0].content[0].type"),
        (
            {"model": "m", "input": [{"role": "assistant", "content": [{"type": "function_call", "text": "x"}]}]},
            "input[0].content[0].type",
        ),
        ({"model": "m", "input": [{"type": "refusal", "refusal": "no"}]}, "input[0].type"),
        ({"model": "m", "input": [{"type": "input_text", "text": "x"}]}, "input[0].type"),
    ],
)
def test_malformed_requests_raise_request_error(body: Any, param: str) -> None:
    with pytest.raises(RequestError) as info:
        DIALECT.decode_request(body)
    assert info.value.error.status == 400
    assert info.value.error.param == param


def test_unknown_content_parts_stay_in_their_message() -> None:
    """Content part types the codec does not model pass through inside their message, for every role."""
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}, {"type": "input_audio"}]},
            {"role": "assistant", "content": [{"type": "output_audio", "data": "x"}]},
        ],
    }
    assert round_trip(body) == body


# ---------------------------------------------------------------------------------------------
# Requests: encoding from other dialects
# ---------------------------------------------------------------------------------------------


def test_encode_chat_origin_request() -> None:
    request = Request(
        model="gpt-5",
        origin="openai-chat",
        system=(Text(text="sys A"), Text(text="sys B")),
        messages=(
            Message(role="developer", content=(Text(text="dev"),), native={"content": "string"}),
            Message(
                role="user",
                content=(Text(text="what is this?"), Image(media_type="image/jpeg", data="AAAA")),
                name="alice",
            ),
            Message(
                role="assistant",
                content=(Text(text="Let me check."), ToolCall(id="call_1", name="lookup", arguments='{"q":1}')),
                native={"content": "string"},
                extra={"annotations": []},
            ),
            Message(role="tool", content=(ToolResult(call_id="call_1", content=(Text(text="found"),)),)),
        ),
        tools=(Tool(name="lookup", description="Look up", parameters={"type": "object"}),),
        tool_choice=ToolChoice(mode="tool", name="lookup"),
        max_tokens=8,
        temperature=0.2,
        stop=("END",),
        seed=7,
        reasoning=ReasoningConfig(effort="low"),
        response_format=ResponseFormat(type="json_schema", schema={"type": "object"}, strict=True),
        user="u-1",
        stream=True,
        include_usage=True,
        extra={"logit_bias": {"1": 2}},
    )
    assert DIALECT.encode_request(request, OPTIONS) == {
        "model": "gpt-5",
        "instructions": "sys A\n\nsys B",
        "input": [
            {"type": "message", "role": "developer", "content": "dev"},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this?"},
                    {"type": "input_image", "image_url": "data:image/jpeg;base64,AAAA", "detail": "auto"},
                ],
            },
            {"type": "message", "role": "assistant", "content": "Let me check."},
            {"type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": '{"q":1}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "found"},
        ],
        "tools": [
            {
                "type": "function",
                "name": "lookup",
                "description": "Look up",
                "parameters": {"type": "object"},
                "strict": False,
            }
        ],
        "tool_choice": {"type": "function", "name": "lookup"},
        "max_output_tokens": 16,
        "temperature": 0.2,
        "user": "u-1",
        "store": False,
        "stream": True,
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "text": {"format": {"type": "json_schema", "name": "response", "schema": {"type": "object"}, "strict": True}},
    }


def test_encode_claude_origin_request_drops_thinking_and_maps_budget() -> None:
    request = Request(
        model="gpt-5",
        origin="claude",
        system=(Text(text="You are Claude Code.", cache_control={"type": "ephemeral"}),),
        native={"system": "list"},
        messages=(
            Message(role="user", content=(Text(text="list files"),)),
            Message(
                role="assistant",
                content=(
                    Reasoning(provider="anthropic", text="hmm", signature="claude-sig"),
                    Reasoning(provider="anthropic", redacted="xyz"),
                    Text(text="Listing."),
                    ToolCall(id="toolu_1", name="Bash", arguments='{"command":"ls"}'),
                    ToolCall(id="toolu_2", name="Read", arguments='{"path":"a"}'),
                ),
            ),
            Message(
                role="user",
                content=(
                    ToolResult(call_id="toolu_1", content=(Text(text="a b"),), is_error=True),
                    ToolResult(
                        call_id="toolu_2",
                        content=(Text(text="file a:"), Image(media_type="image/png", data="PNG")),
                        native={"content": "list"},
                    ),
                    Text(text="thanks"),
                ),
            ),
        ),
        tools=(
            Tool(name="Bash", parameters={"type": "object", "properties": {}}, cache_control={"type": "ephemeral"}),
        ),
        max_tokens=32000,
        reasoning=ReasoningConfig(mode="enabled", budget_tokens=10000),
        top_k=5,
        metadata={"user_id": "x"},
    )
    assert DIALECT.encode_request(request, OPTIONS) == {
        "model": "gpt-5",
        "instructions": "You are Claude Code.",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Listing.", "annotations": []}],
            },
            {"type": "function_call", "call_id": "toolu_1", "name": "Bash", "arguments": '{"command":"ls"}'},
            {"type": "function_call", "call_id": "toolu_2", "name": "Read", "arguments": '{"path":"a"}'},
            {"type": "function_call_output", "call_id": "toolu_1", "output": "a b"},
            {
                "type": "function_call_output",
                "call_id": "toolu_2",
                "output": [
                    {"type": "input_text", "text": "file a:"},
                    {"type": "input_image", "image_url": "data:image/png;base64,PNG", "detail": "auto"},
                ],
            },
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "thanks"}]},
        ],
        "tools": [
            {"type": "function", "name": "Bash", "parameters": {"type": "object", "properties": {}}, "strict": False}
        ],
        "max_output_tokens": 32000,
        "metadata": {"user_id": "x"},
        "store": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
    }


def test_encode_reasoning_replay_from_a_carry() -> None:
    request = Request(
        model="gpt-5",
        origin="claude",
        messages=(
            Message(role="user", content=(Text(text="go"),), native={"content": "string"}),
            Message(
                role="assistant",
                content=(
                    Reasoning(provider="openai", id="rs_9", summary=("step 1", "step 2"), signature="gAAAA-enc"),
                    Reasoning(provider="openai", summary=("no id",)),
                    ToolCall(id="call_9", name="f", arguments="{}", item_id="fc_9"),
                ),
            ),
        ),
        reasoning=ReasoningConfig(mode="disabled"),
    )
    assert DIALECT.encode_request(request, OPTIONS)["input"] == [
        {"type": "message", "role": "user", "content": "go"},
        {
            "type": "reasoning",
            "id": "rs_9",
            "summary": [{"type": "summary_text", "text": "step 1"}, {"type": "summary_text", "text": "step 2"}],
            "encrypted_content": "gAAAA-enc",
        },
        {"type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{}", "id": "fc_9"},
    ]
    assert "reasoning" not in DIALECT.encode_request(request, OPTIONS)


def test_encode_rejects_n_above_one() -> None:
    request = Request(model="m", messages=(), origin="openai-chat", n=2)
    with pytest.raises(RequestError) as info:
        DIALECT.encode_request(request, OPTIONS)
    assert info.value.error.param == "n"


@pytest.mark.parametrize(
    ("budget", "effort"), [(1024, "low"), (4096, "low"), (4097, "medium"), (16384, "medium"), (16385, "high")]
)
def test_effort_for_budget(budget: int, effort: str) -> None:
    assert effort_for_budget(budget) == effort


def test_upstream_path_and_headers() -> None:
    request = Request(model="m", messages=())
    assert DIALECT.upstream_path(request) == "/v1/responses"
    assert DIALECT.upstream_headers(request, {"session-id": "s"}) == {}
    assert DIALECT.name == "openai-responses"


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------

CLIENT_REQUEST = Request(
    model="gpt-test",
    messages=(Message(role="user", content=(Text(text="hi"),), native={"content": "string"}),),
    tools=(
        Tool(name="exec_command", parameters={"type": "object"}),
        Tool(name="apply_patch", kind="custom", extra={"format": {"type": "text"}}),
    ),
    tool_choice=ToolChoice(mode="auto"),
    parallel_tool_calls=True,
    store=False,
    stream=True,
    origin="openai-responses",
)
CARRY = encode_carry("claude-thinking", {"t": "Let me think.", "s": "sig=="})
USAGE = Usage(input_tokens=10, output_tokens=20, cache_read_tokens=5, cache_write_tokens=2, reasoning_tokens=3)
USAGE_JSON = {
    "input_tokens": 17,
    "input_tokens_details": {"cached_tokens": 5, "cache_write_tokens": 2},
    "output_tokens": 20,
    "output_tokens_details": {"reasoning_tokens": 3},
    "total_tokens": 37,
}


def response_envelope(status: str, output: list[Any], **fields: Any) -> dict[str, Any]:
    return {
        "id": "resp_01ABC",
        "object": "response",
        "created_at": 1700000000,
        "status": status,
        "error": fields.get("error"),
        "incomplete_details": fields.get("incomplete_details"),
        "instructions": None,
        "max_output_tokens": None,
        "model": "gpt-test",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": None,
        "store": False,
        "temperature": None,
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "usage": fields.get("usage"),
        "metadata": {},
    }


def test_encode_response_from_claude_parts() -> None:
    response = Response(
        id="msg_01ABC",
        model="claude-upstream",
        created=1700000000,
        content=(
            Reasoning(provider="anthropic", text="Let me think.", signature="sig=="),
            Text(text="Running ", extra={"citations": []}),
            Refusal(text="partly"),
            ToolCall(id="toolu_1", name="exec_command", arguments='{"cmd":"ls"}'),
            ToolCall(id="toolu_2", name="apply_patch", arguments='{"input": "*** Begin Patch"}'),
            ToolCall(id="toolu_3", name="apply_patch", arguments="raw", kind="custom"),
            Opaque(dialects=frozenset({"claude"}), raw={"type": "server_tool_use"}),
        ),
        stop_reason=StopReason.TOOL_USE,
        usage=USAGE,
        origin="claude",
    )
    body = orjson.loads(DIALECT.encode_response(response, CLIENT_REQUEST))
    output = [
        {
            "id": "rs_01ABC_0",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "Let me think."}],
            "encrypted_content": CARRY,
        },
        {
            "id": "msg_01ABC_1",
            "type": "message",
            "status": "completed",
            "content": [
                {"type": "output_text", "annotations": [], "text": "Running "},
                {"type": "refusal", "refusal": "partly"},
            ],
            "role": "assistant",
        },
        {
            "id": "fc_toolu_1",
            "type": "function_call",
            "status": "completed",
            "arguments": '{"cmd":"ls"}',
            "call_id": "toolu_1",
            "name": "exec_command",
        },
        {
            "id": "fc_toolu_2",
            "type": "custom_tool_call",
            "call_id": "toolu_2",
            "name": "apply_patch",
            "input": "*** Begin Patch",
        },
        {"id": "fc_toolu_3", "type": "custom_tool_call", "call_id": "toolu_3", "name": "apply_patch", "input": "raw"},
    ]
    assert body == response_envelope("completed", output, usage=USAGE_JSON)
    SDKResponse.model_validate(body)


@pytest.mark.parametrize(
    ("stop", "status", "details"),
    [
        (StopReason.MAX_TOKENS, "incomplete", {"reason": "max_output_tokens"}),
        (StopReason.CONTENT_FILTER, "incomplete", {"reason": "content_filter"}),
        (StopReason.REFUSAL, "incomplete", {"reason": "content_filter"}),
        (StopReason.END_TURN, "completed", None),
        (StopReason.STOP_SEQUENCE, "completed", None),
    ],
)
def test_encode_response_status(stop: StopReason, status: str, details: Any) -> None:
    response = Response(id="resp_01ABC", model="x", created=1700000000, content=(Text(text="ab"),), stop_reason=stop)
    body = orjson.loads(DIALECT.encode_response(response, CLIENT_REQUEST))
    assert (body["status"], body["incomplete_details"]) == (status, details)
    SDKResponse.model_validate(body)


UPSTREAM_RESPONSE: dict[str, Any] = {
    "id": "resp_up",
    "object": "response",
    "created_at": 1710000000,
    "status": "completed",
    "model": "gpt-5-2025",
    "output": [
        {
            "id": "rs_1",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "S1"}],
            "encrypted_content": "enc",
        },
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello", "annotations": [], "logprobs": []}],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_1",
            "name": "f",
            "arguments": "{}",
        },
    ],
    "usage": {
        "input_tokens": 100,
        "input_tokens_details": {"cached_tokens": 40},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 130,
    },
}


def test_decode_response() -> None:
    response = DIALECT.decode_response(UPSTREAM_RESPONSE, CLIENT_REQUEST)
    assert response == Response(
        id="resp_up",
        model="gpt-5-2025",
        created=1710000000,
        content=(
            Reasoning(provider="openai", id="rs_1", summary=("S1",), signature="enc"),
            Text(text="Hello", extra={"annotations": [], "logprobs": []}),
            ToolCall(id="call_1", name="f", arguments="{}", item_id="fc_1", extra={"status": "completed"}),
        ),
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=60, output_tokens=30, cache_read_tokens=40, reasoning_tokens=12),
        origin="openai-responses",
    )


def test_decode_response_incomplete_and_failed() -> None:
    body = {**UPSTREAM_RESPONSE, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    assert DIALECT.decode_response(body, CLIENT_REQUEST).stop_reason == StopReason.MAX_TOKENS
    body = {**body, "incomplete_details": {"reason": "content_filter"}}
    assert DIALECT.decode_response(body, CLIENT_REQUEST).stop_reason == StopReason.CONTENT_FILTER
    failed = {**UPSTREAM_RESPONSE, "status": "failed", "error": {"code": "rate_limit_exceeded", "message": "slow"}}
    with pytest.raises(UpstreamError) as info:
        DIALECT.decode_response(failed, CLIENT_REQUEST)
    assert (info.value.error.kind, info.value.error.status) == (ErrorKind.RATE_LIMIT, 429)
    with pytest.raises(UpstreamError) as info:
        DIALECT.decode_response({"output": [{"type": "function_call"}]}, CLIENT_REQUEST)
    assert info.value.error.status == 502


def test_custom_tool_input() -> None:
    assert custom_tool_input('{"input": "*** Begin Patch\\n"}') == "*** Begin Patch\n"
    assert custom_tool_input('{"other": 1}') == '{"other": 1}'
    assert custom_tool_input("not json") == "not json"


# ---------------------------------------------------------------------------------------------
# Stream decoding
# ---------------------------------------------------------------------------------------------


def sse(events: list[dict[str, Any]]) -> bytes:
    out = b""
    for n, event in enumerate(events):
        out += encode_event(orjson.dumps({**event, "sequence_number": n}), event["type"])
    return out


def fc_item(n: int, args: str, status: str) -> dict[str, Any]:
    return {
        "id": f"fc_{n}",
        "type": "function_call",
        "status": status,
        "arguments": args,
        "call_id": f"call_{n}",
        "name": "ls",
    }


UPSTREAM_EVENTS: list[dict[str, Any]] = [
    {
        "type": "response.created",
        "response": {
            "id": "resp_up",
            "model": "gpt-5",
            "created_at": 1710000000,
            "status": "in_progress",
            "output": [],
        },
    },
    {"type": "response.in_progress", "response": {"id": "resp_up", "status": "in_progress"}},
    {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {"id": "rs_1", "type": "reasoning", "summary": []},
    },
    {
        "type": "response.reasoning_summary_part.added",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": 0,
        "part": {"type": "summary_text", "text": ""},
    },
    {
        "type": "response.reasoning_summary_text.delta",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": 0,
        "delta": "**Plan** é",
    },
    {
        "type": "response.reasoning_summary_text.done",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": 0,
        "text": "**Plan** é",
    },
    {
        "type": "response.reasoning_summary_part.done",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": 0,
        "part": {"type": "summary_text", "text": "**Plan** é"},
    },
    {
        "type": "response.reasoning_summary_part.added",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": 1,
        "part": {"type": "summary_text", "text": ""},
    },
    {
        "type": "response.reasoning_summary_text.delta",
        "item_id": "rs_1",
        "output_index": 0,
        "summary_index": 1,
        "delta": "Then act.",
    },
    {
        "type": "response.output_item.done",
        "output_index": 0,
        "item": {
            "id": "rs_1",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "**Plan** é"}, {"type": "summary_text", "text": "Then act."}],
            "encrypted_content": "gAAAAenc",
        },
    },
    {
        "type": "response.output_item.added",
        "output_index": 1,
        "item": {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []},
    },
    {
        "type": "response.content_part.added",
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        "part": {"type": "output_text", "text": "", "annotations": []},
    },
    {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        "delta": "I'll ",
        "logprobs": [],
    },
    {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        "delta": "look. 日本",
        "logprobs": [],
    },
    {
        "type": "response.output_text.done",
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        "text": "I'll look. 日本",
        "logprobs": [],
    },
    {
        "type": "response.content_part.done",
        "item_id": "msg_1",
        "output_index": 1,
        "content_index": 0,
        "part": {"type": "output_text", "text": "I'll look. 日本", "annotations": []},
    },
    {
        "type": "response.output_item.done",
        "output_index": 1,
        "item": {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "I'll look. 日本", "annotations": []}],
        },
    },
    {"type": "response.output_item.added", "output_index": 2, "item": fc_item(1, "", "in_progress")},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2, "delta": '{"path":'},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2, "delta": '"."}'},
    {
        "type": "response.function_call_arguments.done",
        "item_id": "fc_1",
        "output_index": 2,
        "arguments": '{"path":"."}',
    },
    {"type": "response.output_item.done", "output_index": 2, "item": fc_item(1, '{"path":"."}', "completed")},
    {"type": "response.output_item.added", "output_index": 3, "item": fc_item(2, "", "in_progress")},
    {"type": "response.function_call_arguments.delta", "item_id": "fc_2", "output_index": 3, "delta": '{"path":"/"}'},
    {
        "type": "response.function_call_arguments.done",
        "item_id": "fc_2",
        "output_index": 3,
        "arguments": '{"path":"/"}',
    },
    {"type": "response.output_item.done", "output_index": 3, "item": fc_item(2, '{"path":"/"}', "completed")},
    {"type": "response.completed", "response": {**UPSTREAM_RESPONSE, "output": []}},
]
UPSTREAM_STREAM = sse(UPSTREAM_EVENTS) + b": keepalive\n\n"
EXPECTED_DECODED: list[StreamEvent] = [
    MessageStart(id="resp_up", model="gpt-5", created=1710000000),
    BlockStart(index=0, kind="reasoning", id="rs_1"),
    ThinkingDelta(index=0, text="**Plan** é"),
    ThinkingDelta(index=0, text="\n\n"),
    ThinkingDelta(index=0, text="Then act."),
    SignatureDelta(index=0, signature="gAAAAenc"),
    BlockStop(index=0),
    BlockStart(index=1, kind="text"),
    TextDelta(index=1, text="I'll "),
    TextDelta(index=1, text="look. 日本"),
    BlockStop(index=1),
    BlockStart(index=2, kind="tool_call", id="call_1", name="ls"),
    ToolArgsDelta(index=2, partial_json='{"path":'),
    ToolArgsDelta(index=2, partial_json='"."}'),
    BlockStop(index=2),
    BlockStart(index=3, kind="tool_call", id="call_2", name="ls"),
    ToolArgsDelta(index=3, partial_json='{"path":"/"}'),
    BlockStop(index=3),
    Finish(
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=60, output_tokens=30, cache_read_tokens=40, reasoning_tokens=12),
    ),
]


def decode_all(chunks: list[bytes], request: Request = CLIENT_REQUEST) -> list[StreamEvent]:
    decoder = DIALECT.stream_decoder(request)
    out: list[StreamEvent] = []
    for chunk in chunks:
        out.extend(decoder.feed(chunk))
    return out + decoder.close()


def test_stream_decoder_transcript() -> None:
    assert decode_all([UPSTREAM_STREAM]) == EXPECTED_DECODED


def test_stream_decoder_every_split_point() -> None:
    for i in range(len(UPSTREAM_STREAM) + 1):
        assert decode_all([UPSTREAM_STREAM[:i], UPSTREAM_STREAM[i:]]) == EXPECTED_DECODED, i


def test_stream_decoder_one_byte_at_a_time() -> None:
    chunks = [UPSTREAM_STREAM[i : i + 1] for i in range(len(UPSTREAM_STREAM))]
    assert decode_all(chunks) == EXPECTED_DECODED


def test_stream_decoder_without_deltas_uses_done_items() -> None:
    events: list[dict[str, Any]] = [
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {
                "id": "rs_1",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "a"}, {"type": "summary_text", "text": "b"}],
            },
        },
        {
            "type": "response.output_item.done",
            "output_index": 1,
            "item": {
                "id": "m",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": "hi", "annotations": []},
                    {"type": "refusal", "refusal": "no"},
                ],
            },
        },
        {
            "type": "response.output_item.done",
            "output_index": 2,
            "item": {
                "id": "c",
                "type": "custom_tool_call",
                "call_id": "call_c",
                "name": "apply_patch",
                "input": "patch",
            },
        },
        {
            "type": "response.output_item.done",
            "output_index": 3,
            "item": {"id": "ws", "type": "web_search_call", "status": "completed"},
        },
        {
            "type": "response.incomplete",
            "response": {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
        },
    ]
    assert decode_all([sse(events)]) == [
        MessageStart(id="resp_synthesized", model="gpt-test"),
        BlockStart(index=0, kind="reasoning", id="rs_1"),
        ThinkingDelta(index=0, text="a\n\nb"),
        BlockStop(index=0),
        BlockStart(index=1, kind="text"),
        TextDelta(index=1, text="hi"),
        BlockStop(index=1),
        BlockStart(index=2, kind="refusal"),
        TextDelta(index=2, text="no"),
        BlockStop(index=2),
        BlockStart(index=3, kind="tool_call", id="call_c", name="apply_patch", tool_kind="custom"),
        ToolArgsDelta(index=3, partial_json="patch"),
        BlockStop(index=3),
        BlockStart(index=4, kind="opaque", raw={"id": "ws", "type": "web_search_call", "status": "completed"}),
        BlockStop(index=4),
        Finish(stop_reason=StopReason.MAX_TOKENS),
    ]


def test_stream_decoder_failed_error_and_cut() -> None:
    head = UPSTREAM_EVENTS[:3]
    failed = {
        "type": "response.failed",
        "response": {"status": "failed", "error": {"code": "server_is_overloaded", "message": "busy"}},
    }
    events = decode_all([sse([*head, failed, UPSTREAM_EVENTS[-1]])])
    assert events == [
        MessageStart(id="resp_up", model="gpt-5", created=1710000000),
        BlockStart(index=0, kind="reasoning", id="rs_1"),
        StreamError(
            error=ProxyError(status=503, kind=ErrorKind.OVERLOADED, message="busy", code="server_is_overloaded")
        ),
    ]
    error = {"type": "error", "code": "context_length_exceeded", "message": "too long", "param": "input"}
    assert decode_all([sse([*head, error])])[-1] == StreamError(
        error=ProxyError(
            status=400, kind=ErrorKind.CONTEXT_LENGTH, message="too long", param="input", code="context_length_exceeded"
        )
    )
    cut = decode_all([sse(head) + b'event: response.output_item.added\ndata: {"type":'])
    assert cut[-1] == StreamError(
        error=ProxyError(status=502, kind=ErrorKind.API_ERROR, message="upstream closed the stream before it finished")
    )
    assert len(cut) == 3


# ---------------------------------------------------------------------------------------------
# Stream encoding
# ---------------------------------------------------------------------------------------------

CLAUDE_EVENTS: list[StreamEvent] = [
    MessageStart(
        id="msg_01ABC", model="claude-upstream", usage=Usage(input_tokens=10, cache_read_tokens=5), created=1700000000
    ),
    BlockStart(index=0, kind="thinking"),
    ThinkingDelta(index=0, text="Let me "),
    ThinkingDelta(index=0, text="think."),
    SignatureDelta(index=0, signature="sig=="),
    BlockStop(index=0),
    BlockStart(index=1, kind="text"),
    TextDelta(index=1, text="Running "),
    TextDelta(index=1, text="ls."),
    BlockStop(index=1),
    BlockStart(index=2, kind="tool_call", id="toolu_1", name="exec_command"),
    ToolArgsDelta(index=2, partial_json='{"cmd":'),
    ToolArgsDelta(index=2, partial_json='"ls"}'),
    BlockStop(index=2),
    BlockStart(index=3, kind="tool_call", id="toolu_2", name="apply_patch"),
    ToolArgsDelta(index=3, partial_json='{"input": "*** Begin'),
    ToolArgsDelta(index=3, partial_json=' Patch"}'),
    BlockStop(index=3),
    Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(output_tokens=20)),
]


def encode_all(events: list[StreamEvent], request: Request = CLIENT_REQUEST) -> bytes:
    encoder = DIALECT.stream_encoder(request)
    assert encoder.content_type == "text/event-stream"
    return b"".join(encoder.encode(e) for e in events) + encoder.close()


def parse_events(data: bytes) -> list[dict[str, Any]]:
    parser = SSEParser()
    out = []
    for event in parser.feed(data):
        obj = orjson.loads(event.data)
        assert event.event == obj["type"]
        out.append(obj)
    assert not parser.has_partial
    return out


def where(event: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        event.get(k) for k in ("type", "sequence_number", "output_index", "content_index", "summary_index", "item_id")
    )


MESSAGE_ITEM: dict[str, Any] = {
    "id": "msg_01ABC_1",
    "type": "message",
    "status": "completed",
    "content": [{"type": "output_text", "annotations": [], "text": "Running ls."}],
    "role": "assistant",
}
REASONING_ITEM: dict[str, Any] = {
    "id": "rs_01ABC_0",
    "type": "reasoning",
    "summary": [{"type": "summary_text", "text": "Let me think."}],
    "encrypted_content": CARRY,
}
CALL_ITEM: dict[str, Any] = {
    "id": "fc_toolu_1",
    "type": "function_call",
    "status": "completed",
    "arguments": '{"cmd":"ls"}',
    "call_id": "toolu_1",
    "name": "exec_command",
}
CUSTOM_ITEM: dict[str, Any] = {
    "id": "fc_toolu_2",
    "type": "custom_tool_call",
    "call_id": "toolu_2",
    "name": "apply_patch",
    "input": "*** Begin Patch",
}


def test_stream_encoder_event_sequence() -> None:
    events = parse_events(encode_all(CLAUDE_EVENTS))
    for event in events:
        EVENT_ADAPTER.validate_python(event)
    assert [where(e) for e in events] == [
        ("response.created", 0, None, None, None, None),
        ("response.in_progress", 1, None, None, None, None),
        ("response.output_item.added", 2, 0, None, None, None),
        ("response.reasoning_summary_part.added", 3, 0, None, 0, "rs_01ABC_0"),
        ("response.reasoning_summary_text.delta", 4, 0, None, 0, "rs_01ABC_0"),
        ("response.reasoning_summary_text.delta", 5, 0, None, 0, "rs_01ABC_0"),
        ("response.reasoning_summary_text.done", 6, 0, None, 0, "rs_01ABC_0"),
        ("response.reasoning_summary_part.done", 7, 0, None, 0, "rs_01ABC_0"),
        ("response.output_item.done", 8, 0, None, None, None),
        ("response.output_item.added", 9, 1, None, None, None),
        ("response.content_part.added", 10, 1, 0, None, "msg_01ABC_1"),
        ("response.output_text.delta", 11, 1, 0, None, "msg_01ABC_1"),
        ("response.output_text.delta", 12, 1, 0, None, "msg_01ABC_1"),
        ("response.output_text.done", 13, 1, 0, None, "msg_01ABC_1"),
        ("response.content_part.done", 14, 1, 0, None, "msg_01ABC_1"),
        ("response.output_item.done", 15, 1, None, None, None),
        ("response.output_item.added", 16, 2, None, None, None),
        ("response.function_call_arguments.delta", 17, 2, None, None, "fc_toolu_1"),
        ("response.function_call_arguments.delta", 18, 2, None, None, "fc_toolu_1"),
        ("response.function_call_arguments.done", 19, 2, None, None, "fc_toolu_1"),
        ("response.output_item.done", 20, 2, None, None, None),
        ("response.output_item.added", 21, 3, None, None, None),
        ("response.custom_tool_call_input.delta", 22, 3, None, None, "fc_toolu_2"),
        ("response.custom_tool_call_input.done", 23, 3, None, None, "fc_toolu_2"),
        ("response.output_item.done", 24, 3, None, None, None),
        ("response.completed", 25, None, None, None, None),
    ]
    assert events[0]["response"] == response_envelope("in_progress", [])
    assert events[2]["item"] == {"id": "rs_01ABC_0", "type": "reasoning", "summary": []}
    assert [e["delta"] for e in events if e["type"].endswith(".delta")] == [
        "Let me ",
        "think.",
        "Running ",
        "ls.",
        '{"cmd":',
        '"ls"}',
        "*** Begin Patch",
    ]
    assert events[9]["item"] == {**MESSAGE_ITEM, "status": "in_progress", "content": []}
    assert events[16]["item"] == {**CALL_ITEM, "status": "in_progress", "arguments": ""}
    assert events[21]["item"] == {**CUSTOM_ITEM, "input": ""}
    assert events[19]["arguments"] == '{"cmd":"ls"}'
    assert events[23]["input"] == "*** Begin Patch"
    assert [events[i]["item"] for i in (8, 15, 20, 24)] == [REASONING_ITEM, MESSAGE_ITEM, CALL_ITEM, CUSTOM_ITEM]
    final = events[-1]["response"]
    usage = {
        "input_tokens": 15,
        "input_tokens_details": {"cached_tokens": 5, "cache_write_tokens": 0},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 35,
    }
    assert final == response_envelope("completed", [REASONING_ITEM, MESSAGE_ITEM, CALL_ITEM, CUSTOM_ITEM], usage=usage)
    SDKResponse.model_validate(final)
    assert decode_carry(REASONING_ITEM["encrypted_content"], "claude-thinking") == {"t": "Let me think.", "s": "sig=="}


def test_stream_encoder_output_decodes_back() -> None:
    assert decode_all([encode_all(CLAUDE_EVENTS)]) == [
        MessageStart(id="resp_01ABC", model="gpt-test", created=1700000000),
        BlockStart(index=0, kind="reasoning", id="rs_01ABC_0"),
        ThinkingDelta(index=0, text="Let me "),
        ThinkingDelta(index=0, text="think."),
        SignatureDelta(index=0, signature=CARRY),
        BlockStop(index=0),
        BlockStart(index=1, kind="text"),
        TextDelta(index=1, text="Running "),
        TextDelta(index=1, text="ls."),
        BlockStop(index=1),
        BlockStart(index=2, kind="tool_call", id="toolu_1", name="exec_command"),
        ToolArgsDelta(index=2, partial_json='{"cmd":'),
        ToolArgsDelta(index=2, partial_json='"ls"}'),
        BlockStop(index=2),
        BlockStart(index=3, kind="tool_call", id="toolu_2", name="apply_patch", tool_kind="custom"),
        ToolArgsDelta(index=3, partial_json="*** Begin Patch"),
        BlockStop(index=3),
        Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=10, output_tokens=20, cache_read_tokens=5)),
    ]


def test_streamed_reasoning_item_comes_back_as_claude_thinking() -> None:
    final = parse_events(encode_all(CLAUDE_EVENTS))[-1]["response"]
    body = {
        "model": "gpt-test",
        "input": [*final["output"], {"type": "function_call_output", "call_id": "toolu_1", "output": "x"}],
    }
    assistant = DIALECT.decode_request(body).messages[0]
    assert assistant.content[0] == Reasoning(provider="anthropic", text="Let me think.", signature="sig==")
    assert assistant.content[2] == ToolCall(
        id="toolu_1", name="exec_command", arguments='{"cmd":"ls"}', item_id="fc_toolu_1", extra={"status": "completed"}
    )


def test_stream_encoder_responses_upstream_round_trip() -> None:
    """Events from a Responses upstream re-encode into the same canonical events (summary parts included)."""
    encoded = encode_all(EXPECTED_DECODED)
    for event in parse_events(encoded):
        EVENT_ADAPTER.validate_python(event)
    decoded = decode_all([encoded])
    assert decoded[1:] == [
        BlockStart(index=0, kind="reasoning", id="rs_1"),
        *EXPECTED_DECODED[2:11],
        BlockStart(index=2, kind="tool_call", id="call_1", name="ls"),
        *EXPECTED_DECODED[12:],
    ]
    final = parse_events(encoded)[-1]["response"]
    assert final["output"][0] == {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "**Plan** é"}, {"type": "summary_text", "text": "Then act."}],
        "encrypted_content": "gAAAAenc",
    }


def test_stream_encoder_max_tokens_is_incomplete() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="resp_1", model="x", created=1),
        BlockStart(index=0, kind="text"),
        TextDelta(index=0, text="cut"),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.MAX_TOKENS, usage=Usage(input_tokens=3, output_tokens=4)),
    ]
    last = parse_events(encode_all(events))[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["usage"]["total_tokens"] == 7
    EVENT_ADAPTER.validate_python(last)


def test_stream_encoder_custom_kind_streams_input_and_refusal() -> None:
    events: list[StreamEvent] = [
        MessageStart(id="resp_1", model="x", created=1),
        BlockStart(index=0, kind="refusal"),
        TextDelta(index=0, text="no"),
        BlockStop(index=0),
        BlockStart(index=1, kind="tool_call", id="call_c", name="apply_patch", tool_kind="custom"),
        ToolArgsDelta(index=1, partial_json="a"),
        ToolArgsDelta(index=1, partial_json="b"),
        BlockStop(index=1),
        BlockStart(index=2, kind="opaque", raw={"type": "server_tool_use", "id": "srv"}),
        BlockStop(index=2),
        Finish(stop_reason=StopReason.TOOL_USE),
    ]
    parsed = parse_events(encode_all(events))
    for event in parsed:
        EVENT_ADAPTER.validate_python(event)
    assert [(e["type"], e.get("delta")) for e in parsed[2:-1]] == [
        ("response.output_item.added", None),
        ("response.content_part.added", None),
        ("response.refusal.delta", "no"),
        ("response.refusal.done", None),
        ("response.content_part.done", None),
        ("response.output_item.done", None),
        ("response.output_item.added", None),
        ("response.custom_tool_call_input.delta", "a"),
        ("response.custom_tool_call_input.delta", "b"),
        ("response.custom_tool_call_input.done", None),
        ("response.output_item.done", None),
    ]
    assert [item["type"] for item in parsed[-1]["response"]["output"]] == ["message", "custom_tool_call"]


@pytest.mark.parametrize(
    ("kind", "code", "sdk_valid", "decoded"),
    [
        (ErrorKind.RATE_LIMIT, "rate_limit_exceeded", True, (429, ErrorKind.RATE_LIMIT)),
        (ErrorKind.API_ERROR, "server_error", True, (500, ErrorKind.API_ERROR)),
        (ErrorKind.UPSTREAM_UNREACHABLE, "server_error", True, (500, ErrorKind.API_ERROR)),
        # Codex's own codes; the SDK's Literal for ResponseError.code does not list them.
        (ErrorKind.CONTEXT_LENGTH, "context_length_exceeded", False, (400, ErrorKind.CONTEXT_LENGTH)),
        (ErrorKind.OVERLOADED, "server_is_overloaded", False, (503, ErrorKind.OVERLOADED)),
    ],
)
def test_stream_encoder_error_is_response_failed(
    kind: ErrorKind, code: str, sdk_valid: bool, decoded: tuple[int, ErrorKind]
) -> None:
    encoder = DIALECT.stream_encoder(CLIENT_REQUEST)
    data = encoder.encode(CLAUDE_EVENTS[0]) + b"".join(encoder.encode(e) for e in CLAUDE_EVENTS[1:7])
    error = StreamError(error=ProxyError(status=500, kind=kind, message="boom"))
    failed = encoder.encode(error)
    assert encoder.encode(CLAUDE_EVENTS[-1]) == b""
    assert encoder.close() == b""
    events = parse_events(data + failed)
    last = events[-1]
    assert last["type"] == "response.failed"
    assert last["sequence_number"] == len(events) - 1
    assert last["response"] == response_envelope("failed", [REASONING_ITEM], error={"code": code, "message": "boom"})
    if sdk_valid:
        EVENT_ADAPTER.validate_python(last)
    status, decoded_kind = decoded
    assert decode_all([data + failed])[-1] == StreamError(
        error=ProxyError(status=status, kind=decoded_kind, message="boom", code=code)
    )


def test_stream_encoder_error_before_start() -> None:
    encoder = DIALECT.stream_encoder(CLIENT_REQUEST)
    events = parse_events(
        encoder.encode(StreamError(error=ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="x")))
    )
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "response.failed"]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_decode_error() -> None:
    body = orjson.dumps(
        {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    )
    assert DIALECT.decode_error(429, body, {"Retry-After": "7"}) == ProxyError(
        status=429, kind=ErrorKind.RATE_LIMIT, message="Rate limit reached", code="rate_limit_exceeded", retry_after="7"
    )
    body = orjson.dumps(
        {
            "error": {
                "message": "Your input exceeds the context window of this model.",
                "type": "invalid_request_error",
                "param": "input",
                "code": None,
            }
        }
    )
    assert DIALECT.decode_error(400, body, {}).kind == ErrorKind.CONTEXT_LENGTH
    assert (
        DIALECT.decode_error(404, b'{"error":{"message":"no","type":"invalid_request_error"}}', {}).kind
        == ErrorKind.NOT_FOUND
    )
    assert DIALECT.decode_error(502, b"<html>bad gateway</html>", {}) == ProxyError(
        status=502, kind=ErrorKind.UPSTREAM_UNREACHABLE, message="<html>bad gateway</html>"
    )
    assert DIALECT.decode_error(500, b"x" * 900, {}).message == "x" * 500
    assert DIALECT.decode_error(503, b"", {}).message == "upstream returned HTTP 503"


@pytest.mark.parametrize(
    ("error", "status", "payload"),
    [
        (
            ProxyError(status=400, kind=ErrorKind.CONTEXT_LENGTH, message="too long", param="input"),
            400,
            {
                "message": "too long",
                "type": "invalid_request_error",
                "param": "input",
                "code": "context_length_exceeded",
            },
        ),
        (
            ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="slow", retry_after="3"),
            429,
            {"message": "slow", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"},
        ),
        (
            ProxyError(status=529, kind=ErrorKind.OVERLOADED, message="busy"),
            503,
            {"message": "busy", "type": "server_error", "param": None, "code": None},
        ),
        (
            ProxyError(status=500, kind=ErrorKind.TIMEOUT, message="late"),
            504,
            {"message": "late", "type": "server_error", "param": None, "code": None},
        ),
    ],
)
def test_encode_error(error: ProxyError, status: int, payload: dict[str, Any]) -> None:
    rendered = DIALECT.encode_error(error)
    assert rendered.status == status
    assert orjson.loads(rendered.body) == {"error": payload}
    assert rendered.headers == ((("Retry-After", "3"),) if error.retry_after else ())


def test_redacted_thinking_and_hosted_items_reach_a_responses_client() -> None:
    search = {
        "id": "ws_1",
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": "q"},
    }
    response = Response(
        id="resp_2",
        model="x",
        created=1,
        content=(
            Reasoning(provider="anthropic", redacted="blob"),
            Opaque(dialects=FAMILY, raw=search),
            Text(text="done"),
        ),
        stop_reason=StopReason.END_TURN,
    )
    body = orjson.loads(DIALECT.encode_response(response, CLIENT_REQUEST))
    assert body["output"] == [
        {
            "id": "rs_2_0",
            "type": "reasoning",
            "summary": [],
            "encrypted_content": encode_carry("claude-thinking", {"r": "blob"}),
        },
        search,
        {
            "id": "msg_2_2",
            "type": "message",
            "status": "completed",
            "content": [{"type": "output_text", "annotations": [], "text": "done"}],
            "role": "assistant",
        },
    ]
    SDKResponse.model_validate(body)
    events: list[StreamEvent] = [
        MessageStart(id="resp_2", model="x", created=1),
        BlockStart(index=0, kind="redacted_thinking", data="blob"),
        BlockStop(index=0),
        BlockStart(index=1, kind="opaque", raw=search),
        BlockStop(index=1),
        Finish(stop_reason=StopReason.END_TURN),
    ]
    parsed = parse_events(encode_all(events))
    for event in parsed:
        EVENT_ADAPTER.validate_python(event)
    assert parsed[-1]["response"]["output"] == body["output"][:2]


def test_official_sdk_accumulates_the_encoded_stream() -> None:
    """The state machine behind ``client.responses.stream()`` accepts the stream and builds the final response.

    (Driven directly: the HTTP layer adds nothing here, and this keeps the test free of httpx.)
    """
    from openai._types import omit
    from openai.lib.streaming.responses._responses import ResponseStreamState

    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    emitted = []
    for raw in parse_events(encode_all(CLAUDE_EVENTS)):
        emitted.extend(state.handle_event(EVENT_ADAPTER.validate_python(raw)))
    final = emitted[-1]
    assert final.type == "response.completed"
    response = final.response
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call", "custom_tool_call"]
    assert response.output_text == "Running ls."
    assert response.usage is not None and response.usage.total_tokens == 35
    texts = [e.snapshot for e in emitted if e.type == "response.output_text.delta"]
    assert texts == ["Running ", "Running ls."]
