"""Sessions and turns, Playbook-style over an in-memory store: what is read before, what is written after."""

from __future__ import annotations

import pytest

from llm_proxy.canonical import (
    Message,
    Reasoning,
    ReasoningConfig,
    Request,
    Response,
    StopReason,
    Text,
    ToolCall,
)
from llm_proxy.errors import ProxyFailure
from llm_proxy.session.store import MemoryStore
from llm_proxy.session.turn import Sessions
from tests.servers import make_config
from tests.test_snapshot import OLD_RECORD


def _route(front: str, back: str, prefix: str = "/r", **extra: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "frontend_model_name": "m",
        "frontend_base_url": prefix,
        "frontend_dialect": front,
        "backend_base_url": "mock://",
        "backend_dialect": back,
    }
    entry.update(extra)
    return entry


def _user(text: str) -> Message:
    return Message(role="user", content=(Text(text=text),))


def _answer(text: str, *parts: object) -> Response:
    content = (*parts, Text(text=text))
    return Response(id="msg_up", model="m", content=content, stop_reason=StopReason.END_TURN)  # type: ignore[arg-type]


async def test_a_responses_turn_over_another_api_mints_an_id_and_keeps_the_conversation_in_its_scope() -> None:
    a, b = make_config([_route("openai-responses", "claude", "/a"), _route("openai-responses", "claude", "/b")]).routes
    sessions = Sessions(MemoryStore(), 60)
    first = await sessions.open(a, {}, Request(model="m", messages=(_user("one"),)))
    assert first.response_id is not None and first.response_id.startswith("resp_") and len(first.response_id) == 55
    assert first.watching
    first.answered(_answer("reply one"))
    await sessions.close(first)

    follow = Request(model="m", messages=(_user("two"),), previous_response_id=first.response_id)
    second = await sessions.open(a, {}, follow)
    assert [m.content[0] for m in second.request.messages] == [
        Text(text="one"),
        Text(text="reply one"),
        Text(text="two"),
    ]
    assert second.request.previous_response_id is None
    assert second.response_id not in (None, first.response_id)
    with pytest.raises(ProxyFailure) as info:
        await sessions.open(b, {}, follow)
    assert (info.value.error.status, info.value.error.code) == (404, "previous_response_not_found")


async def test_a_conversation_stored_in_the_old_format_is_not_found() -> None:
    # Records written before parts were tagged by kind are refused as unreadable (a 404), never misread.
    route = make_config([_route("openai-responses", "claude")]).routes[0]
    store = MemoryStore()
    sessions = Sessions(store, 60)
    first = await sessions.open(route, {}, Request(model="m", messages=(_user("one"),)))
    first.answered(_answer("reply one"))
    await sessions.close(first)
    assert first.response_id is not None
    await store.set(sessions.conversations.PREFIX + f"{first.scope}:{first.response_id}", OLD_RECORD, 60)
    follow = Request(model="m", messages=(_user("two"),), previous_response_id=first.response_id)
    with pytest.raises(ProxyFailure) as info:
        await sessions.open(route, {}, follow)
    assert (info.value.error.status, info.value.error.code) == (404, "previous_response_not_found")


async def test_a_turn_that_never_completes_stores_nothing() -> None:
    route = make_config([_route("openai-responses", "claude")]).routes[0]
    store = MemoryStore()
    sessions = Sessions(store, 60)
    turn = await sessions.open(route, {}, Request(model="m", messages=(_user("one"),)))
    await sessions.close(turn)  # no answer: the stream was cut before it finished
    assert len(store) == 0


async def test_thinking_dropped_by_a_chat_client_is_restored_for_a_signed_thinking_upstream() -> None:
    route = make_config([_route("openai-chat", "claude")]).routes[0]
    sessions = Sessions(MemoryStore(), 60)
    reasoning = ReasoningConfig(effort="high")
    call = ToolCall(id="toolu_1", name="Bash", arguments='{"cmd":"ls"}')
    thinking = Reasoning(provider="anthropic", text="Let me look.", signature="sig==")
    turn = await sessions.open(route, {}, Request(model="m", messages=(_user("list"),), reasoning=reasoning))
    assert turn.response_id is None and turn.watching
    turn.answered(_answer("", thinking, call))
    await sessions.close(turn)

    echoed = (_user("list"), Message(role="assistant", content=(call,)), _user("thanks"))
    again = await sessions.open(route, {}, Request(model="m", messages=echoed, reasoning=reasoning))
    assert again.request.messages[1].content == (thinking, call)
    plain = await sessions.open(route, {}, Request(model="m", messages=echoed))  # no reasoning asked: left alone
    assert plain.request.messages[1].content == (call,) and not plain.watching


async def test_proxy_mode_progress_taps_the_stream_and_shows_in_the_next_request() -> None:
    route = make_config(
        [
            {"frontend_model_name": "m", "frontend_base_url": "/p", "backend_base_url": "mock://",
             "inject_progress": True, "system_append": "Be brief."}
        ]
    ).routes[0]  # fmt: skip
    sessions = Sessions(MemoryStore(), 60)
    headers = {"x-session-id": "s1"}
    doc: dict[str, object] = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "fix it"}]}
    changed, turn = await sessions.open_raw(route, "claude", headers, doc, None)
    assert changed and doc["system"] == "Be brief." and turn is not None
    turn.tap("claude", turn.request, "text/event-stream")
    stream = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
        b'"role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,'
        b'"usage":{"input_tokens":40,"output_tokens":1}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"tool_use","id":"toolu_1","name":"Edit","input":{}}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"input_json_delta","partial_json":"{\\"file_path\\":\\"src/a.py\\"}"}}\n\n'
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use",'
        b'"stop_sequence":null},"usage":{"output_tokens":7}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    for i in range(0, len(stream), 7):
        turn.tap_bytes(stream[i : i + 7])
    await sessions.close(turn)

    doc2: dict[str, object] = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "fix it"}]}
    changed, _ = await sessions.open_raw(route, "claude", headers, doc2, None)
    system = str(doc2["system"])
    assert changed and system.startswith("Be brief.\n\n## Session progress (added by llm-proxy)\n")
    assert "Requests so far: 1. Tokens used: 40 in, 7 out." in system
    assert "Tool calls: Edit x1" in system and "Files touched: src/a.py" in system
    assert "Last stop reason: tool_use" in system


async def test_the_store_has_one_owner() -> None:
    store = MemoryStore()
    sessions = Sessions(store, 60)
    assert sessions.progress.store is store and sessions.thinking.store is store
    assert sessions.conversations.store is store
    await sessions.shutdown()
