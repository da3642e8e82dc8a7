"""Gemini CLI itself, driven through the proxy to claude and openai-chat upstreams (the embedded mock).

Each test runs ``gemini -p`` once, offline, in its own network namespace (see ``harness.py``). The prompt holds
a mock directive: the upstream calls the CLI's shell tool (``run_shell_command``) with ``echo e2e-marker``; the
CLI runs it (``--approval-mode yolo``) and sends its output back as a ``functionResponse``, which the proxy
translates into the upstream's tool result; the mock then answers by quoting that result. So the final answer
holds the marker only if the whole round trip worked: two streamed requests, each translated both ways.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.e2e.harness import UPSTREAM, gemini_cli

pytestmark = pytest.mark.e2e

MODEL = "gemini-2.5-flash"
PREFIX = "/gem"
PROMPT = 'Print the e2e marker. [[mock:tool run_shell_command {"command": "echo e2e-marker"}]]'


def route(backend_dialect: str) -> dict[str, object]:
    return {
        "frontend_model_name": "gemini-*",  # the CLI may also ask other Gemini models (checks, summaries)
        "frontend_base_url": PREFIX,
        "frontend_dialect": "gemini",
        "backend_model_name": "upstream-model",
        "backend_base_url": UPSTREAM,
        "backend_dialect": backend_dialect,
    }


@pytest.mark.parametrize("backend_dialect", ["claude", "openai-chat"])
def test_shell_tool_round_trip(tmp_path: Path, backend_dialect: str) -> None:
    run = gemini_cli(
        tmp_path, models=[route(backend_dialect)], prefix=PREFIX, model=MODEL, prompt=PROMPT, upstream=None
    )
    assert run.rc == 0, run.describe()
    result = orjson.loads(run.stdout[run.stdout.index("{") :])
    answer = result.get("response", "")
    assert answer.startswith("The tool returned:") and "e2e-marker" in answer, run.describe()
