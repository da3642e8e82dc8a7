from __future__ import annotations

from pathlib import Path

import pytest

from llm_proxy.app.cli import route_table
from llm_proxy.config import load_config, mask_key, parse_config
from llm_proxy.dialects import names
from llm_proxy.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

BASE: dict[str, object] = {
    "frontend_model_name": "gpt-x",
    "frontend_base_url": "/openai",
    "backend_model_name": "gpt-4o",
    "backend_base_url": "https://api.example.com/v1/",
}


def parse(models: list[dict[str, object]], env: dict[str, str] | None = None, server: object = None) -> object:
    return parse_config({"server": server or {}, "models": models}, "cfg.yaml", env or {})


def error_of(models: list[dict[str, object]], env: dict[str, str] | None = None, server: object = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse(models, env, server)
    return str(info.value)


def test_defaults_and_normalisation() -> None:
    config = parse_config({"models": [dict(BASE, frontend_base_url="/openai/")]}, "cfg.yaml", {})
    route = config.routes[0]
    assert route.frontend_base_url == "/openai"
    assert route.backend_base_url == "https://api.example.com/v1"
    assert route.backend_auth_header == "Authorization"
    assert route.backend_auth_schema == "Bearer"
    assert not route.translating
    assert config.server.port == 8080 and config.server.host == "127.0.0.1"
    assert config.server.read_timeout == 600.0


def test_backend_model_defaults_to_frontend_model() -> None:
    entry = {k: v for k, v in BASE.items() if k != "backend_model_name"}
    config = parse_config({"models": [entry]}, "cfg.yaml", {})
    assert config.routes[0].backend_model_name == "gpt-x"


def test_env_expansion_with_and_without_default() -> None:
    entry = dict(BASE, backend_api_key="${KEY}", backend_model_name="${MODEL:-fallback-model}")
    config = parse_config({"models": [entry]}, "cfg.yaml", {"KEY": "sk-secret-123456"})
    assert config.routes[0].backend_api_key == "sk-secret-123456"
    assert config.routes[0].backend_model_name == "fallback-model"


def test_unset_variable_is_named() -> None:
    message = error_of([dict(BASE, backend_api_key="${OPENAI_KEY}")])
    assert message == (
        "cfg.yaml: models[0] (gpt-x): field `backend_api_key`: environment variable OPENAI_KEY is not set "
        "(write ${OPENAI_KEY:-default} for a default)"
    )


def test_every_unset_variable_in_one_message() -> None:
    models = [
        dict(BASE, backend_api_key="${OPENAI_KEY}", system_append="${NOTE}"),
        dict(BASE, frontend_base_url="/b", backend_api_key="${OPENAI_KEY}", aws_region="${REGION:-us-east-1}"),
        dict(BASE, frontend_base_url="/c", aws_profile="${PROFILE}"),
    ]
    message = error_of(models, server={"state_store": "${REDIS_URL}"})
    assert message == (
        "cfg.yaml: 4 environment variables are not set: "
        "REDIS_URL (in server: field `state_store`); "
        "OPENAI_KEY (in models[0] (gpt-x): field `backend_api_key`, models[1] (gpt-x): field `backend_api_key`); "
        "NOTE (in models[0] (gpt-x): field `system_append`); "
        "PROFILE (in models[2] (gpt-x): field `aws_profile`) "
        "(export them, or write ${VAR:-default} for a default)"
    )
    assert "\n" not in message


def test_example_config_names_every_missing_variable_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(REPO / "config" / "config.example.yaml", {})
    message = str(info.value)
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert f"{var} (in " in message
    assert "AWS_BEARER_TOKEN_BEDROCK (in models[6] (claude-bedrock): field `backend_api_key`)" in message
    assert "AWS_SESSION_TOKEN" not in message  # it has a default


def test_empty_string_means_not_set() -> None:
    entry = dict(
        BASE,
        backend_model_name="",
        frontend_dialect="",
        backend_dialect="",
        backend_api_key="",
        backend_auth_header="",
        system_replacements={},
        system_append="",
        inject_progress="",
        default_max_tokens="",
        aws_region="",
        aws_access_key_id="",
        aws_secret_access_key="",
        aws_session_token="",
        aws_profile="",
    )
    server = {"host": "", "port": "", "state_store": "", "log_level": "", "read_timeout": ""}
    config = parse_config({"server": server, "models": [entry]}, "cfg.yaml", {})
    route = config.routes[0]
    unset = parse_config({"models": [{k: v for k, v in BASE.items() if k != "backend_model_name"}]}, "cfg.yaml", {})
    assert route == unset.routes[0]
    assert route.backend_model_name == "gpt-x"  # the frontend name, decided at load, never per request
    assert config.server == unset.server


def test_empty_auth_schema_keeps_its_meaning() -> None:
    route = parse_config({"models": [dict(BASE, backend_auth_schema="")]}, "cfg.yaml", {}).routes[0]
    assert route.backend_auth_schema == ""
    assert route.auth_value("sk-1") == "sk-1"


def test_empty_dialect_on_one_side_only_is_still_an_error() -> None:
    message = error_of([dict(BASE, frontend_dialect="claude", backend_dialect="")])
    assert message == (
        "cfg.yaml: models[0] (gpt-x): field `backend_dialect`: set both frontend_dialect and backend_dialect "
        "(translation mode) or neither (proxy mode)"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"backend_modle_name": "x"},
            "cfg.yaml: models[0] (gpt-x): unknown field `backend_modle_name` (did you mean `backend_model_name`?)",
        ),
        (
            {"frontend_base_url": "openai"},
            "cfg.yaml: models[0] (gpt-x): field `frontend_base_url`: must start with `/` (got 'openai')",
        ),
        (
            {"frontend_dialect": "cohere", "backend_dialect": "claude"},
            "cfg.yaml: models[0] (gpt-x): field `frontend_dialect`: unknown dialect 'cohere' "
            f"(known: {', '.join(names())})",
        ),
        (
            {"frontend_dialect": "claude"},
            "cfg.yaml: models[0] (gpt-x): field `backend_dialect`: set both frontend_dialect and backend_dialect "
            "(translation mode) or neither (proxy mode)",
        ),
        (
            {"backend_base_url": "ftp://example.com"},
            "cfg.yaml: models[0] (gpt-x): field `backend_base_url`: must be an http(s):// URL or exactly mock:// "
            "(got 'ftp://example.com')",
        ),
        ({"backend_base_url": "https://"}, "field `backend_base_url`: must be an http(s):// URL"),
        ({"inject_progress": "yes"}, "cfg.yaml: models[0] (gpt-x): field `inject_progress`: must be true or false"),
        ({"system_replacements": ["a"]}, "field `system_replacements`: must be a mapping of old text to new text"),
        (
            {"backend_auth_header": "X Bad"},
            "cfg.yaml: models[0] (gpt-x): field `backend_auth_header`: not a valid HTTP header name (value not "
            "shown; write only the name, e.g. x-api-key, and put the key in backend_api_key)",
        ),
        ({"frontend_model_name": ""}, "cfg.yaml: models[0]: field `frontend_model_name`: is required"),
    ],
)
def test_entry_errors_name_entry_and_field(change: dict[str, object], expected: str) -> None:
    assert expected in error_of([dict(BASE, **change)])


def test_duplicate_prefix_and_model() -> None:
    message = error_of([BASE, dict(BASE, backend_model_name="other")])
    assert message == (
        "cfg.yaml: models[1] (gpt-x): field `frontend_model_name`: duplicate of models[0] (gpt-x) "
        "under the same frontend_base_url '/openai'"
    )


def test_same_model_under_two_prefixes_is_fine() -> None:
    config = parse_config({"models": [BASE, dict(BASE, frontend_base_url="/other")]}, "cfg.yaml", {})
    assert len(config.routes) == 2


def test_server_errors() -> None:
    assert error_of([BASE], server={"prot": 1}) == "cfg.yaml: server: unknown field `prot` (did you mean `port`?)"
    assert error_of([BASE], server={"port": "http"}) == "cfg.yaml: server: field `port`: must be an integer"
    assert "server: field `state_store`: must be `memory` or a redis:// URL" in error_of(
        [BASE], server={"state_store": "mysql://x"}
    )


def test_top_level_shape_errors() -> None:
    with pytest.raises(ConfigError, match=r"^cfg.yaml: `models` must be a non-empty list"):
        parse_config({"models": []}, "cfg.yaml", {})
    with pytest.raises(ConfigError, match=r"^cfg.yaml: the top level must be a mapping"):
        parse_config(["x"], "cfg.yaml", {})
    with pytest.raises(ConfigError, match=r"^cfg.yaml: top level: unknown field `model`"):
        parse_config({"model": []}, "cfg.yaml", {})


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("models:\n  - frontend_model_name: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: not valid YAML: ")
    assert "line 3" in str(info.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"^/nonexistent.yaml: cannot read the config file"):
        load_config("/nonexistent.yaml")


def test_mask_key() -> None:
    assert mask_key("sk-proj-abcdef123f9a") == "sk-…3f9a"
    assert mask_key("short") == "…"
    assert mask_key("") == "(none)"


def test_route_table_masks_keys() -> None:
    entry = dict(BASE, backend_api_key="sk-live-0123456789abcdef3f9a")
    claude = dict(BASE, frontend_base_url="/c", backend_auth_header="x-api-key", backend_auth_schema="")
    claude["backend_api_key"] = "ant-key-99998888"
    config = parse_config({"models": [entry, claude]}, "cfg.yaml", {})
    table = route_table(config)
    assert "sk-live-0123456789abcdef3f9a" not in table and "ant-key-99998888" not in table
    assert "Authorization: Bearer sk-…3f9a" in table
    assert "x-api-key: ant…8888" in table
    assert table.splitlines()[0] == "cfg.yaml: 2 route(s) OK"


@pytest.mark.parametrize("name", ["demo.yaml", "config.example.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    env = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "ak-test", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE"}
    env |= {"AWS_SECRET_ACCESS_KEY": "secret", "AWS_BEARER_TOKEN_BEDROCK": "bk", "OPENROUTER_API_KEY": "or"}
    config = load_config(REPO / "config" / name, env)
    assert config.routes
