"""Codex CLI itself, driven through the proxy (frontend openai-responses) to Claude and Chat upstreams.

Each test runs ``codex exec`` once, offline, in its own network namespace (see ``harness.py``). The
upstream is scripted: a call to Codex's ``exec_command`` tool running ``echo e2e-marker`` on the first
request, a fixed text on the second. Codex runs the command and sends a ``function_call_output``, which
the proxy must translate into the upstream's tool result (a ``tool_result`` block, a ``tool`` message).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.e2e import streams
from tests.e2e.checks import (
    assert_streamed_turns,
    chat_tool_exchange,
    claude_tool_exchange,
    text_of,
    user_text,
)
from tests.e2e.harness import UPSTREAM, Run, codex

pytestmark = pytest.mark.e2e

MODEL = "gpt-e2e"
BACKEND_MODEL = "upstream-model"
PREFIX = "/codex"
PROMPT = "Print the e2e marker with echo."
EXEC_ARGS = {"cmd": "echo e2e-marker"}
FINAL = "Done: the command printed e2e-marker."


def route(backend_dialect: str, base_url: str, **auth: str) -> dict[str, object]:
    return {
        "frontend_model_name": MODEL,
        "frontend_base_url": PREFIX,
        "frontend_dialect": "openai-responses",
        "backend_model_name": BACKEND_MODEL,
        "backend_base_url": base_url,
        "backend_api_key": "upstream-key",
        "backend_dialect": backend_dialect,
        **auth,
    }


def assert_final_message(run: Run) -> None:
    assert run.rc == 0, f"codex exec failed\n{run.describe()}"
    last = run.workdir / "last.txt"
    assert last.exists(), f"codex wrote no last message\n{run.describe()}"
    assert last.read_text().strip() == FINAL, run.describe()


def test_exec_command_round_trip_to_claude_upstream(tmp_path: Path) -> None:
    """openai-responses -> claude: function_call_output comes back as the tool_result of the tool_use."""
    script = [
        streams.claude_tool_use("toolu_e2eExec01", "exec_command", EXEC_ARGS, "Running the command."),
        streams.claude_text(FINAL),
    ]
    models = [route("claude", UPSTREAM, backend_auth_header="x-api-key", backend_auth_schema="")]
    run = codex(tmp_path, models=models, prefix=PREFIX, model=MODEL, prompt=PROMPT, upstream=script)
    assert_final_message(run)
    first, second = assert_streamed_turns(run, 2, "/v1/messages")
    headers = run.posts[0]["headers"]
    assert headers["x-api-key"] == "upstream-key"
    assert "authorization" not in headers
    assert "anthropic-version" in headers
    assert [first["model"], second["model"]] == [BACKEND_MODEL, BACKEND_MODEL]
    assert isinstance(first["max_tokens"], int) and first["max_tokens"] > 0
    assert PROMPT in user_text(first["messages"])
    assert "exec_command" in [t["name"] for t in first["tools"]]

    use, tool_result = claude_tool_exchange(second)
    assert (use["name"], use["input"]) == ("exec_command", EXEC_ARGS)
    assert "e2e-marker" in text_of(tool_result["content"]), tool_result


@pytest.mark.parametrize(
    ("client_suffix", "backend_base_url"),
    [("/v1", UPSTREAM + "/v1"), ("", UPSTREAM)],
    ids=["with-v1", "without-v1"],
)
def test_exec_command_round_trip_to_chat_upstream(tmp_path: Path, client_suffix: str, backend_base_url: str) -> None:
    """openai-responses -> openai-chat: function_call_output comes back as the tool message of the call.

    Both ways of writing the base URLs (with and without ``/v1``) reach the same operations."""
    script = [streams.chat_tool_call("call_e2eExec02", "exec_command", EXEC_ARGS), streams.chat_text(FINAL)]
    run = codex(
        tmp_path,
        models=[route("openai-chat", backend_base_url)],
        prefix=PREFIX,
        model=MODEL,
        prompt=PROMPT,
        upstream=script,
        base_suffix=client_suffix,
    )
    assert_final_message(run)
    first, second = assert_streamed_turns(run, 2, "/v1/chat/completions")
    assert run.posts[0]["headers"]["authorization"] == "Bearer upstream-key"
    assert [first["model"], second["model"]] == [BACKEND_MODEL, BACKEND_MODEL]
    assert PROMPT in user_text(first["messages"])
    assert "exec_command" in [t["function"]["name"] for t in first["tools"]]

    call, tool_message = chat_tool_exchange(second)
    assert call["function"]["name"] == "exec_command"
    assert orjson.loads(call["function"]["arguments"]) == EXEC_ARGS
    assert "e2e-marker" in text_of(tool_message["content"]), tool_message


def test_claude_thinking_survives_a_codex_round_trip(tmp_path: Path) -> None:
    """openai-responses -> claude with thinking: Codex gets a reasoning item, replays it, and the upstream gets
    the thinking block back with its signature, before the tool_use, in the same assistant turn."""
    thinking = ("The user wants the marker printed; echo will do.", "EqQBCkYIBxgCKkD-e2e-signature-" + "c2ln" * 16)
    script = [
        streams.claude_tool_use("toolu_e2eExec03", "exec_command", EXEC_ARGS, "Running the command.", thinking),
        streams.claude_text(FINAL),
    ]
    models = [route("claude", UPSTREAM, backend_auth_header="x-api-key", backend_auth_schema="")]
    run = codex(tmp_path, models=models, prefix=PREFIX, model=MODEL, prompt=PROMPT, upstream=script)
    assert_final_message(run)
    _, second = assert_streamed_turns(run, 2, "/v1/messages")
    use, tool_result = claude_tool_exchange(second)
    assert "e2e-marker" in text_of(tool_result["content"]), tool_result
    turn = next(m for m in second["messages"] if m["role"] == "assistant" and use in m["content"])
    kinds = [b["type"] for b in turn["content"]]
    assert kinds[0] == "thinking" and kinds[-1] == "tool_use", orjson.dumps(turn)
    assert (turn["content"][0]["thinking"], turn["content"][0]["signature"]) == thinking


PROXY_KEY = "lpk-e2e-codex-0123456789abcdefghijkl"


def test_a_proxy_key_in_the_providers_env_key_opens_a_guarded_route(tmp_path: Path) -> None:
    """Codex presents the proxy key through its provider's env_key (OPENAI_API_KEY), unmodified."""
    script = [
        streams.claude_tool_use("toolu_e2eExec08", "exec_command", EXEC_ARGS, "Running the command."),
        streams.claude_text(FINAL),
    ]
    models = [route("claude", UPSTREAM, backend_auth_header="x-api-key", backend_auth_schema="")]
    run = codex(
        tmp_path,
        models=models,
        prefix=PREFIX,
        model=MODEL,
        prompt=PROMPT,
        upstream=script,
        api_key=PROXY_KEY,
        client_keys=[{"name": "codex-user", "key": PROXY_KEY}],
    )
    assert_final_message(run)
    assert [post["headers"]["x-api-key"] for post in run.posts] == ["upstream-key"] * 2
    assert PROXY_KEY not in run.proxy_log and "key=codex-user" in run.proxy_log
