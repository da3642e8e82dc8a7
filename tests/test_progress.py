"""Session progress: identity, what requests and responses add, the rendered text, scripted sessions."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable
from typing import Any, Literal

import orjson
import pytest

from llm_proxy.canonical import (
    BlockStart,
    BlockStop,
    ErrorKind,
    Finish,
    Message,
    MessageStart,
    Part,
    ProxyError,
    Request,
    Response,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from llm_proxy.prompt import SystemEdit, edit_request
from llm_proxy.session.progress import (
    MAX_ARGS_BYTES,
    MAX_CHARS,
    ProgressDelta,
    ProgressTracker,
    ResponseObserver,
    failed_tool_results,
    render_record,
    request_text,
    session_key,
)
from llm_proxy.session.store import MemoryStore, RedisStore, StateStore
from tests.fixtures import load_request

HEADER = "## Session progress (added by llm-proxy)"
T0 = 1_780_000_000.0  # 2026-05-28T20:26:40Z

# ---------------------------------------------------------------------------------------------
# Minimal local decoding of the captured fixtures (the dialect codecs are tested elsewhere)
# ---------------------------------------------------------------------------------------------


def claude_parts(content: Any) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (Text(text=content),)
    parts: list[Part] = []
    for block in content:
        if block["type"] == "text":
            parts.append(Text(text=block["text"], cache_control=block.get("cache_control")))
        elif block["type"] == "tool_use":
            parts.append(ToolCall(id=block["id"], name=block["name"], arguments=orjson.dumps(block["input"]).decode()))
        elif block["type"] == "tool_result":
            inner = block.get("content", "")
            texts = (Text(text=inner),) if isinstance(inner, str) else claude_parts(inner)
            result_content = tuple(p for p in texts if isinstance(p, Text))
            parts.append(
                ToolResult(call_id=block["tool_use_id"], content=result_content, is_error=block.get("is_error"))
            )
    return tuple(parts)


def claude_request(body: dict[str, Any]) -> Request:
    return Request(
        model=body["model"],
        system=tuple(Text(text=b["text"], cache_control=b.get("cache_control")) for b in body["system"]),
        native={"system": "list"},
        messages=tuple(Message(role=m["role"], content=claude_parts(m["content"])) for m in body["messages"]),
        user=body.get("metadata", {}).get("user_id"),
        origin="claude",
    )


def responses_message(item: dict[str, Any]) -> Message:
    if item["type"] == "function_call":
        call = ToolCall(id=item["call_id"], name=item["name"], arguments=item["arguments"], item_id=item.get("id"))
        return Message(role="assistant", content=(call,))
    if item["type"] == "function_call_output":
        result = ToolResult(call_id=item["call_id"], content=(Text(text=item["output"]),))
        return Message(role="tool", content=(result,))
    return Message(role=item["role"], content=tuple(Text(text=p["text"]) for p in item["content"]))


def responses_request(body: dict[str, Any]) -> Request:
    return Request(
        model=body["model"],
        messages=tuple(responses_message(item) for item in body["input"]),
        extra={"prompt_cache_key": body["prompt_cache_key"]},
        origin="openai-responses",
    )


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def tool_stream(
    index: int, name: str, arguments: str, *, pieces: int = 3, kind: Literal["function", "custom"] = "function"
) -> list[StreamEvent]:
    """A tool-call block whose arguments arrive in ``pieces`` chunks."""
    size = max(1, len(arguments) // pieces)
    chunks = [arguments[i : i + size] for i in range(0, len(arguments), size)]
    start = BlockStart(index=index, kind="tool_call", id=f"call_{index}", name=name, tool_kind=kind)
    return [start, *(ToolArgsDelta(index=index, partial_json=c) for c in chunks), BlockStop(index=index)]


def observe(events: Iterable[StreamEvent]) -> ProgressDelta:
    observer = ResponseObserver()
    for event in events:
        observer.feed(event)
    return observer.delta()


def args(value: Any) -> str:
    return orjson.dumps(value).decode()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    opened = MemoryStore() if request.param == "memory" else RedisStore(request.getfixturevalue("redis_url"))
    try:
        yield opened
    finally:
        await opened.close()


# ---------------------------------------------------------------------------------------------
# Session identity
# ---------------------------------------------------------------------------------------------

CLAUDE = load_request("claude_code_tool_result_turn")
CODEX = load_request("codex_function_call_output_turn")
CLAUDE_SESSION = "64cdaee3-1a8b-40f2-8bc3-782376bc4953"
CODEX_SESSION = "01a20fd2-1f98-75b0-9409-6d86fcfd8fd7"


def test_session_key_from_real_clients() -> None:
    claude = claude_request(CLAUDE["body"])
    assert session_key("r", lower(CLAUDE["headers"]), claude) == f"id:{CLAUDE_SESSION}"
    assert session_key("r", {}, claude) == f"id:{CLAUDE_SESSION}"  # from metadata.user_id
    codex = responses_request(CODEX["body"])
    assert session_key("r", lower(CODEX["headers"]), codex) == f"id:{CODEX_SESSION}"
    assert session_key("r", {}, codex) == f"id:{CODEX_SESSION}"  # from prompt_cache_key


def test_session_key_order() -> None:
    request = Request(
        model="m",
        messages=(),
        user='{"device_id":"d","session_id":"from-user-id"}',
        extra={"prompt_cache_key": "from-cache-key"},
    )
    headers = {"x-session-id": "explicit", "x-claude-code-session-id": "claude-header", "session-id": "codex-header"}
    assert session_key("r", headers, request) == "id:explicit"
    del headers["x-session-id"]
    assert session_key("r", headers, request) == "id:claude-header"
    del headers["x-claude-code-session-id"]
    assert session_key("r", headers, request) == "id:from-user-id"
    old_format = Request(model="m", messages=(), user="user_abc_account__session_0f1e2d3c-aaaa-bbbb-cccc-111122223333")
    assert session_key("r", headers, old_format) == "id:0f1e2d3c-aaaa-bbbb-cccc-111122223333"
    assert session_key("r", headers, Request(model="m", messages=(), user="plain-user")) == "id:codex-header"
    assert session_key("r", {}, Request(model="m", messages=(), extra={"prompt_cache_key": "k"})) == "id:k"


def test_session_key_unsafe_ids_are_hashed() -> None:
    key = session_key("r", {"x-session-id": "a b/c" * 50}, Request(model="m", messages=()))
    assert key.startswith("idh:") and len(key) == 4 + 32


def test_session_key_fallback_hash_is_stable_per_conversation_and_route() -> None:
    first = Request(model="m", messages=(Message(role="user", content=(Text(text="fix it"),)),))
    later = Request(
        model="m",
        messages=(
            *first.messages,
            Message(role="assistant", content=(Text(text="done"),)),
            Message(role="user", content=(Text(text="thanks"),)),
        ),
    )
    key = session_key("route-1", {}, first)
    assert key == "hash:" + hashlib.sha256(b"route-1\nfix it").hexdigest()[:32]
    assert session_key("route-1", {}, later) == key
    assert session_key("route-2", {}, first) != key


# ---------------------------------------------------------------------------------------------
# What requests contribute
# ---------------------------------------------------------------------------------------------


def test_request_text_skips_reminders_and_is_truncated() -> None:
    message = Message(
        role="user", content=(Text(text="<system-reminder>\nctx\n</system-reminder>"), Text(text=" fix  the\nbug "))
    )
    assert request_text(Request(model="m", messages=(message,))) == "fix the bug"
    long = Request(model="m", messages=(Message(role="user", content=(Text(text="x" * 500),)),))
    assert request_text(long) == "x" * 199 + "…"
    assert request_text(Request(model="m", messages=())) == ""


def test_failed_tool_results_counts_only_new_results() -> None:
    def result(call_id: str, is_error: bool | None, text: str = "out") -> ToolResult:
        return ToolResult(call_id=call_id, content=(Text(text=text),), is_error=is_error)

    messages = (
        Message(role="user", content=(result("old", True),)),
        Message(role="assistant", content=(ToolCall(id="a", name="Bash", arguments="{}"),)),
        Message(role="user", content=(result("a", True), result("b", False), result("c", None))),
        Message(role="tool", content=(result("d", None, "Output:\nProcess exited with code 2\n"),)),
        Message(role="tool", content=(result("e", None, "Process exited with code 0\n"),)),
    )
    assert failed_tool_results(Request(model="m", messages=messages)) == 2


# ---------------------------------------------------------------------------------------------
# What responses contribute
# ---------------------------------------------------------------------------------------------

SCRIPTED_TOOLS = [
    *tool_stream(1, "Edit", args({"file_path": "src/app.py", "old_string": "a", "new_string": "b"})),
    *tool_stream(2, "Write", args({"file_path": "README.md", "content": "# hi"})),
    *tool_stream(3, "MultiEdit", args({"file_path": "src/app.py", "edits": []})),
    *tool_stream(4, "NotebookEdit", args({"notebook_path": "nb.ipynb", "new_source": "x"})),
    *tool_stream(5, "Read", args({"file_path": "not/written.py"})),
    *tool_stream(
        6,
        "TodoWrite",
        args(
            {
                "todos": [
                    {"content": "Write tests", "status": "completed", "activeForm": "Writing tests"},
                    {"content": "Fix  the\nbug", "status": "in_progress", "activeForm": "Fixing"},
                    {"content": "Ship", "status": "pending", "activeForm": "Shipping"},
                ]
            }
        ),
    ),
]
SCRIPTED_EVENTS: list[StreamEvent] = [
    MessageStart(id="m", model="x", usage=Usage(input_tokens=7)),
    BlockStart(index=0, kind="text"),
    TextDelta(index=0, text="Working on it"),
    BlockStop(index=0),
    *SCRIPTED_TOOLS,
    Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=200, output_tokens=30, cache_read_tokens=5)),
]
SCRIPTED_DELTA = ProgressDelta(
    input_tokens=205,
    output_tokens=30,
    tool_calls=(("Edit", 1), ("MultiEdit", 1), ("NotebookEdit", 1), ("Read", 1), ("TodoWrite", 1), ("Write", 1)),
    files=("README.md", "nb.ipynb", "src/app.py"),
    todos=(("completed", "Write tests"), ("in_progress", "Fix the bug"), ("pending", "Ship")),
    stop_reason="tool_use",
)


def test_observer_on_a_stream() -> None:
    assert observe(SCRIPTED_EVENTS) == SCRIPTED_DELTA


def test_observer_same_delta_whatever_the_argument_split() -> None:
    arguments = args({"file_path": "src/é.py", "old_string": "x", "new_string": "y"})
    for split in range(len(arguments) + 1):
        events: list[StreamEvent] = [
            BlockStart(index=0, kind="tool_call", id="t", name="Edit"),
            ToolArgsDelta(index=0, partial_json=arguments[:split]),
            ToolArgsDelta(index=0, partial_json=arguments[split:]),
            BlockStop(index=0),
            Finish(stop_reason=StopReason.TOOL_USE),
        ]
        assert observe(events).files == ("src/é.py",), split
    one_char = [ToolArgsDelta(index=0, partial_json=c) for c in arguments]
    start = BlockStart(index=0, kind="tool_call", id="t", name="Edit")
    assert observe([start, *one_char, BlockStop(index=0)]).files == ("src/é.py",)


def test_observer_on_a_whole_response_matches_the_stream() -> None:
    names = {e.index: e.name or "" for e in SCRIPTED_TOOLS if isinstance(e, BlockStart)}
    arguments: dict[int, str] = {}
    for event in SCRIPTED_TOOLS:
        if isinstance(event, ToolArgsDelta):
            arguments[event.index] = arguments.get(event.index, "") + event.partial_json
    calls = tuple(ToolCall(id=f"c{i}", name=name, arguments=arguments[i]) for i, name in names.items())
    response = Response(
        id="r",
        model="x",
        content=(Text(text="Working on it"), *calls),
        stop_reason=StopReason.TOOL_USE,
        usage=Usage(input_tokens=200, output_tokens=30, cache_read_tokens=5),
    )
    observer = ResponseObserver()
    observer.feed_response(response)
    assert observer.delta() == SCRIPTED_DELTA


def test_observer_codex_apply_patch_and_update_plan() -> None:
    patch = (
        "*** Begin Patch\n*** Update File: src/a.py\n@@\n-x\n+y\n*** Add File: docs/new.md\n+hello\n"
        "*** Delete File: old.txt\n*** Update File: src/b.py\n*** Move to: src/c.py\n@@\n-1\n+2\n*** End Patch"
    )
    events = [
        *tool_stream(0, "apply_patch", patch, pieces=7, kind="custom"),
        *tool_stream(1, "apply_patch", args({"input": "*** Begin Patch\n*** Add File: f.txt\n+1\n*** End Patch"})),
        *tool_stream(
            2, "update_plan", args({"plan": [{"step": "Read code", "status": "completed"}, {"step": "Edit"}]})
        ),
        Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=1, output_tokens=2)),
    ]
    assert observe(events) == ProgressDelta(
        input_tokens=1,
        output_tokens=2,
        tool_calls=(("apply_patch", 2), ("update_plan", 1)),
        files=("docs/new.md", "f.txt", "old.txt", "src/a.py", "src/b.py", "src/c.py"),
        todos=(("completed", "Read code"), ("pending", "Edit")),
        stop_reason="tool_use",
    )


def test_observer_bad_or_huge_arguments_are_counted_not_parsed() -> None:
    huge = args({"file_path": "big.py", "content": "x" * MAX_ARGS_BYTES})
    events = [
        *tool_stream(0, "Write", huge, pieces=40),
        *tool_stream(1, "Edit", '{"file_path": "broken.py"'),  # invalid JSON
        *tool_stream(2, "TodoWrite", args({"todos": "not a list"})),
        StreamError(error=ProxyError(status=502, kind=ErrorKind.API_ERROR, message="cut")),
    ]
    assert observe(events) == ProgressDelta(tool_calls=(("Edit", 1), ("TodoWrite", 1), ("Write", 1)))


def test_observer_ignores_thinking_and_text() -> None:
    events: list[StreamEvent] = [
        BlockStart(index=0, kind="thinking"),
        ThinkingDelta(index=0, text="hmm"),
        BlockStop(index=0),
        Finish(stop_reason=StopReason.END_TURN, usage=Usage(output_tokens=3)),
    ]
    assert observe(events) == ProgressDelta(output_tokens=3, stop_reason="end_turn")


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def test_render_is_bounded_and_notes_what_it_left_out() -> None:
    record = {
        "started": "2026-05-28T20:26:40Z",
        "requests": "999999",
        "in": "123456789",
        "out": "98765",
        "first": "f" * 400,
        "failed": "3",
        "stop": "tool_use",
        "todos": args([["in_progress", f"task {i} " + "t" * 150] for i in range(20)]),
    }
    record |= {f"tool:tool_{i:02d}_" + "n" * 70: str(i) for i in range(30)}
    record |= {"file:" + "p" * 150 + f"/{i:03d}.py": "1" for i in range(100)}
    text = render_record(record)
    assert len(text) <= MAX_CHARS
    lines = text.split("\n")
    assert lines[0] == HEADER
    assert (
        lines[1] == "Started: 2026-05-28T20:26:40Z. Requests so far: 999999. Tokens used: 123,456,789 in, 98,765 out."
    )
    assert lines[2] == "First request: " + "f" * 199 + "…"
    tool = "tool_{:02d}_" + "n" * 51 + "…"
    assert lines[3] == "Tool calls: " + ", ".join(f"{tool.format(i)} x{i}" for i in (29, 28, 27, 26)) + " (+26 more)"
    assert lines[4] == "Files touched: " + ", ".join("…" + "p" * 92 + f"/{i:03d}.py" for i in range(3)) + " (+97 more)"
    assert lines[5:8] == ["Failed tool results: 3", "Last stop reason: tool_use", "Todo list (0/20 done):"]
    todo = "- [>] task {} " + "t" * 92 + "…"
    assert lines[8:] == [todo.format(0), todo.format(1), "- (+18 more)"]
    assert text == render_record(dict(reversed(list(record.items()))))  # field order does not matter


def test_render_tolerates_garbage() -> None:
    assert render_record({"requests": "x", "todos": "{not json", "tool:": "1", "tool:Bash": "y"}) == (
        f"{HEADER}\nRequests so far: 0. Tokens used: 0 in, 0 out.\nTool calls: Bash x0"
    )


# ---------------------------------------------------------------------------------------------
# Scripted sessions with the real fixtures, against both stores
# ---------------------------------------------------------------------------------------------


async def test_claude_code_session(store: StateStore) -> None:
    tracker = ProgressTracker(store, ttl_s=3600, clock=lambda: T0)
    headers = lower(CLAUDE["headers"])
    full = claude_request(CLAUDE["body"])
    first_turn = claude_request({**CLAUDE["body"], "messages": CLAUDE["body"]["messages"][:2]})
    key = session_key("claude-route", headers, first_turn)
    assert key == session_key("claude-route", headers, full) == f"id:{CLAUDE_SESSION}"

    # Turn 1: a new session, nothing to inject; the model calls Bash (the fixture's tool_use).
    assert await tracker.render(key) is None
    await tracker.record_request(key, first_turn)
    bash = full.messages[2].content[0]
    assert isinstance(bash, ToolCall)
    await tracker.record_response(
        key,
        observe(
            [
                MessageStart(id="m1", model="x"),
                *tool_stream(0, bash.name, bash.arguments),
                Finish(
                    stop_reason=StopReason.TOOL_USE,
                    usage=Usage(input_tokens=100, output_tokens=20, cache_read_tokens=1000, cache_write_tokens=50),
                ),
            ]
        ),
    )
    first = (
        "[text of 306 chars, replaced by filler] lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod"
        " tempor incididunt ut labore et dolore magna aliqua lorem ipsum dolor sit amet consectetur…"
    )
    after_turn_1 = (
        f"{HEADER}\n"
        "Started: 2026-05-28T20:26:40Z. Requests so far: 1. Tokens used: 1,150 in, 20 out.\n"
        f"First request: {first}\n"
        "Tool calls: Bash x1\n"
        "Last stop reason: tool_use"
    )
    assert await tracker.render(key) == after_turn_1
    assert await tracker.render(key) == after_turn_1  # stable while nothing changes

    # Turn 2: the fixture itself (a successful tool_result); the model edits files and keeps a todo list.
    await tracker.record_request(key, full)
    await tracker.record_response(key, observe(SCRIPTED_EVENTS))

    # Turn 3: those tool results come back, the Edit failed; the model ends its turn (not streamed).
    results = tuple(ToolResult(call_id=f"call_{i}", content=(Text(text="ok"),), is_error=(i == 1)) for i in range(1, 7))
    turn_3 = Request(
        model=full.model,
        system=full.system,
        native={"system": "list"},
        user=full.user,
        messages=(
            *full.messages,
            Message(role="assistant", content=(ToolCall(id="call_1", name="Edit", arguments="{}"),)),
            Message(role="user", content=results),
        ),
    )
    await tracker.record_request(key, turn_3)
    observer = ResponseObserver()
    observer.feed_response(
        Response(
            id="r3",
            model="x",
            content=(Text(text="All done."),),
            stop_reason=StopReason.END_TURN,
            usage=Usage(input_tokens=300, output_tokens=40),
        )
    )
    await tracker.record_response(key, observer.delta())

    expected = (
        f"{HEADER}\n"
        "Started: 2026-05-28T20:26:40Z. Requests so far: 3. Tokens used: 1,655 in, 90 out.\n"
        f"First request: {first}\n"
        "Tool calls: Bash x1, Edit x1, MultiEdit x1, NotebookEdit x1, Read x1, TodoWrite x1, Write x1\n"
        "Files touched: README.md, nb.ipynb, src/app.py\n"
        "Failed tool results: 1\n"
        "Last stop reason: end_turn\n"
        "Todo list (1/3 done):\n"
        "- [x] Write tests\n"
        "- [>] Fix the bug\n"
        "- [ ] Ship"
    )
    assert await tracker.render(key) == expected
    assert tracker.failures == 0

    # The section lands after the append, as a new uncached last system block.
    edited = edit_request(turn_3, SystemEdit(append="Be brief."), await tracker.render(key))
    assert edited.system is not None and full.system is not None
    assert edited.system[:-1] == full.system
    assert edited.system[-1] == Text(text="Be brief.\n\n" + expected)


async def test_codex_session(store: StateStore) -> None:
    tracker = ProgressTracker(store, ttl_s=3600, clock=lambda: T0)
    headers = lower(CODEX["headers"])
    full = responses_request(CODEX["body"])
    first_turn = responses_request({**CODEX["body"], "input": CODEX["body"]["input"][:4]})
    key = session_key("codex-route", headers, first_turn)
    assert key == f"id:{CODEX_SESSION}"

    assert await tracker.render(key) is None
    await tracker.record_request(key, first_turn)
    call = full.messages[4].content[0]
    assert isinstance(call, ToolCall)
    await tracker.record_response(
        key,
        observe(
            [
                MessageStart(id="resp_1", model="x"),
                BlockStart(index=0, kind="reasoning", id="rs_1"),
                ThinkingDelta(index=0, text="Run the command"),
                BlockStop(index=0),
                *tool_stream(1, call.name, call.arguments),
                Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=5000, output_tokens=12)),
            ]
        ),
    )
    # Turn 2: the fixture (exec output, exit code 0); the model patches files and updates its plan.
    await tracker.record_request(key, full)
    patch = "*** Begin Patch\n*** Update File: src/main.rs\n@@\n-a\n+b\n*** Add File: notes.md\n+n\n*** End Patch\n"
    plan = args({"plan": [{"step": "Say hi", "status": "completed"}, {"step": "Patch", "status": "in_progress"}]})
    await tracker.record_response(
        key,
        observe(
            [
                *tool_stream(0, "apply_patch", patch, pieces=5, kind="custom"),
                *tool_stream(1, "update_plan", plan),
                Finish(stop_reason=StopReason.TOOL_USE, usage=Usage(input_tokens=5100, output_tokens=80)),
            ]
        ),
    )
    # Turn 3: a command failed (non-zero exit code in Codex's output).
    failed_output = "Chunk ID: 1\nWall time: 0.1 seconds\nProcess exited with code 1\nOutput:\nerror\n"
    turn_3 = Request(
        model=full.model,
        extra=full.extra,
        messages=(
            *full.messages,
            Message(role="assistant", content=(ToolCall(id="call_2", name="exec_command", arguments="{}"),)),
            Message(role="tool", content=(ToolResult(call_id="call_2", content=(Text(text=failed_output),)),)),
        ),
    )
    await tracker.record_request(key, turn_3)
    await tracker.record_response(
        key, observe([Finish(stop_reason=StopReason.END_TURN, usage=Usage(input_tokens=5200, output_tokens=9))])
    )
    assert await tracker.render(key) == (
        f"{HEADER}\n"
        "Started: 2026-05-28T20:26:40Z. Requests so far: 3. Tokens used: 15,300 in, 101 out.\n"
        "First request: say hi\n"
        "Tool calls: apply_patch x1, exec_command x1, update_plan x1\n"
        "Files touched: notes.md, src/main.rs\n"
        "Failed tool results: 1\n"
        "Last stop reason: end_turn\n"
        "Todo list (1/2 done):\n"
        "- [x] Say hi\n"
        "- [>] Patch"
    )


async def test_two_replicas_sharing_redis_see_one_session(redis_url: str) -> None:
    stores = [RedisStore(redis_url), RedisStore(redis_url)]
    trackers = [ProgressTracker(s, ttl_s=60, clock=lambda: T0) for s in stores]
    request = claude_request(CLAUDE["body"])
    key = session_key("r", lower(CLAUDE["headers"]), request)
    try:
        for i in range(10):
            await trackers[i % 2].record_request(key, request)
            await trackers[i % 2].record_response(key, ProgressDelta(output_tokens=1, tool_calls=(("Bash", 1),)))
        rendered = [await t.render(key) for t in trackers]
        assert rendered[0] == rendered[1]
        assert rendered[0] is not None
        assert "Requests so far: 10. Tokens used: 0 in, 10 out." in rendered[0]
        assert "Tool calls: Bash x10" in rendered[0]
    finally:
        for s in stores:
            await s.close()


async def test_records_expire() -> None:
    now = [1000.0]
    tracker = ProgressTracker(MemoryStore(clock=lambda: now[0]), ttl_s=0.2)
    await tracker.record_request("s", Request(model="m", messages=()))
    now[0] += 0.19
    assert await tracker.render("s") is not None  # reading does not refresh the TTL; writing does
    now[0] += 0.02
    assert await tracker.render("s") is None


async def test_store_holds_no_prompt_or_output(store: StateStore) -> None:
    tracker = ProgressTracker(store, ttl_s=60, clock=lambda: T0)
    full = claude_request(CLAUDE["body"])
    await tracker.record_request("s", full)
    await tracker.record_response("s", observe(SCRIPTED_EVENTS))
    record = await store.hgetall("llmp:progress:s")
    assert sorted(record) == [
        "file:README.md",
        "file:nb.ipynb",
        "file:src/app.py",
        "first",
        "in",
        "out",
        "requests",
        "started",
        "stop",
        "todos",
        "tool:Edit",
        "tool:MultiEdit",
        "tool:NotebookEdit",
        "tool:Read",
        "tool:TodoWrite",
        "tool:Write",
    ]
    stored = "".join(record.values())
    assert "Working on it" not in stored and "tool-ran-ok" not in stored
    assert len(record["first"]) == 200
