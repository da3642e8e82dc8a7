"""The ``openai-chat`` client: the openai SDK's ``chat.completions.create``, plain and streamed."""

from __future__ import annotations

import json
from typing import Any

import openai

from tests.pairs import (
    TOOL_DESCRIPTION,
    TOOL_NAME,
    TOOL_PARAMETERS,
    Call,
    Clients,
    Outcome,
    normal_stop,
    parse_arguments,
)

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": TOOL_PARAMETERS},
    }
]


class ChatDriver:
    def __init__(self) -> None:
        self._clients: Clients[Any] = Clients(
            lambda base_url: openai.OpenAI(base_url=f"{base_url}/v1", api_key="k", max_retries=0),
            lambda client: client.close(),
        )

    def close(self) -> None:
        self._clients.close()

    def ask(self, base_url: str, model: str, prompt: str, *, stream: bool, tool: bool) -> Outcome:
        messages = [{"role": "user", "content": prompt}]
        return self._complete(base_url, model, messages, stream=stream, tool=tool)

    def answer_tool(
        self, base_url: str, model: str, prompt: str, first: Outcome, result: str, *, stream: bool
    ) -> Outcome:
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in first.calls
        ]
        messages = [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": first.text or None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": first.calls[0].id, "content": result},
        ]
        return self._complete(base_url, model, messages, stream=stream, tool=True)

    def _complete(self, base_url: str, model: str, messages: list[Any], *, stream: bool, tool: bool) -> Outcome:
        client = self._clients.get(base_url)
        extra: dict[str, Any] = {"tools": TOOLS} if tool else {}
        if not stream:
            completion = client.chat.completions.create(model=model, messages=messages, max_tokens=1024, **extra)
            choice = completion.choices[0]
            usage = completion.usage
            return Outcome(
                text=choice.message.content or "",
                stop=normal_stop(choice.finish_reason),
                input_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.completion_tokens if usage else 0,
                calls=tuple(
                    Call(id=c.id, name=c.function.name, arguments=parse_arguments(c.function.arguments))
                    for c in choice.message.tool_calls or ()
                ),
            )
        chunks = client.chat.completions.create(
            model=model,
            messages=messages,
            max_tokens=1024,
            stream=True,
            stream_options={"include_usage": True},
            **extra,
        )
        text: list[str] = []
        calls: dict[int, list[str]] = {}  # index -> [id, name, joined arguments]
        stop: str | None = None
        input_tokens = output_tokens = 0
        with chunks:
            for chunk in chunks:
                if chunk.usage is not None:
                    input_tokens, output_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
                for choice in chunk.choices:
                    stop = choice.finish_reason or stop
                    text.append(choice.delta.content or "")
                    for delta in choice.delta.tool_calls or ():
                        call = calls.setdefault(delta.index, ["", "", ""])
                        call[0] = delta.id or call[0]
                        if delta.function is not None:
                            call[1] += delta.function.name or ""
                            call[2] += delta.function.arguments or ""
        return Outcome(
            text="".join(text),
            stop=normal_stop(stop),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            calls=tuple(Call(id=i, name=n, arguments=parse_arguments(a)) for i, n, a in calls.values()),
        )


DRIVER = ChatDriver()
