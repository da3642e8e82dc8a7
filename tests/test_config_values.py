"""Config values: empty optional fields mean unset, every missing variable at once, secrets never printed."""

from __future__ import annotations

import pytest

from llm_proxy.config import parse_config
from llm_proxy.errors import ConfigError
from tests.servers import make_config


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
        "c.yaml: 4 environment variables are not set: REDIS_URL (in server: field `state_store`); "
        "UPSTREAM_A (in models[0] (a): field `backend_base_url`); "
        "KEY_A (in models[0] (a): field `backend_api_key`, models[1] (b): field `system_append`); "
        "KEY_B (in models[1] (b): field `backend_api_key`) (export them, or write ${VAR:-default} for a default)"
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
