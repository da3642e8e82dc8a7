"""The ``openai-responses`` client: the openai SDK's ``responses.create``, plain and streamed.

The tool round trip sends the whole conversation back (the ``function_call`` item and a ``function_call_output``
item), not ``previous_response_id``: that works through every upstream, stateful or not.
"""

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
        "name": TOOL_NAME,
        "description": TOOL_DESCRIPTION,
        "parameters": TOOL_PARAMETERS,
        "strict": False,
    }
]


def _stop(response: Any, calls: tuple[Call, ...]) -> str:
    if response.status == "incomplete":
        details = response.incomplete_details
        return normal_stop(details.reason if details is not None else None)
    if response.status != "completed":
        return f"status {response.status}"
    return "tool_use" if calls else "end_turn"


class ResponsesDriver:
    def __init__(self) -> None:
        self._clients: Clients[Any] = Clients(
            lambda base_url: openai.OpenAI(base_url=f"{base_url}/v1", api_key="k", max_retries=0),
            lambda client: client.close(),
        )

    def close(self) -> None:
        self._clients.close()

    def ask(self, base_url: str, model: str, prompt: str, *, stream: bool, tool: bool) -> Outcome:
        items = [{"role": "user", "content": prompt}]
        return self._respond(base_url, model, items, stream=stream, tool=tool)

    def answer_tool(
        self, base_url: str, model: str, prompt: str, first: Outcome, result: str, *, stream: bool
    ) -> Outcome:
        items: list[Any] = [{"role": "user", "content": prompt}]
        if first.text:
            items.append({"role": "assistant", "content": first.text})
        items += [
            {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": json.dumps(c.arguments)}
            for c in first.calls
        ]
        items.append({"type": "function_call_output", "call_id": first.calls[0].id, "output": result})
        return self._respond(base_url, model, items, stream=stream, tool=True)

    def _respond(self, base_url: str, model: str, items: list[Any], *, stream: bool, tool: bool) -> Outcome:
        client = self._clients.get(base_url)
        extra: dict[str, Any] = {"tools": TOOLS} if tool else {}
        if not stream:
            response = client.responses.create(model=model, input=items, max_output_tokens=1024, **extra)
            calls = tuple(
                Call(id=item.call_id, name=item.name, arguments=parse_arguments(item.arguments))
                for item in response.output
                if item.type == "function_call"
            )
            usage = response.usage
            return Outcome(
                text=response.output_text,
                stop=_stop(response, calls),
                input_tokens=usage.input_tokens if usage else 0,
                output_tokens=usage.output_tokens if usage else 0,
                calls=calls,
            )
        events = client.responses.create(model=model, input=items, max_output_tokens=1024, stream=True, **extra)
        text: list[str] = []
        started: dict[int, tuple[str, str]] = {}  # output index -> (call id, name)
        arguments: dict[int, str] = {}
        final: Any = None
        with events:
            for event in events:
                if event.type == "response.output_text.delta":
                    text.append(event.delta)
                elif event.type == "response.output_item.added" and event.item.type == "function_call":
                    started[event.output_index] = (event.item.call_id, event.item.name)
                elif event.type == "response.function_call_arguments.delta":
                    arguments[event.output_index] = arguments.get(event.output_index, "") + event.delta
                elif event.type in ("response.completed", "response.incomplete", "response.failed"):
                    final = event.response
        if final is None:
            raise AssertionError("the stream ended without response.completed / response.incomplete")
        calls = tuple(
            Call(id=call_id, name=name, arguments=parse_arguments(arguments.get(index, "")))
            for index, (call_id, name) in started.items()
        )
        usage = final.usage
        return Outcome(
            text="".join(text),
            stop=_stop(final, calls),
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            calls=calls,
        )


DRIVER = ResponsesDriver()
