"""The code is ruff-clean, ruff-formatted and mypy --strict clean: checked as part of the test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "ruff", "check", "src", "tests", "bench"],
        [sys.executable, "-m", "ruff", "format", "--check", "src", "tests", "bench"],
        [sys.executable, "-m", "mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict"],
)
def test_tool_is_clean(command: list[str]) -> None:
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


# Strings that equal a dialect's name but mean something else: (file below src/llm_proxy, the string, why).
_NOT_DIALECT_NAMES = {("upstream/sigv4.py", "bedrock")}  # AWS's SigV4 service name for Bedrock Runtime


def test_no_dialect_name_outside_the_dialects_package() -> None:
    """A dialect is one package plus one registry entry: no other module names one (the interface has a method)."""
    import ast

    from llm_proxy.dialects import names

    root = REPO / "src" / "llm_proxy"
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith("dialects/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and node.value in names():
                if (relative, node.value) not in _NOT_DIALECT_NAMES:
                    found.append(f"{relative}:{node.lineno}: {node.value!r}")
    assert found == []
