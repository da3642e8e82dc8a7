"""A missing system piece skips a test on a developer's machine and fails it in CI."""

from __future__ import annotations

import pytest

from tests import prerequisites


@pytest.mark.parametrize("value", [None, "", "0", "false", "False", "no"])
def test_missing_piece_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception) as info:
        prerequisites.missing("redis-server", "apt-get install -y redis-server")
    assert str(info.value) == "needs redis-server: apt-get install -y redis-server"


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_missing_piece_fails_in_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception) as info:
        prerequisites.missing("redis-server", "apt-get install -y redis-server")
    assert str(info.value) == (
        "needs redis-server: apt-get install -y redis-server (CI is set: a missing piece fails, never skips)"
    )


def test_command_finds_what_is_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert prerequisites.command("sh", "a shell", "apt-get install -y dash").endswith("/sh")
    with pytest.raises(pytest.skip.Exception, match="^needs nothing-here: install it$"):
        prerequisites.command("llm-proxy-no-such-binary", "nothing-here", "install it")
