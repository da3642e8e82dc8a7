"""The Responses dialect end to end: the official openai SDK's Responses API through the proxy to Claude and
Chat upstreams, the Anthropic SDK to a Responses upstream, reasoning carried across vendors, and
``previous_response_id`` served by the proxy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.servers import (
    Recorded,
    RecordingUpstream,
    Reply,
    ServerThread,
    make_config,
    running_proxy,
    sdk_anthropic,
    sdk_openai,
)

FUNCTION_TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "exec_command",
        "description": "run",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
        "strict": False,
    }
]


def route(front: str, back: str, base: str = "mock://", prefix: str = "/r") -> dict[str, object]:
    return {
        "frontend_model_name": "client-model",
        "frontend_base_url": prefix,
        "frontend_dialect": front,
        "backend_model_name": "upstream-model",
        "backend_base_url": base,
        "backend_dialect": back,
    }


@pytest.fixture(params=["claude", "openai-chat"])
def responses_proxy(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    with running_proxy(make_config([route("openai-responses", request.param)])) as proxy:
        yield proxy


def client(proxy: ServerThread, prefix: str = "/r") -> Any:  # SDK TypedDict params are not what is tested
    return sdk_openai(base_url=f"{proxy.url}{prefix}/v1", api_key="k", max_retries=0)


def test_plain_create(responses_proxy: ServerThread) -> None:
    response = client(responses_proxy).responses.create(model="client-model", input="hello", instructions="be nice")
    assert response.status == "completed"
    assert response.model == "client-model"
    assert response.id.startswith("resp_")
    assert response.output_text == "mock reply: hello"
    assert response.usage is not None
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_stream_event_order_and_tool_call(responses_proxy: ServerThread) -> None:
    text = 'do it [[mock:tool exec_command {"cmd":"ls"}]]'
    events = list(
        client(responses_proxy).responses.create(model="client-model", input=text, tools=FUNCTION_TOOLS, stream=True)
    )
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [item.type for item in done] == ["message", "function_call"]
    call = done[1]
    assert call.name == "exec_command" and json.loads(call.arguments) == {"cmd": "ls"}
    completed = events[-1].response
    assert completed.usage is not None and completed.usage.total_tokens > 0
    assert [o.type for o in completed.output] == ["message", "function_call"]


def test_stream_helper_final_response(responses_proxy: ServerThread) -> None:
    with client(responses_proxy).responses.stream(model="client-model", input="streamed") as stream:
        final = stream.get_final_response()
    assert final.output_text == "mock reply: streamed"


def test_max_tokens_stop_is_incomplete(responses_proxy: ServerThread) -> None:
    response = client(responses_proxy).responses.create(model="client-model", input="[[mock:length]]")
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"


def test_rate_limit_error_status(responses_proxy: ServerThread) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client(responses_proxy).responses.create(model="client-model", input="[[mock:error 429]]")
    assert info.value.status_code == 429


@pytest.mark.parametrize("directive", ["[[mock:cut]]", "[[mock:fail]]"])
def test_broken_stream_ends_with_response_failed(responses_proxy: ServerThread, directive: str) -> None:
    events = list(client(responses_proxy).responses.create(model="client-model", input=directive, stream=True))
    assert events[-1].type == "response.failed"
    error = events[-1].response.error
    assert error is not None
    # A cut stream is a server error. The mock fails mid-stream with an "overloaded" error, which a Claude
    # upstream can say in its stream (Codex retries it) and a Chat upstream cannot.
    if directive == "[[mock:cut]]":
        assert error.code == "server_error"
    else:
        assert error.code in ("server_error", "server_is_overloaded")


def test_previous_response_id_rebuilds_the_conversation(responses_proxy: ServerThread) -> None:
    oai = client(responses_proxy)
    first = oai.responses.create(model="client-model", input="my name is Ada")
    second = oai.responses.create(model="client-model", input="what is my name?", previous_response_id=first.id)
    assert second.output_text == "mock reply: what is my name?"
    with pytest.raises(openai.NotFoundError) as info:
        oai.responses.create(model="client-model", input="x", previous_response_id="resp_unknown")
    assert info.value.body == {
        "message": "Previous response with id 'resp_unknown' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }
    unstored = oai.responses.create(model="client-model", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(model="client-model", input="x", previous_response_id=unstored.id)


# ------------------------------------------------------------------------------------------------
# What upstreams receive (recording upstream)
# ------------------------------------------------------------------------------------------------


CLAUDE_THINKING_REPLY = {
    "id": "msg_up",
    "type": "message",
    "role": "assistant",
    "model": "upstream-model",
    "content": [
        {"type": "thinking", "thinking": "plan the call", "signature": "claude-sig-123"},
        {"type": "tool_use", "id": "toolu_9", "name": "exec_command", "input": {"cmd": "pwd"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 7, "output_tokens": 3},
}


def test_previous_response_id_sends_history_upstream(recording: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = recording

    async def handler(req: Recorded, reply: Reply) -> None:
        body = {**CLAUDE_THINKING_REPLY, "content": [{"type": "text", "text": "noted"}], "stop_reason": "end_turn"}
        await reply.json(200, json.dumps(body).encode())

    fake.handler = handler
    with running_proxy(make_config([route("openai-responses", "claude", server.url)])) as proxy:
        oai = client(proxy)
        first = oai.responses.create(model="client-model", input="my name is Ada")
        oai.responses.create(model="client-model", input="and yours?", previous_response_id=first.id)
    messages = json.loads(fake.requests[1].body)["messages"]
    assert messages == [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": [{"type": "text", "text": "noted"}]},
        {"role": "user", "content": "and yours?"},
    ]


def test_claude_thinking_survives_a_codex_style_round_trip(recording: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = recording

    async def handler(req: Recorded, reply: Reply) -> None:
        await reply.json(200, json.dumps(CLAUDE_THINKING_REPLY).encode())

    fake.handler = handler
    with running_proxy(make_config([route("openai-responses", "claude", server.url)])) as proxy:
        oai = client(proxy)
        first = oai.responses.create(
            model="client-model",
            input="where am I",
            tools=FUNCTION_TOOLS,
            reasoning={"effort": "low", "summary": "auto"},
            include=["reasoning.encrypted_content"],
            store=False,
        )
        items = [item.model_dump(exclude_none=True) for item in first.output]
        assert [i["type"] for i in items] == ["reasoning", "function_call"]
        assert items[0]["encrypted_content"].startswith("lpx1.")
        assert items[0]["summary"] == [{"type": "summary_text", "text": "plan the call"}]
        history: list[Any] = [{"role": "user", "content": "where am I"}, *items]
        history.append({"type": "function_call_output", "call_id": items[1]["call_id"], "output": "/home"})
        oai.responses.create(
            model="client-model", input=history, tools=FUNCTION_TOOLS, reasoning={"effort": "low"}, store=False
        )
        tampered = [dict(items[0], encrypted_content=items[0]["encrypted_content"][:-3] + "xyz"), *history[2:]]
        with pytest.raises(openai.BadRequestError):
            oai.responses.create(model="client-model", input=[history[0], *tampered], store=False)
    assistant = json.loads(fake.requests[1].body)["messages"][1]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "plan the call", "signature": "claude-sig-123"},
            {"type": "tool_use", "id": "toolu_9", "name": "exec_command", "input": {"cmd": "pwd"}},
        ],
    }
    assert len(fake.requests) == 2


RESPONSES_REASONING_REPLY = {
    "id": "resp_up",
    "object": "response",
    "created_at": 1,
    "status": "completed",
    "model": "upstream-model",
    "output": [
        {
            "type": "reasoning",
            "id": "rs_up",
            "summary": [{"type": "summary_text", "text": "thinking it over"}],
            "encrypted_content": "openai-encrypted-blob",
        },
        {
            "type": "function_call",
            "id": "fc_up",
            "call_id": "call_up",
            "name": "Bash",
            "arguments": '{"command":"echo hi"}',
            "status": "completed",
        },
    ],
    "usage": {
        "input_tokens": 5,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 9,
    },
}


def test_anthropic_client_replays_openai_reasoning(recording: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = recording

    async def handler(req: Recorded, reply: Reply) -> None:
        await reply.json(200, json.dumps(RESPONSES_REASONING_REPLY).encode())

    fake.handler = handler
    tools: list[Any] = [
        {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
    ]
    with running_proxy(make_config([route("claude", "openai-responses", server.url + "/v1", "/c")])) as proxy:
        ant: Any = sdk_anthropic(base_url=f"{proxy.url}/c", api_key="k", max_retries=0)
        first = ant.messages.create(
            model="client-model",
            max_tokens=2000,
            tools=tools,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "hi"}],
        )
        blocks = [b.model_dump() for b in first.content]
        assert [b["type"] for b in blocks] == ["thinking", "tool_use"]
        assert blocks[0]["thinking"] == "thinking it over" and blocks[0]["signature"].startswith("lpx1.")
        ant.messages.create(
            model="client-model",
            max_tokens=2000,
            tools=tools,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": blocks},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": blocks[1]["id"], "content": "hi"}]},
            ],
        )
    assert fake.requests[0].path == "/v1/responses"
    replayed = json.loads(fake.requests[1].body)["input"]
    assert replayed[1] == {
        "type": "reasoning",
        "id": "rs_up",
        "summary": [{"type": "summary_text", "text": "thinking it over"}],
        "encrypted_content": "openai-encrypted-blob",
    }
    assert replayed[2]["type"] == "function_call" and replayed[2]["call_id"] == "call_up"
    assert replayed[3] == {"type": "function_call_output", "call_id": "call_up", "output": "hi"}


def test_anthropic_sdk_streams_from_a_responses_upstream() -> None:
    with running_proxy(make_config([route("claude", "openai-responses", prefix="/c")])) as proxy:
        ant: Any = sdk_anthropic(base_url=f"{proxy.url}/c", api_key="k", max_retries=0)
        with ant.messages.stream(
            model="client-model", max_tokens=100, messages=[{"role": "user", "content": "think [[mock:think]]"}]
        ) as stream:
            events = [e.type for e in stream]
            final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[1].text == "mock reply: think [[mock:think]]"
    assert events[0] == "message_start" and events[-1] == "message_stop"
    with running_proxy(make_config([route("claude", "openai-responses", prefix="/c")])) as proxy:
        ant = sdk_anthropic(base_url=f"{proxy.url}/c", api_key="k", max_retries=0)
        with pytest.raises(anthropic.APIStatusError):
            for _ in ant.messages.create(
                model="client-model", max_tokens=10, messages=[{"role": "user", "content": "[[mock:cut]]"}], stream=True
            ):
                pass
