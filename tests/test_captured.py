"""The captured client requests the suite replays are all there, inside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import CAPTURED, REQUESTS, MissingFixture, load_request, request_names

REPO = Path(__file__).resolve().parents[1]


def test_every_capture_is_present_and_inside_the_repository() -> None:
    assert REQUESTS.is_relative_to(REPO)
    assert request_names() == sorted(CAPTURED)
    for name in CAPTURED:
        request = load_request(name)
        assert sorted(request) == ["body", "headers", "method", "path"]
        assert request["method"] == "POST"
    assert request_names("claude_code") == ["claude_code_first_turn", "claude_code_tool_result_turn"]
    assert request_names("codex") == ["codex_first_turn", "codex_function_call_output_turn"]


def test_a_missing_capture_is_an_error() -> None:
    with pytest.raises(MissingFixture, match=r"no captured request named gemini\*\.json in "):
        request_names("gemini")
    with pytest.raises(MissingFixture, match="captured request 'gemini_first_turn' not found: "):
        load_request("gemini_first_turn")
