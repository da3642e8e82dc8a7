"""Access to the captured client requests the test suite replays.

Real requests recorded from Claude Code 2.1.197 and Codex 0.169.0 (``{method, path, headers, body}``,
with dummy keys) live in ``tests/captured/requests``, inside the repository, so a fresh clone has
everything its tests read. A missing capture is an error, never an empty parametrisation: a golden
test that silently collects zero cases would hide the breakage it exists to catch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

REQUESTS = Path(__file__).resolve().parent / "captured" / "requests"
CAPTURED = (
    "claude_code_first_turn",
    "claude_code_tool_result_turn",
    "codex_first_turn",
    "codex_function_call_output_turn",
)
"""Every capture the suite relies on; ``tests/test_captured.py`` checks that exactly these are present."""


class MissingFixture(LookupError):
    """A captured request the tests need is not in ``tests/captured/requests``."""


def load_request(name: str) -> dict[str, Any]:
    """One captured request ``{method, path, headers, body}`` by file stem (e.g. ``claude_code_first_turn``)."""
    path = REQUESTS / f"{name}.json"
    if not path.is_file():
        raise MissingFixture(f"captured request {name!r} not found: {path} is missing")
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, dict):
        raise TypeError(f"fixture {name} is not a JSON object")
    return data


def request_names(prefix: str = "") -> list[str]:
    """Stems of the captured requests whose name starts with ``prefix``, sorted; never empty."""
    names = sorted(p.stem for p in REQUESTS.glob(f"{prefix}*.json"))
    if not names:
        raise MissingFixture(f"no captured request named {prefix}*.json in {REQUESTS}")
    return names
