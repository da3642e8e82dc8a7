"""The gemini codec: requests both ways, the signature carry across dialects, ids, usage, errors, raw edits."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from llm_proxy.canonical import (
    ErrorKind,
    Image,
    Message,
    ProxyError,
    Reasoning,
    ReasoningConfig,
    Request,
    ResponseFormat,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import EncodeOptions
from llm_proxy.dialects.gemini.framing import ArraySplitter
from llm_proxy.dialects.gemini.response import decode_usage, encode_usage
from llm_proxy.errors import RequestError
from llm_proxy.prompt import SystemEdit

GEMINI = get_dialect("gemini")
CLAUDE = get_dialect("claude")
CHAT = get_dialect("openai-chat")
OPTIONS = EncodeOptions()
SIGNATURE = "CiQB0e2Kb7zvVQ3JVKRSmxG2uR1iI0wDRg6Yw1k4m3o0rWl7lnQKbQ"

FULL_REQUEST: dict[str, Any] = {
    "contents": [
        {
            "role": "user",
            "parts": [
                {"text": "What is in this picture, and the weather?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            ],
        },
        {
            "role": "model",
            "parts": [
                {"text": "thinking out loud", "thought": True},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": SIGNATURE},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_time", "response": {"output": "noon"}}},
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21, "sky": "clear"}}},
            ],
        },
        {"role": "user", "parts": [{"text": "thanks"}, {"executableCode": {"language": "PYTHON", "code": "1+1"}}]},
    ],
    "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Be kind."}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather.",
                    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
                },
                {"name": "get_time", "parametersJsonSchema": {"type": "object", "properties": {}}},
            ]
        },
        {"googleSearch": {}},
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
    "generationConfig": {
        "temperature": 0.3,
        "topP": 0.9,
        "topK": 40,
        "maxOutputTokens": 1000,
        "stopSequences": ["END"],
        "candidateCount": 1,
        "seed": 7,
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}},
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
        "presencePenalty": 0.5,
    },
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    "cachedContent": "cachedContents/abc",
}


def decode(body: dict[str, Any], model: str = "gemini-2.5-pro", query: dict[str, str] | None = None) -> Request:
    return GEMINI.decode_request(copy.deepcopy(body), path_model=model, query=query)


def test_request_round_trip_is_exact() -> None:
    request = decode(FULL_REQUEST)
    assert GEMINI.encode_request(request, OPTIONS) == FULL_REQUEST


@pytest.mark.parametrize(
    "body",
    [
        {"contents": [{"parts": [{"text": "no role"}]}]},
        {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "systemInstruction": "a bare string"},
        {"contents": [], "generationConfig": {}},
        {
            "contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}},
        },
        {
            "contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "generationConfig": {
                "thinkingConfig": {"thinkingBudget": -1, "includeThoughts": False},
                "responseMimeType": "text/x.enum",
                "responseJsonSchema": {"enum": ["a"]},
            },
        },
        {
            "contents": [
                {"role": "model", "parts": [{"functionCall": {"name": "f", "id": "call-9"}}]},
                {
                    "role": "user",
                    "parts": [{"functionResponse": {"id": "call-9", "name": "f", "response": {"error": "boom"}}}],
                },
            ]
        },
        {
            "contents": [
                {
                    "role": "model",
                    "parts": [
                        {"thought": True, "thoughtSignature": SIGNATURE},
                        {"text": "done", "thoughtSignature": SIGNATURE},
                    ],
                }
            ]
        },
    ],
)
def test_more_round_trips(body: dict[str, Any]) -> None:
    assert GEMINI.encode_request(decode(body), OPTIONS) == body


def test_decoded_fields() -> None:
    request = decode(FULL_REQUEST)
    assert request.model == "gemini-2.5-pro" and request.origin == "gemini"
    assert request.system == (Text(text="Be brief."), Text(text="Be kind."))
    assert (request.temperature, request.top_p, request.top_k, request.max_tokens) == (0.3, 0.9, 40, 1000)
    assert request.stop == ("END",) and request.seed == 7 and request.n == 1
    assert request.tool_choice == ToolChoice(mode="tool", name="get_weather")
    assert request.reasoning == ReasoningConfig(mode="enabled", budget_tokens=2048, summary="auto")
    assert request.response_format == ResponseFormat(
        type="json_schema", schema={"type": "object", "properties": {"a": {"type": "string"}}}
    )
    weather = request.tools[0] if request.tools else None
    assert isinstance(weather, Tool) and isinstance(weather.parameters, dict)
    assert weather.parameters["type"] == "object"  # OpenAPI types as JSON Schema
    user, model, results, _ = request.messages
    assert isinstance(user.content[1], Image) and user.content[1].media_type == "image/png"
    thought, signed, call, other = model.content
    assert isinstance(thought, Reasoning) and thought.text == "thinking out loud"
    assert isinstance(signed, Reasoning) and signed.signature and signed.signature.startswith("lpx1.")
    assert isinstance(call, ToolCall) and isinstance(other, ToolCall)
    first, second = results.content
    # results without ids are matched to their calls by name, whatever their order
    assert isinstance(first, ToolResult) and first.call_id == other.id and first.content == (Text(text="noon"),)
    assert isinstance(second, ToolResult) and second.call_id == call.id
    assert orjson.loads(second.content[0].text) == {"temp": 21, "sky": "clear"}  # type: ignore[union-attr]


def test_ids_are_stable_across_requests() -> None:
    assert decode(FULL_REQUEST).messages[1] == decode(FULL_REQUEST).messages[1]


def test_candidate_count_above_one_is_refused() -> None:
    body = {"contents": [], "generationConfig": {"candidateCount": 2}}
    with pytest.raises(RequestError, match="candidateCount"):
        decode(body)


def test_model_is_required_in_the_path() -> None:
    with pytest.raises(RequestError, match="path"):
        GEMINI.decode_request({"contents": []}, path_model=None)


def test_alt_sse_is_kept_for_the_answer() -> None:
    assert decode({"contents": []}, query={"alt": "sse"}).native["alt"] == "sse"
    assert "alt" not in decode({"contents": []}).native


def test_count_tokens_body_wrapping_a_request() -> None:
    inner = {"contents": [{"role": "user", "parts": [{"text": "count me"}]}], "model": "models/x"}
    request = decode({"generateContentRequest": inner})
    assert request.messages[0].content == (Text(text="count me"),)


def test_a_claude_conversation_toward_gemini() -> None:
    """Claude's shape (tool results in user turns, ids everywhere) becomes contents with named responses."""
    body: dict[str, Any] = {
        "model": "c",
        "max_tokens": 50,
        "system": "sys",
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt"}]},
        ],
        "tools": [{"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}],
        "thinking": {"type": "enabled", "budget_tokens": 2000},
        "temperature": 0.5,
    }
    out = GEMINI.encode_request(CLAUDE.decode_request(body), OPTIONS)
    assert out["systemInstruction"] == {"parts": [{"text": "sys"}]}
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "Bash", "args": {"command": "ls"}, "id": "toolu_1"}}]},
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "Bash", "id": "toolu_1", "response": {"output": "a.txt"}}}],
        },
    ]
    assert out["tools"] == [
        {"functionDeclarations": [{"name": "Bash", "parametersJsonSchema": body["tools"][0]["input_schema"]}]}
    ]
    assert out["generationConfig"] == {
        "temperature": 0.5,
        "maxOutputTokens": 50,
        "thinkingConfig": {"thinkingBudget": 2000, "includeThoughts": True},
    }


def test_a_chat_conversation_toward_gemini() -> None:
    body = {
        "model": "g",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
                    {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "not json"}},
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "tool", "tool_call_id": "c2", "content": "two"},
        ],
        "reasoning_effort": "low",
        "response_format": {"type": "json_object"},
        "n": 1,
    }
    out = GEMINI.encode_request(CHAT.decode_request(body), OPTIONS)
    assert out["systemInstruction"] == {"parts": [{"text": "sys"}]}
    assert out["contents"][1]["parts"][1] == {
        "functionCall": {"name": "g", "args": {"_raw_arguments": "not json"}, "id": "c2"}
    }
    assert out["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "f", "id": "c1", "response": {"output": "one"}}},
            {"functionResponse": {"name": "g", "id": "c2", "response": {"output": "two"}}},
        ],
    }  # parallel results answer in one turn
    assert out["generationConfig"] == {
        "candidateCount": 1,
        "responseMimeType": "application/json",
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
    }


def test_n_above_one_toward_gemini_is_refused() -> None:
    request = Request(model="m", messages=(), n=2, origin="openai-chat")
    with pytest.raises(RequestError):
        GEMINI.encode_request(request, OPTIONS)


def test_a_gemini_signature_survives_a_claude_client() -> None:
    """Gemini's signature -> a Claude thinking block (carried) -> back in the next request -> on its call again."""
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": SIGNATURE}],
                },
                "finishReason": "STOP",
            }
        ],
        "responseId": "r1",
    }
    response = GEMINI.decode_response(answer, decode({"contents": []}))
    claude_request = Request(model="m", messages=(), origin="claude")
    shown = orjson.loads(CLAUDE.encode_response(response, claude_request))
    thinking, tool_use = shown["content"]
    assert thinking["type"] == "thinking" and thinking["signature"].startswith("lpx1.")
    echoed = {
        "model": "m",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": shown["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "ok"}]},
        ],
    }
    out = GEMINI.encode_request(CLAUDE.decode_request(echoed), OPTIONS)
    assert out["contents"][1]["parts"] == [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": SIGNATURE}]
    assert out["contents"][2]["parts"][0]["functionResponse"]["name"] == "f"


def test_claude_thinking_survives_a_gemini_client() -> None:
    """A Claude signature rides in a thoughtSignature; the Gemini client sends it back; Claude gets its block."""
    from llm_proxy.canonical import Response, StopReason

    thinking = Reasoning(provider="anthropic", text="hmm", signature="claude-sig")
    response = Response(id="m1", model="c", content=(thinking, Text(text="hi")), stop_reason=StopReason.END_TURN)
    shown = orjson.loads(GEMINI.encode_response(response, decode({"contents": []})))
    parts = shown["candidates"][0]["content"]["parts"]
    assert parts[0]["thought"] is True and parts[0]["thoughtSignature"].startswith("lpx1.")
    echoed = {
        "contents": [
            {"role": "user", "parts": [{"text": "q"}]},
            {"role": "model", "parts": parts},
            {"role": "user", "parts": [{"text": "more"}]},
        ]
    }
    out = CLAUDE.encode_request(decode(echoed), OPTIONS)
    assert out["messages"][1]["content"][0] == {"type": "thinking", "thinking": "hmm", "signature": "claude-sig"}


def test_a_tampered_carried_signature_is_refused() -> None:
    body = {
        "contents": [{"role": "model", "parts": [{"text": "x", "thought": True, "thoughtSignature": "lpx1.AAAA.BBBB"}]}]
    }
    with pytest.raises(RequestError):
        decode(body)


@pytest.mark.parametrize(
    ("wire", "usage"),
    [
        (
            {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
            Usage(input_tokens=10, output_tokens=5),
        ),
        (
            {
                "promptTokenCount": 100,
                "cachedContentTokenCount": 60,
                "candidatesTokenCount": 5,
                "thoughtsTokenCount": 20,
                "totalTokenCount": 125,
            },
            Usage(input_tokens=40, cache_read_tokens=60, output_tokens=25, reasoning_tokens=20),
        ),
    ],
)
def test_usage_both_ways(wire: dict[str, int], usage: Usage) -> None:
    assert decode_usage(wire) == usage
    assert encode_usage(usage) == wire


@pytest.mark.parametrize(
    ("kind", "status", "name"),
    [
        (ErrorKind.INVALID_REQUEST, 400, "INVALID_ARGUMENT"),
        (ErrorKind.AUTHENTICATION, 401, "UNAUTHENTICATED"),
        (ErrorKind.PERMISSION, 403, "PERMISSION_DENIED"),
        (ErrorKind.NOT_FOUND, 404, "NOT_FOUND"),
        (ErrorKind.RATE_LIMIT, 429, "RESOURCE_EXHAUSTED"),
        (ErrorKind.API_ERROR, 500, "INTERNAL"),
        (ErrorKind.OVERLOADED, 503, "UNAVAILABLE"),
        (ErrorKind.TIMEOUT, 504, "DEADLINE_EXCEEDED"),
    ],
)
def test_errors_in_googles_shape(kind: ErrorKind, status: int, name: str) -> None:
    rendered = GEMINI.encode_error(ProxyError(status=status, kind=kind, message="m"))
    assert rendered.status == status
    assert orjson.loads(rendered.body) == {"error": {"code": status, "message": "m", "status": name}}
    assert GEMINI.decode_error(status, rendered.body, {}).kind is kind


def test_an_error_body_that_is_not_googles() -> None:
    error = GEMINI.decode_error(502, b"<html>bad gateway</html>", {})
    assert error.status == 502 and "bad gateway" in error.message


def test_array_splitter_finds_elements_split_anywhere() -> None:
    data = b'[{"a": "x]}\\"{"},\r\n{"b": [1, {"c": 2}]}\r\n]trailing'
    whole = ArraySplitter().feed(data)
    assert [orjson.loads(e) for e in whole] == [{"a": 'x]}"{'}, {"b": [1, {"c": 2}]}]
    for cut in range(len(data) + 1):
        splitter = ArraySplitter()
        assert splitter.feed(data[:cut]) + splitter.feed(data[cut:]) == whole
        assert splitter.ended


def test_raw_system_edits() -> None:
    edit = SystemEdit(replacements=(("brief", "short"),), append="tail")
    body: dict[str, Any] = {"contents": [], "systemInstruction": {"parts": [{"text": "Be brief."}]}}
    assert GEMINI.edit_system_raw(body, edit, "tail")
    assert body["systemInstruction"] == {"parts": [{"text": "Be short."}, {"text": "tail"}]}
    empty: dict[str, Any] = {"contents": []}
    assert GEMINI.edit_system_raw(empty, edit, "tail") and empty["systemInstruction"] == {"parts": [{"text": "tail"}]}
    assert not GEMINI.edit_system_raw({"contents": []}, edit, None)


def test_model_list_in_googles_shape() -> None:
    listing = orjson.loads(GEMINI.encode_model_list(["a", "b"]) or b"")
    assert [m["name"] for m in listing["models"]] == ["models/a", "models/b"]
    assert "generateContent" in listing["models"][0]["supportedGenerationMethods"]


def test_summarize() -> None:
    body = {
        "candidates": [{"content": {"parts": [{"functionCall": {"name": "f"}}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2},
        "modelVersion": "gemini-x",
    }
    summary = GEMINI.summarize(body)
    assert (
        summary is not None and summary.model == "gemini-x" and summary.usage == Usage(input_tokens=3, output_tokens=2)
    )
    assert summary.stop_reason is not None and summary.stop_reason.value == "tool_use"


def test_upstream_paths() -> None:
    request = Request(model="gemini-2.5-flash", messages=(Message(role="user", content=(Text(text="x"),)),))
    assert GEMINI.upstream_path(request) == "/v1beta/models/gemini-2.5-flash:generateContent"
    streamed = Request(model="models/tuned:1", messages=(), stream=True)
    assert GEMINI.upstream_path(streamed) == "/v1beta/models/tuned%3A1:streamGenerateContent?alt=sse"
