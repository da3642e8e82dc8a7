"""Claude Code itself, driven through the proxy to openai-chat, openai-responses and Claude upstreams.

Each test runs ``claude -p`` once, offline, in its own network namespace (see ``harness.py``). The
upstream is scripted: a tool call to Bash running ``echo e2e-marker`` on the first request, a fixed text
on the second. Claude Code runs the command (allowed by ``--allowedTools "Bash(echo:*)"``) and sends its
output back as a ``tool_result``, which the proxy must translate into the upstream's dialect.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.e2e import streams
from tests.e2e.checks import (
    assert_streamed_turns,
    chat_tool_exchange,
    claude_code_result,
    claude_tool_exchange,
    responses_items,
    text_of,
    user_text,
)
from tests.e2e.harness import UPSTREAM, claude_code

pytestmark = pytest.mark.e2e

MODEL = "claude-e2e"
BACKEND_MODEL = "upstream-model"
PREFIX = "/cc"
PROMPT = "Print the e2e marker with echo."
BASH_ARGS = {"command": "echo e2e-marker", "description": "Print the e2e marker"}
FINAL = "Done: the command printed e2e-marker."
ALLOW_ECHO = ("--allowedTools", "Bash(echo:*)")


def translation_route(backend_dialect: str) -> dict[str, object]:
    return {
        "frontend_model_name": MODEL,
        "frontend_base_url": PREFIX,
        "frontend_dialect": "claude",
        "backend_model_name": BACKEND_MODEL,
        "backend_base_url": UPSTREAM + "/v1",
        "backend_api_key": "upstream-key",
        "backend_dialect": backend_dialect,
    }


@pytest.mark.parametrize("backend_base_url", [UPSTREAM + "/v1", UPSTREAM], ids=["with-v1", "without-v1"])
def test_bash_round_trip_to_chat_upstream(tmp_path: Path, backend_base_url: str) -> None:
    """claude -> openai-chat: one streamed upstream request per turn, the tool result reaches the upstream."""
    script = [streams.chat_tool_call("call_e2eBash01", "Bash", BASH_ARGS), streams.chat_text(FINAL)]
    run = claude_code(
        tmp_path,
        models=[{**translation_route("openai-chat"), "backend_base_url": backend_base_url}],
        prefix=PREFIX,
        model=MODEL,
        prompt=PROMPT,
        upstream=script,
        extra_args=ALLOW_ECHO,
    )
    result = claude_code_result(run)
    first, second = assert_streamed_turns(run, 2, "/v1/chat/completions")
    assert run.posts[0]["headers"]["authorization"] == "Bearer upstream-key"
    assert "x-api-key" not in run.posts[0]["headers"]
    assert [first["model"], second["model"]] == [BACKEND_MODEL, BACKEND_MODEL]
    assert PROMPT in user_text(first["messages"])
    assert "Bash" in [t["function"]["name"] for t in first["tools"]]

    call, tool_message = chat_tool_exchange(second)
    assert call["function"]["name"] == "Bash"
    assert orjson.loads(call["function"]["arguments"]) == BASH_ARGS
    assert "e2e-marker" in text_of(tool_message["content"]), tool_message

    assert (result["is_error"], result["result"], result["num_turns"]) == (False, FINAL, 2), result


def test_bash_round_trip_to_responses_upstream_replays_reasoning(tmp_path: Path) -> None:
    """claude -> openai-responses with reasoning: the reasoning item comes back with its encrypted_content."""
    encrypted = "gAAAAABpE2E-opaque-reasoning-state-" + "Zm9vYmFy" * 8
    script = [
        streams.responses_reasoning_tool_call("rs_e2e03", encrypted, "call_e2eBash03", "Bash", BASH_ARGS),
        streams.responses_text(FINAL),
    ]
    run = claude_code(
        tmp_path,
        models=[translation_route("openai-responses")],
        prefix=PREFIX,
        model=MODEL,
        prompt=PROMPT,
        upstream=script,
        extra_args=ALLOW_ECHO,
    )
    result = claude_code_result(run)
    first, second = assert_streamed_turns(run, 2, "/v1/responses")
    assert [first["model"], second["model"]] == [BACKEND_MODEL, BACKEND_MODEL]
    assert "Bash" in [t.get("name") for t in first["tools"]]

    # With store:false the upstream keeps nothing: the proxy must ask for the encrypted reasoning to carry it.
    assert "reasoning.encrypted_content" in first.get("include", []), first.get("include")
    reasoning = responses_items(second, "reasoning")
    replayed = [(r.get("id"), r.get("encrypted_content")) for r in reasoning]
    assert replayed == [("rs_e2e03", encrypted)], orjson.dumps(second["input"][-3:])
    calls = responses_items(second, "function_call")
    assert [(c["call_id"], c["name"], orjson.loads(c["arguments"])) for c in calls] == [
        ("call_e2eBash03", "Bash", BASH_ARGS)
    ]
    outputs = responses_items(second, "function_call_output")
    assert [o["call_id"] for o in outputs] == ["call_e2eBash03"]
    assert "e2e-marker" in text_of(outputs[0]["output"]), outputs
    # The reasoning item precedes the call it led to, as the Responses API requires on replay.
    items = second["input"]
    assert items.index(reasoning[0]) < items.index(calls[0]) < items.index(outputs[0])

    assert (result["is_error"], result["result"], result["num_turns"]) == (False, FINAL, 2), result


def test_proxy_mode_with_mock_upstream(tmp_path: Path) -> None:
    """No dialects: Claude Code's request goes to the embedded mock with the model renamed; one POST per turn."""
    route = {
        "frontend_model_name": MODEL,
        "frontend_base_url": PREFIX,
        "backend_model_name": BACKEND_MODEL,
        "backend_base_url": UPSTREAM,
    }
    run = claude_code(tmp_path, models=[route], prefix=PREFIX, model=MODEL, prompt="e2e proxy-mode ping", upstream=None)
    result = claude_code_result(run)
    assert result["is_error"] is False
    assert result["result"].startswith("mock reply: ") and result["result"].endswith("e2e proxy-mode ping"), result
    posts = [line for line in run.proxy_log.splitlines() if "llm_proxy.access: POST" in line]
    assert len(posts) == 1, f"expected one POST through the proxy\n{run.describe()}"
    assert f"POST {PREFIX} {MODEL} -> {BACKEND_MODEL} 200" in posts[0], posts


def test_proxy_mode_forwards_the_request_unchanged_but_the_model(tmp_path: Path) -> None:
    """No dialects, recording upstream: same path and query, streamed, only ``model`` rewritten, client key kept."""
    route = {
        "frontend_model_name": MODEL,
        "frontend_base_url": PREFIX,
        "backend_model_name": BACKEND_MODEL,
        "backend_base_url": UPSTREAM,
    }
    run = claude_code(
        tmp_path, models=[route], prefix=PREFIX, model=MODEL, prompt=PROMPT, upstream=[streams.claude_text(FINAL)]
    )
    result = claude_code_result(run)
    (body,) = assert_streamed_turns(run, 1, "/v1/messages")
    request = run.posts[0]
    assert request["query"] == "beta=true"
    assert request["headers"]["x-api-key"] == "dummy-key"
    assert "anthropic-version" in request["headers"]
    assert body["model"] == BACKEND_MODEL
    assert PROMPT in user_text(body["messages"])
    assert (result["is_error"], result["result"]) == (False, FINAL), result


def test_bash_round_trip_to_claude_upstream(tmp_path: Path) -> None:
    """claude -> claude (translation on both sides of the same dialect): the tool round trip survives."""
    script = [
        streams.claude_tool_use("toolu_e2eBash05", "Bash", BASH_ARGS, "I'll run it."),
        streams.claude_text(FINAL),
    ]
    route = {**translation_route("claude"), "backend_base_url": UPSTREAM}
    run = claude_code(
        tmp_path, models=[route], prefix=PREFIX, model=MODEL, prompt=PROMPT, upstream=script, extra_args=ALLOW_ECHO
    )
    result = claude_code_result(run)
    _, second = assert_streamed_turns(run, 2, "/v1/messages")
    use, tool_result = claude_tool_exchange(second)
    assert (use["id"], use["name"], use["input"]) == ("toolu_e2eBash05", "Bash", BASH_ARGS)
    assert "e2e-marker" in text_of(tool_result["content"]), tool_result
    assert (result["is_error"], result["result"], result["num_turns"]) == (False, FINAL, 2), result


def test_cut_upstream_stream_reaches_claude_code_as_an_error(tmp_path: Path) -> None:
    """An upstream stream cut short must reach Claude Code as an error, never as a clean (truncated) answer.

    Claude Code reacts to a broken stream by retrying the same request without streaming, so the record
    shows the streamed POST, then a non-streamed one (answered here with a complete JSON reply). This also
    proves the harness sees that silent retry, which the other tests assert never happens."""
    recovered = "Recovered without streaming."
    script = [streams.chat_cut("This answer is cut off before it ends"), streams.chat_completion_json(recovered)]
    run = claude_code(
        tmp_path,
        models=[translation_route("openai-chat")],
        prefix=PREFIX,
        model=MODEL,
        prompt=PROMPT,
        upstream=script,
    )
    shape = [(p["path"], p["body"].get("stream") is True) for p in run.posts]
    path = "/v1/chat/completions"
    assert shape == [(path, True), (path, False)], f"no non-streaming retry after the cut stream\n{run.describe()}"
    result = claude_code_result(run)
    assert (result["is_error"], result["result"]) == (False, recovered), result


OVERLOADED = {
    "status": 529,
    "content_type": "application/json",
    "chunks": ['{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'],
}


def test_overloaded_anthropic_falls_back_to_openai_chat_mid_session(tmp_path: Path) -> None:
    """claude primary answering 529 on every turn -> the openai-chat fallback serves the whole tool round trip,
    and Claude Code sees Anthropic events throughout."""
    route = {
        **translation_route("claude"),
        "backend_base_url": UPSTREAM,
        "retries": 1,
        "fallbacks": [
            {
                "name": "gpt",
                "backend_dialect": "openai-chat",
                "backend_base_url": UPSTREAM + "/v1",
                "backend_model_name": "gpt-fallback",
                "backend_api_key": "fallback-key",
            }
        ],
    }
    script = [
        OVERLOADED,
        streams.chat_tool_call("call_e2eBash09", "Bash", BASH_ARGS),
        OVERLOADED,
        streams.chat_text(FINAL),
    ]
    run = claude_code(
        tmp_path, models=[route], prefix=PREFIX, model=MODEL, prompt=PROMPT, upstream=script, extra_args=ALLOW_ECHO
    )
    result = claude_code_result(run)
    paths = [post["path"] for post in run.posts]
    assert paths == ["/v1/messages", "/v1/chat/completions"] * 2, paths
    assert [post["headers"].get("authorization") for post in run.posts[1::2]] == ["Bearer fallback-key"] * 2
    second = run.posts[3]["body"]
    assert second["model"] == "gpt-fallback"
    call, tool_message = chat_tool_exchange(second)
    assert call["function"]["name"] == "Bash" and "e2e-marker" in text_of(tool_message["content"])
    assert (result["is_error"], result["result"], result["num_turns"]) == (False, FINAL, 2), result


PROXY_KEY = "lpk-e2e-claude-code-0123456789abcdef"


def test_a_proxy_key_in_anthropic_api_key_opens_a_guarded_route(tmp_path: Path) -> None:
    """With client_keys configured the route (it holds the proxy's own upstream key) needs a client key: Claude Code
    presents it as its ANTHROPIC_API_KEY, unmodified, and completes a tool round trip; the key never goes upstream."""
    script = [streams.chat_tool_call("call_e2eBash07", "Bash", BASH_ARGS), streams.chat_text(FINAL)]
    run = claude_code(
        tmp_path,
        models=[translation_route("openai-chat")],
        prefix=PREFIX,
        model=MODEL,
        prompt=PROMPT,
        upstream=script,
        extra_args=ALLOW_ECHO,
        api_key=PROXY_KEY,
        client_keys=[{"name": "claude-code-user", "key": PROXY_KEY}],
    )
    result = claude_code_result(run)
    assert (result["is_error"], result["result"], result["num_turns"]) == (False, FINAL, 2), result
    assert [post["headers"]["authorization"] for post in run.posts] == ["Bearer upstream-key"] * 2
    assert PROXY_KEY not in run.proxy_log and "key=claude-code-user" in run.proxy_log
