"""Seed parity: the config template users bring from the project this one grew from loads and serves.

``tests/configs/seed.yaml`` is that template as its README prints it: every optional field present
with an empty value (``frontend_dialect: ""``, ``backend_api_key: ""``, ``system_replacements: {}``,
...) and its two translation examples. It is loaded verbatim; only the upstream addresses are then
pointed at a local recording upstream, so every request can be checked as the upstream received it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_proxy.config import Config, load_config
from tests.servers import Recorded, RecordingUpstream, Reply, ServerThread, running_proxy, sdk_anthropic, sdk_openai

SEED = Path(__file__).resolve().parent / "configs" / "seed.yaml"
ENV = {"ANTHROPIC_API_KEY": "sk-ant-seed-0001", "OPENAI_API_KEY": "sk-openai-seed-0002"}

CHAT_REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "upstream-echo",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "from chat"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}
CLAUDE_REPLY = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "upstream-echo",
    "content": [{"type": "text", "text": "from claude"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 3, "output_tokens": 2},
}


async def answer(request: Recorded, reply: Reply) -> None:
    """A Messages reply on ``/v1/messages``, a Chat Completions reply anywhere else."""
    body = CLAUDE_REPLY if request.path == "/v1/messages" else CHAT_REPLY
    await reply.json(200, json.dumps(body).encode())


def test_seed_template_loads_with_empty_optional_fields() -> None:
    config = load_config(SEED, ENV)
    template, claude_via_openai, gpt4_via_claude = config.routes
    assert (template.frontend_dialect, template.backend_dialect) == (None, None)
    assert not template.translating
    assert template.backend_model_name == "gpt-4o"  # "" = not set = the frontend name
    assert template.backend_api_key == ""
    assert (template.system_replacements, template.system_append, template.inject_progress) == ((), None, False)
    assert (claude_via_openai.frontend_dialect, claude_via_openai.backend_dialect) == ("openai-chat", "claude")
    assert claude_via_openai.backend_auth_schema == ""  # here "" keeps its meaning: the raw key
    assert claude_via_openai.auth_value("k") == "k"
    assert (gpt4_via_claude.frontend_dialect, gpt4_via_claude.backend_dialect) == ("claude", "openai-chat")
    assert gpt4_via_claude.auth_value("k") == "Bearer k"


@pytest.fixture
def seed_proxy() -> Iterator[tuple[RecordingUpstream, ServerThread]]:
    upstream = RecordingUpstream(handler=answer)
    with ServerThread(upstream) as server:
        loaded = load_config(SEED, ENV)
        routes = tuple(dataclasses.replace(r, backend_base_url=server.url) for r in loaded.routes)
        config: Config = dataclasses.replace(loaded, routes=routes)
        with running_proxy(config) as proxy:
            yield upstream, proxy


def test_template_route_proxies_unchanged(seed_proxy: tuple[RecordingUpstream, ServerThread]) -> None:
    upstream, proxy = seed_proxy
    client = sdk_openai(base_url=f"{proxy.url}/openai/v1", api_key="client-own-key", max_retries=0)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    reply = client.chat.completions.create(model="gpt-4o", messages=messages)
    assert reply.choices[0].message.content == "from chat"
    (seen,) = upstream.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer client-own-key"  # backend_api_key "" = pass-through
    assert json.loads(seen.body) == {"model": "gpt-4o", "messages": messages}  # no prompt edits


def test_claude_via_openai_example(seed_proxy: tuple[RecordingUpstream, ServerThread]) -> None:
    upstream, proxy = seed_proxy
    client = sdk_openai(base_url=f"{proxy.url}/openai-compat/v1", api_key="client-key", max_retries=0)
    reply = client.chat.completions.create(model="claude-via-openai", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "from claude"
    (seen,) = upstream.requests
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == "sk-ant-seed-0001"
    assert "authorization" not in seen.headers
    assert json.loads(seen.body) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 8192,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_gpt4_via_claude_example(seed_proxy: tuple[RecordingUpstream, ServerThread]) -> None:
    upstream, proxy = seed_proxy
    client = sdk_anthropic(base_url=f"{proxy.url}/claude-compat", api_key="client-key", max_retries=0)
    reply = client.messages.create(model="gpt4-via-claude", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert reply.content[0].text == "from chat"
    (seen,) = upstream.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == "Bearer sk-openai-seed-0002"
    assert "x-api-key" not in seen.headers
    assert json.loads(seen.body) == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 50,
    }
