"""The ledger's config: usage_store (default beside the file, none, sqlite, postgresql), prices, budgets,
admin_key (redacted, never echoed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_proxy.config import Rates, load_config, parse_config
from llm_proxy.errors import ConfigError
from llm_proxy.ledger.service import shown_url
from llm_proxy.ledger.summary import ReportError, parse_by, parse_since
from llm_proxy.observe.redact import Redactor

MODELS = [{"frontend_model_name": "m", "frontend_base_url": "/", "backend_base_url": "mock://"}]


def _parse(server: dict[str, Any] | None = None, **top: Any) -> Any:
    return parse_config({"server": server or {}, "models": MODELS, **top}, "/etc/proxy/c.yaml", {"PG": "s3cret"})


def test_the_default_ledger_is_usage_db_beside_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(yaml.safe_dump({"models": MODELS}))
    assert load_config(path).server.usage_store == f"sqlite:///{tmp_path / 'usage.db'}"
    assert _parse().server.usage_store is None  # a config built in code keeps no ledger unless it asks


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("none", None),
        ("sqlite:///data/u.db", "sqlite:////etc/proxy/data/u.db"),
        ("sqlite:////var/lib/u.db", "sqlite:////var/lib/u.db"),
        ("postgresql://app:${PG}@db:5432/usage", "postgresql://app:s3cret@db:5432/usage"),
        ("postgres://app@db/usage", "postgresql://app@db/usage"),
    ],
)
def test_usage_store_values(given: str, stored: str | None) -> None:
    assert _parse({"usage_store": given}).server.usage_store == stored


def test_the_database_password_is_a_secret() -> None:
    assert "s3cret" in _parse({"usage_store": "postgresql://app:${PG}@db:5432/usage"}).secrets


def test_a_bad_usage_store_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        _parse({"usage_store": "mysql://x"})
    assert str(caught.value) == (
        "/etc/proxy/c.yaml: server: field `usage_store`: must be `none`, sqlite:///PATH or "
        "postgresql://USER:PASSWORD@HOST:PORT/DB"
    )


def test_prices_and_budgets() -> None:
    keys = [{"name": "a", "key": "k" * 16, "budget_usd_per_day": 5, "budget_usd_per_month": "100.5"}]
    config = _parse(prices={"my-model": {"input": 3.0, "output": 15, "cache_read": 0.3}}, client_keys=keys)
    assert config.prices == {"my-model": Rates(input=3.0, output=15.0, cache_read=0.3)}
    (key,) = config.client_keys
    assert (key.budget_usd_per_day, key.budget_usd_per_month, key.budgeted) == (5.0, 100.5, True)
    with pytest.raises(ConfigError, match=r"prices: my-model: field `output` is required"):
        _parse(prices={"my-model": {"input": 3.0}})
    with pytest.raises(ConfigError, match=r"prices: my-model: unknown field `inptu` \(did you mean `input`\?\)"):
        _parse(prices={"my-model": {"inptu": 3.0, "output": 1}})
    with pytest.raises(ConfigError, match=r"client_keys\[0\]: field `budget_usd_per_day`: must be greater than 0"):
        _parse(client_keys=[{"name": "a", "key": "k" * 16, "budget_usd_per_day": 0}])


def test_the_admin_key_is_a_secret() -> None:
    config = _parse({"admin_key": "adm-0123456789abcdef"})
    assert "adm-0123456789abcdef" in config.secrets
    assert Redactor(config.secrets).text("key adm-0123456789abcdef") == "key [redacted]"
    assert "adm-" not in repr(config.server)
    with pytest.raises(ConfigError) as caught:
        _parse({"admin_key": "short"})
    assert "short" not in str(caught.value)
    assert str(caught.value).endswith("field `admin_key`: must be a string of at least 16 characters (value not shown)")


def test_report_arguments_and_shown_urls() -> None:
    assert parse_since("24h", 100_000.0) == 100_000.0 - 86_400
    assert parse_since("2026-03-01", 0) == 1772323200.0
    assert parse_by("client, day") == ("client", "day")
    with pytest.raises(ReportError):
        parse_by("client,client")
    assert shown_url("postgresql://app:s3cret@db:5432/usage") == "postgresql://app:***@db:5432/usage"
    assert shown_url("postgresql://app@db/usage") == "postgresql://app@db/usage"
