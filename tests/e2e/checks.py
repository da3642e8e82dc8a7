"""Assertions shared by the end-to-end tests: what the upstream must have seen, in each dialect.

Claude Code silently retries a turn WITHOUT streaming when the stream it got was broken, and still
exits 0 with a good answer; so every test checks the upstream's record, not only the client's output:
exactly one POST per turn, each with ``stream:true``.
"""

from __future__ import annotations

from typing import Any

import orjson

from tests.e2e.harness import Run


def assert_streamed_turns(run: Run, turns: int, path: str) -> list[dict[str, Any]]:
    """Exactly ``turns`` POSTs reached the upstream at ``path``, all ``stream:true``; returns their bodies."""
    posts = run.posts
    shape = [(p["path"], p["body"].get("stream") if isinstance(p["body"], dict) else None) for p in posts]
    retried = [i for i, (_, stream) in enumerate(shape) if stream is not True]
    hint = ""
    if retried:
        hint = (
            f"\nPOST(s) {retried} did not stream: the client retried without streaming, which Claude Code does "
            "when the stream the proxy sent it was broken (check the proxy's translated stream)"
        )
    assert shape == [(path, True)] * turns, (
        f"expected {turns} streamed POSTs to {path}, got {shape}{hint}\n{run.describe()}"
    )
    bodies = [p["body"] for p in posts]
    assert all(isinstance(b, dict) for b in bodies)
    return bodies


def text_of(content: Any) -> str:
    """The text of a message content or tool output: a string, or the concatenated text of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(text_of(p.get("text", p.get("content", ""))) for p in content if isinstance(p, dict))
    return ""


def user_text(messages: list[dict[str, Any]]) -> str:
    """All the text of the user messages of a chat or Messages request (Claude Code puts its prompt after
    a ``<system-reminder>`` block and may follow it with a mid-conversation ``system`` message)."""
    return "\n".join(text_of(m["content"]) for m in messages if m.get("role") == "user")


def claude_code_result(run: Run) -> dict[str, Any]:
    """The JSON object Claude Code prints with ``--output-format json`` (exit 0 required)."""
    assert run.rc == 0, f"Claude Code failed\n{run.describe()}"
    try:
        doc = orjson.loads(run.stdout.strip().splitlines()[-1])
    except (IndexError, orjson.JSONDecodeError):
        raise AssertionError(f"Claude Code printed no JSON result\n{run.describe()}") from None
    assert isinstance(doc, dict)
    return doc


# --- per-dialect views of the second request ---------------------------------------------------------


def chat_tool_exchange(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The last assistant tool call and the tool message answering it, from a chat request."""
    messages = body["messages"]
    calls = [m for m in messages if m.get("role") == "assistant" and m.get("tool_calls")]
    assert calls, f"no assistant message with tool_calls in {[m.get('role') for m in messages]}"
    call = calls[-1]["tool_calls"][-1]
    results = [m for m in messages if m.get("role") == "tool" and m.get("tool_call_id") == call["id"]]
    assert len(results) == 1, f"expected one tool message for {call['id']}, roles: {[m.get('role') for m in messages]}"
    assert messages[-1] is results[0], "the tool result must be the last message of the second request"
    return call, results[0]


def claude_tool_exchange(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The last tool_use block and the tool_result block answering it, from a Messages request."""
    messages = body["messages"]
    assistant = [m for m in messages if m["role"] == "assistant" and isinstance(m["content"], list)]
    uses = [b for m in assistant for b in m["content"] if b.get("type") == "tool_use"]
    assert uses, f"no tool_use block in the second request: {orjson.dumps(messages[-2:])[:2000]!r}"
    use = uses[-1]
    last = messages[-1]
    assert last["role"] == "user" and isinstance(last["content"], list), f"last message: {last!r}"
    results = [b for b in last["content"] if b.get("type") == "tool_result" and b.get("tool_use_id") == use["id"]]
    assert len(results) == 1, f"expected one tool_result for {use['id']} in the last user turn: {last!r}"
    return use, results[0]


def responses_items(body: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    items = body["input"]
    assert isinstance(items, list), f"input is not a list of items: {items!r}"
    return [i for i in items if isinstance(i, dict) and i.get("type") == kind]
