"""The ``claude`` client: the anthropic SDK's ``messages.create`` and ``messages.stream``.

The Messages documents and stream events are read as plain JSON here, so the Bedrock driver (the same Messages
format in AWS's envelope) reads its bodies and stream chunks with the same two functions.
"""

from __future__ import annotations

from typing import Any

import anthropic

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

MAX_TOKENS = 1024
TOOLS: list[Any] = [{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": TOOL_PARAMETERS}]


def first_turn(prompt: str) -> list[Any]:
    return [{"role": "user", "content": prompt}]


def tool_turns(prompt: str, first: Outcome, result: str) -> list[Any]:
    """The user's prompt, the assistant's turn ``first`` and ``result`` for its first call, as Messages turns."""
    assistant: list[Any] = [{"type": "text", "text": first.text}] if first.text else []
    assistant += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in first.calls]
    results = [{"type": "tool_result", "tool_use_id": first.calls[0].id, "content": result}]
    return [*first_turn(prompt), {"role": "assistant", "content": assistant}, {"role": "user", "content": results}]


def _input_tokens(usage: dict[str, Any]) -> int:
    """Input tokens with the cached ones, which Messages counts apart."""
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    return sum(usage.get(key) or 0 for key in keys)


def message_outcome(message: dict[str, Any]) -> Outcome:
    """A whole Messages answer (``type: message``) as the client saw it."""
    blocks = message["content"]
    usage = message["usage"]
    return Outcome(
        text="".join(b["text"] for b in blocks if b["type"] == "text"),
        stop=normal_stop(message["stop_reason"]),
        input_tokens=_input_tokens(usage),
        output_tokens=usage["output_tokens"],
        calls=tuple(
            Call(id=b["id"], name=b["name"], arguments=dict(b["input"])) for b in blocks if b["type"] == "tool_use"
        ),
    )


class MessagesStream:
    """Messages stream events in (as JSON), the client's ``Outcome`` out: deltas joined, usage and stop read."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, list[str]] = {}  # block index -> [id, name, joined partial JSON]
        self.stop: str | None = None
        self.input_tokens = 0
        self.output_tokens = 0

    def feed(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "message_start":
            usage = event["message"]["usage"]
            self.input_tokens = _input_tokens(usage)
            self.output_tokens = usage.get("output_tokens") or 0
        elif kind == "content_block_start" and event["content_block"]["type"] == "tool_use":
            block = event["content_block"]
            self.calls[event["index"]] = [block["id"], block["name"], ""]
        elif kind == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                self.text.append(delta["text"])
            elif delta["type"] == "input_json_delta":
                self.calls[event["index"]][2] += delta["partial_json"]
        elif kind == "message_delta":
            self.stop = event["delta"]["stop_reason"]
            usage = event["usage"]
            self.output_tokens = usage["output_tokens"]
            if usage.get("input_tokens"):  # newer APIs repeat the input count at the end
                self.input_tokens = _input_tokens(usage)

    def outcome(self) -> Outcome:
        return Outcome(
            text="".join(self.text),
            stop=normal_stop(self.stop),
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            calls=tuple(Call(id=i, name=n, arguments=parse_arguments(a)) for i, n, a in self.calls.values()),
        )


class ClaudeDriver:
    def __init__(self) -> None:
        self._clients: Clients[Any] = Clients(
            lambda base_url: anthropic.Anthropic(base_url=base_url, api_key="k", max_retries=0),
            lambda client: client.close(),
        )

    def close(self) -> None:
        self._clients.close()

    def ask(self, base_url: str, model: str, prompt: str, *, stream: bool, tool: bool) -> Outcome:
        return self._messages(base_url, model, first_turn(prompt), stream=stream, tool=tool)

    def answer_tool(
        self, base_url: str, model: str, prompt: str, first: Outcome, result: str, *, stream: bool
    ) -> Outcome:
        return self._messages(base_url, model, tool_turns(prompt, first, result), stream=stream, tool=True)

    def _messages(self, base_url: str, model: str, turns: list[Any], *, stream: bool, tool: bool) -> Outcome:
        client = self._clients.get(base_url)
        extra: dict[str, Any] = {"tools": TOOLS} if tool else {}
        if not stream:
            message = client.messages.create(model=model, max_tokens=MAX_TOKENS, messages=turns, **extra)
            return message_outcome(message.model_dump())
        reader = MessagesStream()
        with client.messages.stream(model=model, max_tokens=MAX_TOKENS, messages=turns, **extra) as events:
            for event in events:
                reader.feed(event.model_dump())
        return reader.outcome()


DRIVER = ClaudeDriver()
