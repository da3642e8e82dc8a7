"""Access to the captured client requests shared by the test suite.

The fixtures live in ``shared/fixtures`` beside the repository checkout (CI clones the repo with
``shared/`` next to it), so tests find them relative to this file rather than the working directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

FIXTURES = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures"
REQUESTS = FIXTURES / "requests"


def load_request(name: str) -> dict[str, Any]:
    """One captured request ``{method, path, headers, body}`` by file stem (e.g. ``claude_code_first_turn``)."""
    data = orjson.loads((REQUESTS / f"{name}.json").read_bytes())
    if not isinstance(data, dict):
        raise TypeError(f"fixture {name} is not a JSON object")
    return data


def request_names(prefix: str = "") -> list[str]:
    """Stems of the captured requests whose name starts with ``prefix``, sorted."""
    return sorted(p.stem for p in REQUESTS.glob(f"{prefix}*.json"))
