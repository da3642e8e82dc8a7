"""The ``bedrock-converse`` codec: requests decode and re-encode equal, the mappings to the other families,
responses, stop reasons, usage, errors, proxy-mode edits and summaries. Streams: ``tests/transcripts``."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from llm_proxy.canonical import (
    ErrorKind,
    Image,
    Message,
    Opaque,
    ProxyError,
    Reasoning,
    ReasoningConfig,
    Request,
    Response,
    StopReason,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import EncodeOptions
from llm_proxy.errors import RequestError, UpstreamError
from llm_proxy.prompt import SystemEdit

CONVERSE = get_dialect("bedrock-converse")
CLAUDE = get_dialect("claude")
OPTIONS = EncodeOptions()
MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"

FULL: dict[str, Any] = {
    "messages": [
        {
            "role": "user",
            "content": [
                {"text": "Look at these."},
                {"cachePoint": {"type": "default"}},
                {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
                {"document": {"format": "pdf", "name": "report", "source": {"bytes": "JVBERi0="}}},
                {"cachePoint": {"type": "default", "ttl": "5m"}},
                {"document": {"format": "csv", "name": "table", "source": {"bytes": "YSxi"}}},
                {"video": {"format": "mp4", "source": {"s3Location": {"uri": "s3://b/v.mp4"}}}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "sig-1"}}},
                {"reasoningContent": {"redactedContent": "YWJj"}},
                {"text": "Calling."},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "weather", "input": {"city": "Paris"}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "tooluse_1",
                        "content": [{"json": {"temp": 21}}, {"text": "sunny"}],
                        "status": "error",
                    }
                },
                {"text": "and now?"},
            ],
        },
    ],
    "system": [
        {"text": "Be brief."},
        {"cachePoint": {"type": "default", "ttl": "1h"}},
        {"guardContent": {"text": {"text": "guarded"}}},
    ],
    "inferenceConfig": {"maxTokens": 4000, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
    "toolConfig": {
        "tools": [
            {"toolSpec": {"name": "weather", "description": "d", "inputSchema": {"json": {"type": "object"}}}},
            {"cachePoint": {"type": "default"}},
        ],
        "toolChoice": {"tool": {"name": "weather"}},
    },
    "additionalModelRequestFields": {
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "top_k": 40,
        "anthropic_beta": ["interleaved-thinking-2025-05-14"],
    },
    "additionalModelResponseFieldPaths": ["/stop_sequence"],
    "requestMetadata": {"team": "search"},
    "guardrailConfig": {"guardrailIdentifier": "g1", "guardrailVersion": "1"},
    "performanceConfig": {"latency": "optimized"},
}


def decode(body: dict[str, Any], model: str = MODEL) -> Request:
    return CONVERSE.decode_request(copy.deepcopy(body), path_model=model)


def test_a_request_decodes_and_reencodes_equal() -> None:
    request = decode(FULL)
    assert CONVERSE.encode_request(request, OPTIONS) == FULL
    minimal = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    assert CONVERSE.encode_request(decode(minimal), OPTIONS) == minimal
    empty_sections = {**minimal, "inferenceConfig": {}, "additionalModelRequestFields": {}, "system": []}
    assert CONVERSE.encode_request(decode(empty_sections), OPTIONS) == empty_sections
    null_sections = {**minimal, "inferenceConfig": None, "toolConfig": None, "additionalModelRequestFields": None}
    assert CONVERSE.encode_request(decode(null_sections), OPTIONS) == null_sections


def test_the_canonical_form_of_a_request() -> None:
    request = decode(FULL)
    assert request.model == MODEL and request.origin == "bedrock-converse"
    assert request.system is not None and request.system[0] == Text(
        text="Be brief.", cache_control={"type": "ephemeral", "ttl": "1h"}
    )
    user, assistant, results = request.messages
    assert user.content[0] == Text(text="Look at these.", cache_control={"type": "ephemeral"})
    assert user.content[1] == Image(media_type="image/png", data="iVBORw0KGgo=")
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    assert user.content[2] == Opaque(
        dialects=frozenset({"claude", "bedrock", "bedrock-converse"}),
        raw={**pdf, "title": "report", "cache_control": {"type": "ephemeral", "ttl": "5m"}},
    )
    assert isinstance(user.content[3], Opaque) and user.content[3].dialects == {"bedrock-converse"}
    assert assistant.content[:2] == (
        Reasoning(provider="anthropic", text="hmm", signature="sig-1"),
        Reasoning(provider="anthropic", redacted="abc"),
    )
    assert assistant.content[3] == ToolCall(id="tooluse_1", name="weather", arguments='{"city":"Paris"}')
    result = results.content[0]
    assert isinstance(result, ToolResult) and result.is_error is True and result.call_id == "tooluse_1"
    assert [p.text for p in result.content if isinstance(p, Text)] == ['{"temp":21}', "sunny"]
    assert (request.max_tokens, request.temperature, request.top_p, request.stop) == (4000, 0.5, 0.9, ("END",))
    assert request.top_k == 40
    assert request.reasoning == ReasoningConfig(mode="enabled", budget_tokens=2048)
    assert request.tool_choice == ToolChoice(mode="tool", name="weather")
    assert request.tools is not None and request.tools[0] == Tool(
        name="weather", description="d", parameters={"type": "object"}, cache_control={"type": "ephemeral"}
    )
    assert request.metadata == {"team": "search"}
    assert request.extra["additionalModelRequestFields"] == {"anthropic_beta": ["interleaved-thinking-2025-05-14"]}


def test_a_converse_request_toward_claude() -> None:
    body = CLAUDE.encode_request(decode(FULL), OPTIONS)
    assert body["system"] == [
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    user, assistant, results = body["messages"]
    assert user["content"][0] == {"type": "text", "text": "Look at these.", "cache_control": {"type": "ephemeral"}}
    assert user["content"][2]["type"] == "document" and len(user["content"]) == 3  # csv and video: dropped
    assert assistant["content"][:2] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "abc"},
    ]
    assert results["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "tooluse_1",
        "content": [{"type": "text", "text": '{"temp":21}'}, {"type": "text", "text": "sunny"}],
        "is_error": True,
    }
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["tool_choice"] == {"type": "tool", "name": "weather"}
    assert body["top_k"] == 40 and body["stop_sequences"] == ["END"]
    assert "additionalModelResponseFieldPaths" not in body and "anthropic_beta" not in body


def test_a_claude_request_toward_converse() -> None:
    claude_body = {
        "model": "claude-x",
        "max_tokens": 1000,
        "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "read"},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "abc"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
        ],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
    }
    body = CONVERSE.encode_request(CLAUDE.decode_request(claude_body), OPTIONS)
    assert body == {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "read"},
                    {"document": {"format": "txt", "name": "document", "source": {"text": "abc"}}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "t", "signature": "s"}}},
                    {"toolUse": {"toolUseId": "toolu_1", "name": "f", "input": {}}},
                ],
            },
            {"role": "user", "content": [{"toolResult": {"toolUseId": "toolu_1", "content": [{"text": "ok"}]}}]},
        ],
        "system": [{"text": "sys"}, {"cachePoint": {"type": "default"}}],
        "inferenceConfig": {"maxTokens": 1000},
        "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]},
        "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 2000}},
    }


def test_an_openai_request_toward_converse() -> None:
    request = Request(
        model=MODEL,
        messages=(
            Message(role="developer", content=(Text(text="be kind"),)),
            Message(role="user", content=(Image(url="data:image/jpeg;base64,/9j/AA=="), Text(text="go"))),
            Message(role="assistant", content=(ToolCall(id="call_1", name="f", arguments='{"a":1}'),)),
            Message(role="tool", content=(ToolResult(call_id="call_1", content=(Text(text="r1"),)),)),
            Message(role="user", content=(Text(text="next"),)),
        ),
        tools=(Tool(name="f"), Tool(name="g", description="", parameters={"properties": {}})),
        tool_choice=ToolChoice(mode="required"),
        reasoning=ReasoningConfig(effort="high"),
        temperature=1.5,
        seed=3,
        origin="openai-chat",
    )
    body = CONVERSE.encode_request(request, OPTIONS)
    assert body["system"] == [{"text": "be kind"}]
    assert body["messages"] == [
        {"role": "user", "content": [{"image": {"format": "jpeg", "source": {"bytes": "/9j/AA=="}}}, {"text": "go"}]},
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "call_1", "name": "f", "input": {"a": 1}}}]},
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "call_1", "content": [{"text": "r1"}]}}, {"text": "next"}],
        },
    ]
    assert body["toolConfig"] == {
        "tools": [
            {"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
            {"toolSpec": {"name": "g", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
        ],
        "toolChoice": {"any": {}},
    }
    assert "additionalModelRequestFields" not in body  # no thinking while a tool use is forced
    assert body["inferenceConfig"] == {"temperature": 1.5}
    thinking = CONVERSE.encode_request(
        Request(model=MODEL, messages=(), reasoning=ReasoningConfig(effort="high")), OPTIONS
    )
    assert thinking["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 8192}}
    assert thinking["inferenceConfig"] == {"maxTokens": 8192 + 8192}


def test_openai_reasoning_rides_through_a_converse_client_and_back() -> None:
    reasoning = Reasoning(provider="openai", id="rs_1", summary=("why",), signature="enc")
    response = Response(
        id="r", model="m", content=(reasoning,), stop_reason=StopReason.END_TURN, origin="openai-responses"
    )
    shown = orjson.loads(CONVERSE.encode_response(response, decode({"messages": []})))
    block = shown["output"]["message"]["content"][0]
    assert block["reasoningContent"]["reasoningText"]["text"] == "why"
    back = decode({"messages": [{"role": "assistant", "content": [block]}]})
    assert back.messages[0].content == (reasoning,)
    block["reasoningContent"]["reasoningText"]["signature"] += "x"
    with pytest.raises(RequestError):
        decode({"messages": [{"role": "assistant", "content": [block]}]})


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "messages"),
        ({"messages": [{"role": "system", "content": []}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"text": "a", "image": {}}]}]}, "messages[0].content[0]"),
        (
            {"messages": [{"role": "user", "content": [{"toolUse": {"toolUseId": "x", "name": "n"}}]}]},
            "messages[0].content[0].toolUse.input",
        ),
        ({"messages": [], "inferenceConfig": {"maxTokens": "9"}}, "inferenceConfig.maxTokens"),
        ({"messages": [], "toolConfig": {"toolChoice": {"none": {}}}}, "toolConfig.toolChoice"),
    ],
)
def test_malformed_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(RequestError) as info:
        decode(body)
    assert info.value.error.param == param


def test_the_model_must_be_in_the_path() -> None:
    with pytest.raises(RequestError, match="/model/"):
        CONVERSE.decode_request({"messages": []}, path_model=None)


# -- responses, stop reasons, usage ------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "canonical"),
    [
        ("end_turn", StopReason.END_TURN),
        ("tool_use", StopReason.TOOL_USE),
        ("max_tokens", StopReason.MAX_TOKENS),
        ("stop_sequence", StopReason.STOP_SEQUENCE),
        ("guardrail_intervened", StopReason.CONTENT_FILTER),
        ("content_filtered", StopReason.CONTENT_FILTER),
        ("model_context_window_exceeded", StopReason.CONTEXT_WINDOW_EXCEEDED),
        ("malformed_tool_use", StopReason.END_TURN),
    ],
)
def test_stop_reasons_map_and_come_back_exactly(wire: str, canonical: StopReason) -> None:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
        "stopReason": wire,
        "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3},
        "metrics": {"latencyMs": 0},
    }
    request = decode({"messages": []})
    response = CONVERSE.decode_response(body, request)
    assert response.stop_reason is canonical
    assert orjson.loads(CONVERSE.encode_response(response, request)) == body


def test_usage_with_cache_tokens_both_ways() -> None:
    usage = {
        "inputTokens": 10,
        "outputTokens": 5,
        "totalTokens": 45,
        "cacheReadInputTokens": 20,
        "cacheWriteInputTokens": 10,
    }
    body = {"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "end_turn", "usage": usage}
    response = CONVERSE.decode_response(body, decode({"messages": []}))
    assert response.usage == Usage(input_tokens=10, output_tokens=5, cache_read_tokens=20, cache_write_tokens=10)
    claude_answer = orjson.loads(CLAUDE.encode_response(response, Request(model="c", messages=())))
    assert claude_answer["usage"] == {
        "input_tokens": 10,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 20,
        "output_tokens": 5,
    }
    summary = CONVERSE.summarize(body)
    assert summary is not None and summary.usage == response.usage and summary.stop_reason is StopReason.END_TURN


def test_a_foreign_answer_as_converse() -> None:
    response = Response(
        id="chatcmpl-1",
        model="gpt",
        content=(Text(text="hi"), ToolCall(id="call.1", name="f", arguments=""), Image(data="x")),
        stop_reason=StopReason.STOP_SEQUENCE,
        stop_sequence="END",
        usage=Usage(input_tokens=3, output_tokens=4),
        origin="openai-chat",
    )
    asked = decode({"messages": [], "additionalModelResponseFieldPaths": ["/stop_sequence"]})
    assert orjson.loads(CONVERSE.encode_response(response, asked)) == {
        "output": {
            "message": {
                "role": "assistant",
                "content": [{"text": "hi"}, {"toolUse": {"toolUseId": "call_1", "name": "f", "input": {}}}],
            }
        },
        "stopReason": "stop_sequence",
        "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7},
        "metrics": {"latencyMs": 0},
        "additionalModelResponseFields": {"stop_sequence": "END"},
    }


def test_an_invalid_upstream_answer_is_a_502() -> None:
    with pytest.raises(UpstreamError) as info:
        CONVERSE.decode_response({"output": {"message": {"content": "x"}}}, decode({"messages": []}))
    assert info.value.error.status == 502


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "error_type"),
    [
        (ErrorKind.INVALID_REQUEST, 400, "ValidationException"),
        (ErrorKind.PERMISSION, 403, "AccessDeniedException"),
        (ErrorKind.NOT_FOUND, 404, "ResourceNotFoundException"),
        (ErrorKind.RATE_LIMIT, 429, "ThrottlingException"),
        (ErrorKind.API_ERROR, 500, "InternalServerException"),
        (ErrorKind.OVERLOADED, 503, "ServiceUnavailableException"),
    ],
)
def test_errors_render_as_bedrock_does(kind: ErrorKind, status: int, error_type: str) -> None:
    rendered = CONVERSE.encode_error(ProxyError(status=status, kind=kind, message="m", retry_after="3"))
    assert (rendered.status, orjson.loads(rendered.body)) == (status, {"message": "m"})
    assert ("x-amzn-ErrorType", error_type) in rendered.headers and ("Retry-After", "3") in rendered.headers
    back = CONVERSE.decode_error(rendered.status, rendered.body, dict(rendered.headers))
    assert (back.kind, back.message, back.retry_after) == (kind, "m", "3")


# -- upstream paths, proxy mode ----------------------------------------------------------------


def test_upstream_paths_and_headers() -> None:
    request = Request(model="arn:aws:bedrock:us-east-1:1:inference-profile/x", messages=())
    assert (
        CONVERSE.upstream_path(request) == "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse"
    )
    streamed = Request(model="m:0", messages=(), stream=True)
    assert CONVERSE.upstream_path(streamed) == "/model/m%3A0/converse-stream"
    assert CONVERSE.upstream_headers(streamed, {}) == {"accept": "application/vnd.amazon.eventstream"}
    assert CONVERSE.encode_model_list(["a"]) is None


def test_system_edits_on_a_raw_body() -> None:
    edit = SystemEdit(replacements=(("brief", "terse"),))
    body: dict[str, Any] = {"system": [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}], "messages": []}
    assert CONVERSE.edit_system_raw(body, edit, "Appended.")
    assert body["system"] == [{"text": "Be terse."}, {"cachePoint": {"type": "default"}}, {"text": "Appended."}]
    bare: dict[str, Any] = {"messages": []}
    assert CONVERSE.edit_system_raw(bare, edit, "Only.") and bare["system"] == [{"text": "Only."}]
    assert not CONVERSE.edit_system_raw({"messages": []}, edit, None)


def test_freeform_tools_of_a_responses_client_come_back_as_raw_text() -> None:
    patch = Tool(name="apply_patch", kind="custom")
    request = Request(model=MODEL, messages=(Message(role="user", content=(Text(text="go"),)),), tools=(patch,))
    sent = CONVERSE.encode_request(request, OPTIONS)
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"] == ["input"]
    use = {"toolUse": {"toolUseId": "t1", "name": "apply_patch", "input": {"input": "*** Begin Patch"}}}
    answer = {"output": {"message": {"role": "assistant", "content": [use]}}, "stopReason": "tool_use", "usage": {}}
    [call] = CONVERSE.decode_response(answer, request).content
    assert call == ToolCall(id="t1", name="apply_patch", arguments="*** Begin Patch", kind="custom")


def _slots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index path inside a JSON value."""
    found: list[tuple[Any, ...]] = [path] if path else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found += _slots(child, (*path, key))
    return found


def _mutated(body: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    out = copy.deepcopy(body)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if replacement is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return out


_DELETE = object()


def test_every_slot_deleted_or_replaced_decodes_or_is_a_400_and_encodes_everywhere() -> None:
    """No malformed Converse body crashes the decoder, and whatever decodes encodes toward every dialect."""
    targets = [
        get_dialect(name) for name in ("claude", "openai-chat", "openai-responses", "bedrock", "bedrock-converse")
    ]
    for path in _slots(FULL):
        for replacement in (_DELETE, None, 7, "x", [], {}, [{}], {"text": 1}):
            try:
                request = decode(_mutated(FULL, path, replacement))
            except RequestError:
                continue
            for target in targets:
                try:
                    target.encode_request(request, OPTIONS)
                except RequestError:
                    pass


ANSWER: dict[str, Any] = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": "t", "signature": "s"}}},
                {"reasoningContent": {"redactedContent": "YWJj"}},
                {"text": "hi"},
                {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": [1]}}},
            ],
        }
    },
    "stopReason": "tool_use",
    "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3, "cacheReadInputTokens": 4},
    "metrics": {"latencyMs": 5},
    "additionalModelResponseFields": {"stop_sequence": "x"},
}


def test_every_answer_slot_deleted_or_replaced_decodes_or_is_a_502_and_encodes_everywhere() -> None:
    request = decode({"messages": [], "toolConfig": {"tools": [{"toolSpec": {"name": "f"}}]}})
    clients = [
        get_dialect(name) for name in ("claude", "openai-chat", "openai-responses", "bedrock", "bedrock-converse")
    ]
    for path in _slots(ANSWER):
        for replacement in (_DELETE, None, 7, "x", [], {}, [{}], {"text": 1}):
            try:
                response = CONVERSE.decode_response(_mutated(ANSWER, path, replacement), request)
            except UpstreamError:
                continue
            for client in clients:
                client.encode_response(response, request)


def test_a_gemini_thought_signature_rides_through_a_converse_client_and_back() -> None:
    """Regression: every envelope in a reasoning signature was read as an OpenAI item, so a Converse client
    replaying the thought signature a Gemini upstream gave it got a 400 ("of the wrong kind")."""
    gemini = get_dialect("gemini")
    request = decode({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"text": "let me think", "thought": True, "thoughtSignature": "c2ln"}],
                },
                "finishReason": "STOP",
            }
        ]
    }
    shown = orjson.loads(CONVERSE.encode_response(gemini.decode_response(answer, request), request))
    block = shown["output"]["message"]["content"][0]
    assert block["reasoningContent"]["reasoningText"]["signature"].startswith("lpx1.")
    replay = decode(
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}, {"role": "assistant", "content": [block]}]}
    )
    (reasoning,) = replay.messages[1].content
    assert isinstance(reasoning, Reasoning) and reasoning.provider == "anthropic"
    toward_gemini: Any = gemini.encode_request(replay, OPTIONS)
    assert toward_gemini["contents"][1]["parts"] == [
        {"text": "let me think", "thought": True, "thoughtSignature": "c2ln"}
    ]
