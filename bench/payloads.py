"""The request bodies the benchmark sends, built once per contender (only the model name differs).

The non-streaming request is about 5 KB: a system prompt and a long user turn, like a small agent
turn. The tool-call requests ask the mock (``[[mock:tool NAME]]``) to end its streamed text with a
call to a declared tool, so a translated stream exercises text and tool-call blocks.
"""

from __future__ import annotations

from typing import Any

import orjson

TOOL_NAME = "get_weather"
_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}
_TOOL_DESCRIPTION = "Current weather for a city."
_SYSTEM = "You are a careful assistant that answers questions about software performance. " * 24
_USER = "Summarise the measurements below and point out anything unusual. " + "latency=1.2ms rps=4100 " * 140
_ASK_TOOL = f"What is the weather in Paris? [[mock:tool {TOOL_NAME}]]"

# what each dialect's stream ends with: a stream that lacks it did not complete
STREAM_END = {
    "openai-chat": b"[DONE]",
    "claude": b"message_stop",
    "openai-responses": b"response.completed",
}


def chat_request(model: str, stream: bool = False) -> bytes:
    """OpenAI Chat, ~5 KB."""
    doc: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": _USER}],
        "max_tokens": 512,
        "temperature": 0.2,
    }
    if stream:
        doc["stream"] = True
    return orjson.dumps(doc)


def claude_request(model: str, *, stream: bool = False) -> bytes:
    """The same conversation as ``chat_request`` as a Claude Messages request, ~5 KB."""
    doc: dict[str, Any] = {
        "model": model,
        "system": _SYSTEM,
        "messages": [{"role": "user", "content": _USER}],
        "max_tokens": 512,
        "temperature": 0.2,
    }
    if stream:
        doc["stream"] = True
    return orjson.dumps(doc)


def tool_request(dialect: str, model: str) -> bytes:
    """A streamed request in ``dialect`` that declares one tool and makes the mock call it."""
    if dialect == "openai-chat":
        doc: dict[str, Any] = {
            "model": model,
            "stream": True,
            "max_tokens": 512,
            "messages": [{"role": "user", "content": _ASK_TOOL}],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": TOOL_NAME, "description": _TOOL_DESCRIPTION, "parameters": _TOOL_SCHEMA},
                }
            ],
        }
    elif dialect == "claude":
        doc = {
            "model": model,
            "stream": True,
            "max_tokens": 512,
            "messages": [{"role": "user", "content": _ASK_TOOL}],
            "tools": [{"name": TOOL_NAME, "description": _TOOL_DESCRIPTION, "input_schema": _TOOL_SCHEMA}],
        }
    elif dialect == "openai-responses":
        doc = {
            "model": model,
            "stream": True,
            "max_output_tokens": 512,
            "input": [{"role": "user", "content": _ASK_TOOL}],
            "tools": [
                {"type": "function", "name": TOOL_NAME, "description": _TOOL_DESCRIPTION, "parameters": _TOOL_SCHEMA}
            ],
        }
    else:
        raise ValueError(f"no tool request for dialect {dialect!r}")
    return orjson.dumps(doc)
