"""The pair matrix's gemini driver (``tests/pairs/gemini.py``) against a proxy route to each upstream dialect."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_proxy.dialects import names
from tests.pairs import TOOL_NAME
from tests.pairs.gemini import DRIVER
from tests.servers import ServerThread, make_config, running_proxy

UPSTREAMS = list(names())


@pytest.fixture(scope="module")
def proxy() -> Iterator[ServerThread]:
    routes = [
        {
            "frontend_model_name": "gemini-pair",
            "frontend_base_url": f"/{back}",
            "frontend_dialect": "gemini",
            "backend_model_name": "upstream-model",
            "backend_base_url": "mock://",
            "backend_dialect": back,
        }
        for back in UPSTREAMS
    ]
    with running_proxy(make_config(routes)) as server:
        yield server


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("back", UPSTREAMS)
def test_ask_and_answer_tool(proxy: ServerThread, back: str, stream: bool) -> None:
    base = f"{proxy.url}/{back}"
    plain = DRIVER.ask(base, "gemini-pair", "hello pair", stream=stream, tool=False)
    assert plain.text == "mock reply: hello pair" and plain.stop == "end_turn"
    assert plain.input_tokens > 0 and plain.output_tokens > 0
    prompt = f'[[mock:tool {TOOL_NAME} {{"city": "Oslo"}}]]'
    first = DRIVER.ask(base, "gemini-pair", prompt, stream=stream, tool=True)
    assert first.stop == "tool_use" and [(c.name, c.arguments) for c in first.calls] == [(TOOL_NAME, {"city": "Oslo"})]
    second = DRIVER.answer_tool(base, "gemini-pair", prompt, first, "rainy", stream=stream)
    assert second.text == "The tool returned: rainy" and second.stop == "end_turn"
    limited = DRIVER.ask(base, "gemini-pair", "[[mock:length]] long", stream=stream, tool=False)
    assert limited.stop == "max_tokens"
