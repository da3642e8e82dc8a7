"""Valid request bodies the fuzzer starts from: small hand-written ones per dialect, and the captured ones.

Hand-written bodies cover what the captures do not (Chat has no capture; images, thinking, forced tool
choice, structured output); the captures (``tests.fixtures``) bring the size and shape of real clients.
Every body here is accepted by the proxy as it is, so a failure after a mutation is the mutation's doing.
"""

from __future__ import annotations

from typing import Any

import orjson

from tests.fixtures import load_request, request_names

MODEL = "fuzz-model"
"""The model every fuzz route serves under its prefix."""
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
"""A 1x1 PNG, base64."""

_CLAUDE_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}

_CLAUDE: list[dict[str, Any]] = [
    {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]},
    {
        "model": MODEL,
        "max_tokens": 256,
        "stream": True,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "tools": [_CLAUDE_TOOL],
        "tool_choice": {"type": "auto"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "need the tool", "signature": "c2lnbmF0dXJl"},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": "sunny"}]}
                ],
            },
        ],
    },
    {
        "model": MODEL,
        "max_tokens": 2048,
        "system": "You are a careful assistant.",
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "text", "text": "what is this?"},
                ],
            }
        ],
    },
    {
        "model": MODEL,
        "max_tokens": 128,
        "stream": True,
        "tools": [_CLAUDE_TOOL, {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        "output_config": {"effort": "low"},
        "messages": [{"role": "user", "content": "use the tool"}],
    },
]

_CHAT_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}

_CHAT: list[dict[str, Any]] = [
    {"model": MODEL, "messages": [{"role": "user", "content": "hello"}]},
    {
        "model": MODEL,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 256,
        "tools": [_CHAT_TOOL],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
    },
    {
        "model": MODEL,
        "max_tokens": 100,
        "temperature": 1.5,
        "top_p": 0.5,
        "n": 1,
        "seed": 7,
        "stop": ["END", "STOP"],
        "user": "u-1",
        "reasoning_effort": "high",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "Answer in JSON."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
                ],
            },
        ],
    },
    {
        "model": MODEL,
        "stream": True,
        "tools": [_CHAT_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok", "reasoning_content": "thinking about it"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ],
    },
]

_RESPONSES_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}

_RESPONSES: list[dict[str, Any]] = [
    {"model": MODEL, "input": "hello"},
    {
        "model": MODEL,
        "stream": True,
        "instructions": "You are terse.",
        "tools": [_RESPONSES_TOOL, {"type": "web_search"}],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "weather in Paris?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "ZW5jcnlwdGVk"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ],
    },
    {
        "model": MODEL,
        "max_output_tokens": 300,
        "temperature": 0.2,
        "top_p": 0.8,
        "user": "u-1",
        "metadata": {"k": "v"},
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        "input": [
            {"role": "developer", "content": "Answer in JSON."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this?"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
                ],
            },
            {"role": "assistant", "content": [{"type": "output_text", "text": "an image"}]},
            {"role": "user", "content": "thanks"},
        ],
    },
    {
        "model": MODEL,
        "stream": True,
        "tools": [_RESPONSES_TOOL],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "input": [{"role": "user", "content": "use the tool"}],
    },
]


_GEMINI_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]},
}

_GEMINI: list[dict[str, Any]] = [
    {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]},
    {
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "tools": [{"functionDeclarations": [_GEMINI_TOOL]}],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "contents": [
            {"role": "user", "parts": [{"text": "weather in Paris?"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "need the tool", "thought": True},
                    {
                        "functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "c2lnbmF0dXJl",
                    },
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"output": "sunny"}}}
                ],
            },
        ],
    },
    {
        "generationConfig": {
            "temperature": 0.5,
            "topP": 0.9,
            "topK": 40,
            "maxOutputTokens": 2048,
            "stopSequences": ["END"],
            "seed": 7,
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
            "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "contents": [
            {
                "parts": [
                    {"inlineData": {"mimeType": "image/png", "data": PNG}},
                    {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}},
                    {"text": "what is this?"},
                ]
            }
        ],
    },
    {
        "systemInstruction": "Answer in JSON.",
        "tools": [
            {"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": {"type": "object"}}]},
            {"googleSearch": {}},
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "generationConfig": {"thinkingConfig": {"thinkingBudget": -1}},
        "contents": [
            {"role": "user", "parts": [{"text": "first"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"error": "no"}}}]},
            {"role": "user", "parts": [{"text": "second"}]},
        ],
    },
]

_CONVERSE_TOOL = {
    "toolSpec": {
        "name": "get_weather",
        "description": "Weather for a city",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    }
}

_CONVERSE: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": [{"text": "hello"}]}]},
    {
        "system": [{"text": "You are terse."}, {"cachePoint": {"type": "default"}}],
        "inferenceConfig": {"maxTokens": 256},
        "toolConfig": {"tools": [_CONVERSE_TOOL, {"cachePoint": {"type": "default"}}], "toolChoice": {"auto": {}}},
        "messages": [
            {"role": "user", "content": [{"text": "weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {"reasoningContent": {"reasoningText": {"text": "need the tool", "signature": "c2lnbmF0dXJl"}}},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "tooluse_1",
                            "content": [{"text": "sunny"}, {"json": {"temp": 21}}],
                            "status": "success",
                        }
                    }
                ],
            },
        ],
    },
    {
        "system": [{"text": "You are a careful assistant."}],
        "inferenceConfig": {"maxTokens": 2048, "stopSequences": ["END"]},
        "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}, "top_k": 40},
        "requestMetadata": {"user": "u-1"},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"image": {"format": "png", "source": {"bytes": PNG}}},
                    {"document": {"format": "txt", "name": "notes", "source": {"text": "some notes"}}},
                    {"text": "what is this?"},
                ],
            }
        ],
    },
    {
        "inferenceConfig": {"maxTokens": 128, "temperature": 0.2, "topP": 0.8},
        "toolConfig": {"tools": [_CONVERSE_TOOL], "toolChoice": {"tool": {"name": "get_weather"}}},
        "additionalModelResponseFieldPaths": ["/stop_sequence"],
        "messages": [
            {"role": "user", "content": [{"text": "first"}]},
            {"role": "assistant", "content": [{"text": "ok"}]},
            {"role": "user", "content": [{"text": "use the tool"}, {"cachePoint": {"type": "default"}}]},
        ],
    },
]


def _bedrock(body: dict[str, Any]) -> dict[str, Any]:
    """A Messages body in Bedrock's envelope: no ``model`` or ``stream`` (the path says both)."""
    out = {k: v for k, v in body.items() if k not in ("model", "stream")}
    out["anthropic_version"] = "bedrock-2023-05-31"
    return out


def _captured(prefix: str) -> list[dict[str, Any]]:
    bodies = []
    for name in request_names(prefix):
        body = load_request(name)["body"]
        body["model"] = MODEL
        bodies.append(body)
    return bodies


def seeds(dialect: str) -> tuple[list[bytes], list[bytes]]:
    """(hand-written, captured) valid bodies for a client dialect, serialised (each case parses its own copy)."""
    if dialect == "claude":
        small, captured = _CLAUDE, _captured("claude_code")
    elif dialect == "openai-chat":
        small, captured = _CHAT, []
    elif dialect == "openai-responses":
        small, captured = _RESPONSES, _captured("codex")
    elif dialect == "bedrock":
        small, captured = [_bedrock(b) for b in _CLAUDE], [_bedrock(b) for b in _captured("claude_code")]
        small[1]["anthropic_beta"] = ["interleaved-thinking-2025-05-14"]
    elif dialect == "gemini":
        small, captured = _GEMINI, []
    elif dialect == "bedrock-converse":
        small, captured = _CONVERSE, []
    else:
        raise KeyError(f"no fuzz seeds for the {dialect!r} dialect: add them to tests/fuzz_seeds.py")
    return [orjson.dumps(b) for b in small], [orjson.dumps(b) for b in captured]
