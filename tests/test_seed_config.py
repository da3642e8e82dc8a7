"""Seed parity: the config template of the project llm-proxy grew from loads and serves as its users wrote it.

That template writes every optional field, empty (``frontend_dialect: ""``, ``backend_api_key: ""``,
``system_replacements: {}``, ...); an empty string means "not set". Also: every missing environment variable
is reported in one message, and no value of a secret-bearing field is ever printed in a config error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_proxy.config import load_config, parse_config
from llm_proxy.errors import ConfigError
from tests.servers import (
    Recorded,
    RecordingUpstream,
    Reply,
    make_config,
    running_proxy,
    running_upstream,
    sdk_anthropic,
    sdk_openai,
)

SEED_TEMPLATE = """\
server:
  host: "0.0.0.0"
  port: 8080

models:
  - frontend_model_name: "gpt-4o"
    frontend_base_url: "/openai"
    frontend_dialect: ""
    backend_model_name: "gpt-4o"
    backend_base_url: "https://api.openai.com"
    backend_api_key: ""
    backend_auth_header: "Authorization"
    backend_auth_schema: "Bearer"
    backend_dialect: ""
    system_replacements: {}
    system_append: ""
    inject_progress: false

  # Translation: Anthropic clients (Claude Code) served by an OpenAI model
  - frontend_model_name: "claude-via-openai"
    frontend_base_url: "/claude"
    frontend_dialect: "claude"
    backend_model_name: "gpt-4o"
    backend_base_url: "https://api.openai.com/v1"
    backend_api_key: "${OPENAI_API_KEY}"
    backend_auth_header: "Authorization"
    backend_auth_schema: "Bearer"
    backend_dialect: "openai-chat"
    system_replacements: {}
    system_append: ""
    inject_progress: false

  # Translation: OpenAI clients served by a Claude model
  - frontend_model_name: "gpt4-via-claude"
    frontend_base_url: "/gpt"
    frontend_dialect: "openai-chat"
    backend_model_name: "claude-sonnet-4-5"
    backend_base_url: "https://api.anthropic.com"
    backend_api_key: "${ANTHROPIC_API_KEY}"
    backend_auth_header: "x-api-key"
    backend_auth_schema: ""
    backend_dialect: "claude"
    system_replacements: {}
    system_append: ""
    inject_progress: false
"""

ENV = {"OPENAI_API_KEY": "sk-openai-test-000000", "ANTHROPIC_API_KEY": "sk-ant-test-0000000"}


def test_the_seed_template_loads_with_empty_fields_meaning_not_set(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(SEED_TEMPLATE)
    config = load_config(path, ENV)
    proxy, claude_front, openai_front = config.routes
    assert (proxy.frontend_dialect, proxy.backend_dialect, proxy.translating) == (None, None, False)
    assert proxy.backend_api_key == "" and proxy.system_append is None and proxy.system_replacements == ()
    assert (claude_front.frontend_dialect, claude_front.backend_dialect) == ("claude", "openai-chat")
    assert claude_front.backend_api_key == ENV["OPENAI_API_KEY"]
    assert (openai_front.backend_auth_header, openai_front.backend_auth_schema) == ("x-api-key", "")
    assert openai_front.auth_value("k") == "k"
    assert config.server.host == "0.0.0.0"


def _chat_reply(recorded: Recorded) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "from gpt"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
        }
    ).encode()


def _claude_reply(recorded: Recorded) -> bytes:
    return json.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "from claude"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 4, "output_tokens": 2},
        }
    ).encode()


def test_the_seed_template_serves_its_three_routes(tmp_path: Path) -> None:
    async def handler(recorded: Recorded, reply: Reply) -> None:
        is_claude = recorded.path.endswith("/v1/messages")
        await reply.json(200, _claude_reply(recorded) if is_claude else _chat_reply(recorded))

    fake = RecordingUpstream(handler)
    with running_upstream(fake) as upstream:
        # The template verbatim, its two public hosts pointed at the recording upstream.
        text = SEED_TEMPLATE.replace("https://api.openai.com", upstream.url).replace(
            "https://api.anthropic.com", upstream.url
        )
        path = tmp_path / "config.yaml"
        path.write_text(text)
        config = load_config(path, ENV)
        with running_proxy(config) as proxy:
            plain = sdk_openai(base_url=proxy.url + "/openai/v1", api_key="client-own-key")
            answer = plain.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "a"}])
            assert answer.choices[0].message.content == "from gpt"
            claude = sdk_anthropic(base_url=proxy.url + "/claude", api_key="client")
            message = claude.messages.create(
                model="claude-via-openai", max_tokens=20, messages=[{"role": "user", "content": "b"}]
            )
            assert message.content[0].text == "from gpt"
            gpt = sdk_openai(base_url=proxy.url + "/gpt/v1", api_key="client")
            answer = gpt.chat.completions.create(model="gpt4-via-claude", messages=[{"role": "user", "content": "c"}])
            assert answer.choices[0].message.content == "from claude"

    first, second, third = fake.requests
    # Proxy mode with backend_api_key "": the client's own key goes through (pass-through).
    assert (first.path, first.headers["authorization"]) == ("/v1/chat/completions", "Bearer client-own-key")
    assert json.loads(first.body)["model"] == "gpt-4o"
    assert (second.path, second.headers["authorization"]) == ("/v1/chat/completions", "Bearer sk-openai-test-000000")
    assert json.loads(second.body)["model"] == "gpt-4o"
    assert (third.path, third.headers["x-api-key"]) == ("/v1/messages", "sk-ant-test-0000000")
    assert json.loads(third.body)["model"] == "claude-sonnet-4-5"


def test_an_empty_backend_model_name_means_the_frontend_name() -> None:
    config = make_config(
        [
            {
                "frontend_model_name": "m",
                "frontend_base_url": "/x",
                "backend_base_url": "mock://",
                "backend_model_name": "",
            }
        ]
    )
    assert config.routes[0].backend_model_name == "m"


@pytest.mark.parametrize("field", ["host", "state_store", "log_level", "port"])
def test_empty_server_fields_mean_the_default(field: str) -> None:
    entry = {"frontend_model_name": "m", "frontend_base_url": "/x", "backend_base_url": "mock://"}
    config = parse_config({"server": {field: ""}, "models": [entry]}, "c.yaml", {})
    assert (config.server.host, config.server.port, config.server.state_store) == ("127.0.0.1", 8080, None)


def test_every_missing_variable_is_reported_at_once() -> None:
    models = [
        {
            "frontend_model_name": "a",
            "frontend_base_url": "/a",
            "backend_base_url": "${UPSTREAM_A}",
            "backend_api_key": "${KEY_A}",
        },
        {
            "frontend_model_name": "b",
            "frontend_base_url": "/b",
            "backend_base_url": "mock://",
            "backend_api_key": "${KEY_B}",
            "system_append": "${KEY_A} again",
        },
    ]
    with pytest.raises(ConfigError) as info:
        parse_config({"server": {"state_store": "${REDIS_URL}"}, "models": models}, "c.yaml", {})
    assert str(info.value) == (
        "c.yaml: environment 4 variables are not set: REDIS_URL (used in server: field `state_store`); "
        "UPSTREAM_A (used in models[0] (a): field `backend_base_url`); "
        "KEY_A (used in models[0] (a): field `backend_api_key`, models[1] (b): field `system_append`); "
        "KEY_B (used in models[1] (b): field `backend_api_key`) (write ${VAR:-default} for a default)"
    )


SECRET = "sk-pasted-secret-0123456789abcdef"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("backend_auth_header", f"Authorization: Bearer {SECRET}"),
        ("backend_auth_header", SECRET + " x"),
        ("backend_api_key", SECRET + "\n"),
        ("backend_auth_schema", "Bearer\r\n" + SECRET),
        ("aws_secret_access_key", SECRET + "\x00"),
        ("aws_session_token", f"\t{SECRET}"),
        ("backend_api_key", ["list", SECRET]),
    ],
)
def test_config_errors_never_print_a_secret_bearing_value(field: str, value: object) -> None:
    entry = {"frontend_model_name": "m", "frontend_base_url": "/x", "backend_base_url": "mock://", field: value}
    with pytest.raises(ConfigError) as info:
        parse_config({"models": [entry]}, "c.yaml", {})
    message = str(info.value)
    assert message.startswith(f"c.yaml: models[0] (m): field `{field}`: ")
    assert SECRET not in message and "pasted" not in message
