"""The README's client recipes, taken from README.md itself and run with the real clients on the demo config.

For Claude Code and the Codex CLI the README prints shell lines (``export VAR=value`` and the command), a
config file (Codex's ``config.toml``, Claude Code's ``~/.claude.json``) and the demo route they use. These
tests read exactly those blocks from README.md, so a recipe that stops working, or a README edit that breaks
one, fails here. The only change made to what the README prints is the port: the proxy of these tests
listens on the harness's port instead of 8080 (each test runs in a network namespace of its own).
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from tests.e2e.checks import claude_code_result
from tests.e2e.harness import E2E, PROXY_PORT, REPO, client_bin, run_in_netns
from tests.e2e.pty_drive import screen_text

pytestmark = pytest.mark.e2e

README = REPO / "README.md"
DEMO = REPO / "config" / "demo.yaml"
README_ADDRESS = "localhost:8080"


@dataclass
class Recipe:
    """The blocks the README prints under one client's heading in its Clients section."""

    client: str
    blocks: dict[str, list[str]]
    """Fenced blocks by language (``sh``, ``toml``, ``json``), in README order."""

    def block(self, language: str) -> str:
        found = self.blocks.get(language, [])
        assert len(found) == 1, f"README: expected one {language} block for {self.client}, found {len(found)}"
        return found[0].replace(README_ADDRESS, f"localhost:{PROXY_PORT}")

    def shell(self) -> tuple[dict[str, str], list[str]]:
        """The ``export`` lines as an environment, and the one command line as argv."""
        env: dict[str, str] = {}
        commands: list[list[str]] = []
        for line in self.block("sh").splitlines():
            words = shlex.split(line, comments=True)
            if not words:
                continue
            if words[0] == "export":
                for word in words[1:]:
                    name, sep, value = word.partition("=")
                    assert sep, f"README {self.client}: cannot read {line!r}"
                    env[name] = value
            else:
                commands.append(words)
        assert len(commands) == 1, f"README {self.client}: expected one command line, found {commands}"
        return env, commands[0]


def readme_recipe(client: str) -> Recipe:
    """The fenced blocks between ``**{client}**`` and the next bold heading of the Clients section."""
    text = README.read_text()
    section = text[text.index("\n## Clients\n") :]
    section = section[: section.index("\n## ", 4)]
    start = section.index(f"\n**{client}**")
    following = re.search(r"\n\*\*[^*\n]+\*\*", section[start + 1 :])
    body = section[start : start + 1 + following.start()] if following else section[start:]
    blocks: dict[str, list[str]] = {}
    for language, code in re.findall(r"\n```(\w+)\n(.*?)\n```", body, flags=re.S):
        blocks.setdefault(language, []).append(code)
    return Recipe(client=client, blocks=blocks)


def demo_models() -> list[dict[str, Any]]:
    models = yaml.safe_load(DEMO.read_text())["models"]
    assert isinstance(models, list)
    return models


def test_claude_code_recipe_one_prompt(tmp_path: Path) -> None:
    """The README's variables and command, plus ``-p``: Claude Code gets the demo route's answer."""
    env, argv = readme_recipe("Claude Code").shell()
    assert argv[0] == "claude"
    argv = [str(client_bin("claude")), *argv[1:], "-p", "hello from the README", "--output-format", "json"]
    run = run_in_netns(tmp_path, models=demo_models(), client=argv, client_env=env, upstream=None)
    result = claude_code_result(run)
    assert result["is_error"] is False, run.describe()
    assert result["result"].startswith("mock reply: "), run.describe()
    assert result["result"].endswith("hello from the README"), run.describe()


def test_claude_code_recipe_interactive(tmp_path: Path) -> None:
    """An interactive session on a pseudo-terminal, with the README's ``~/.claude.json`` and nothing else:
    no onboarding, no API key question; the typed line gets the demo route's answer."""
    recipe = readme_recipe("Claude Code")
    env, argv = recipe.shell()
    claude_json = orjson.loads(recipe.block("json"))
    approved = claude_json["customApiKeyResponses"]["approved"]
    assert approved == [env["ANTHROPIC_API_KEY"][-20:]], "README: ~/.claude.json must approve the exported key"
    driver = [
        sys.executable,
        str(E2E / "pty_drive.py"),
        "--transcript",
        str(tmp_path / "screen.raw"),
        "--answer",
        "Yes, I trust this folder=\\r",  # the README: Yes is preselected
        "--ready",
        "? for shortcuts",
        "--type",
        "hello from a terminal",
        "--expect",
        "mock reply:",
        "--timeout",
        "60",
        "--",
        str(client_bin("claude")),
        *argv[1:],
    ]
    run = run_in_netns(
        tmp_path,
        models=demo_models(),
        client=driver,
        client_env={**env, "TERM": "xterm-256color"},
        upstream=None,
        home_files={".claude.json": recipe.block("json")},
    )
    screen = (tmp_path / "screen.raw").read_bytes()
    assert run.rc == 0, run.describe()
    assert "Doyouwanttousethis" not in screen_text(screen), run.describe()
    posts = [line for line in run.proxy_log.splitlines() if "llm_proxy.access: POST /claude claude-demo" in line]
    assert posts and all(" 200 " in line for line in posts), run.describe()


def test_codex_recipe(tmp_path: Path) -> None:
    """The README's ``config.toml`` verbatim, its ``export`` and its command: Codex prints the demo's answer."""
    recipe = readme_recipe("Codex CLI")
    env, argv = recipe.shell()
    assert argv[:2] == ["codex", "exec"]
    last = tmp_path / "last.txt"
    argv = [str(client_bin("codex")), "exec", "--output-last-message", str(last), *argv[2:]]
    run = run_in_netns(
        tmp_path,
        models=demo_models(),
        client=argv,
        client_env=env,
        upstream=None,
        home_files={".codex/config.toml": recipe.block("toml")},
    )
    assert run.rc == 0, run.describe()
    assert last.read_text().strip() == "mock reply: hello", run.describe()
    assert "POST /codex gpt-test -> mock-claude 200" in run.proxy_log, run.describe()


def test_gemini_cli_recipe(tmp_path: Path) -> None:
    """The README's settings file, variables and command, plus ``--skip-trust -p``: the demo route's answer."""
    recipe = readme_recipe("Gemini CLI")
    env, argv = recipe.shell()
    assert argv[0] == "gemini"
    argv = [str(client_bin("gemini")), *argv[1:], "--skip-trust", "-o", "json", "-p", "hello from the README"]
    run = run_in_netns(
        tmp_path,
        models=demo_models(),
        client=argv,
        client_env=env,
        upstream=None,
        home_files={".gemini/settings.json": recipe.block("json")},
    )
    assert run.rc == 0, run.describe()
    result = orjson.loads(run.stdout[run.stdout.index("{") :])
    answer = result["response"]  # the mock echoes the turn: the CLI's session context, then the prompt
    assert answer.startswith("mock reply: ") and answer.endswith("hello from the README"), run.describe()
    assert "POST /gemini gemini-2.5-flash -> mock-claude 200" in run.proxy_log, run.describe()


def test_recipes_are_found_in_the_readme() -> None:
    """The extraction itself: what the README prints for each client, as the tests above read it."""
    env, argv = readme_recipe("Claude Code").shell()
    assert env == {"ANTHROPIC_BASE_URL": f"http://localhost:{PROXY_PORT}/claude", "ANTHROPIC_API_KEY": "dummy"}
    assert argv == ["claude", "--model", "claude-demo"]
    codex = readme_recipe("Codex CLI")
    env, argv = codex.shell()
    assert env == {"OPENAI_API_KEY": "dummy"}
    assert argv == ["codex", "exec", "--skip-git-repo-check", "hello"]
    toml = codex.block("toml")
    assert 'name = "llm-proxy"' in toml and f'base_url = "http://localhost:{PROXY_PORT}/codex/v1"' in toml
    env, argv = readme_recipe("Gemini CLI").shell()
    assert env == {"GOOGLE_GEMINI_BASE_URL": f"http://localhost:{PROXY_PORT}/gemini", "GEMINI_API_KEY": "dummy"}
    assert argv == ["gemini", "-m", "gemini-2.5-flash"]
    served = {(m["frontend_base_url"], m["frontend_model_name"]) for m in demo_models()}
    assert ("/claude", "claude-demo") in served and ("/codex", "gpt-test") in served
    assert ("/gemini", "gemini-2.5-flash") in served
