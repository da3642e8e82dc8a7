"""Client drivers for the pair matrix (``tests/test_pairs.py``): one module per client dialect.

Each module is named after its dialect's package (``tests/pairs/openai_chat.py`` for ``openai-chat``: the last
part of ``DialectSpec.module``) and holds ``DRIVER``, an object with the ``Driver`` methods. A driver speaks to
the proxy the way a real client of its dialect does — with that dialect's official SDK where one is installed
(anthropic, openai, boto3, google-genai) — and reports what the client saw as an ``Outcome``.

The matrix runs every driver against a route per upstream dialect; the upstream is the mock
(``llm_proxy.upstream.mock``), which echoes the last user message, calls a tool when the prompt holds
``[[mock:tool NAME {json}]]``, and quotes the first tool result when the last user turn carries results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

TOOL_NAME = "get_weather"
TOOL_DESCRIPTION = "The weather in a city."
TOOL_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
"""The one tool a driver declares when asked to (``tool=True``), as JSON Schema."""


@dataclass(frozen=True, slots=True)
class Call:
    """A tool call as the client saw it."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a client saw of one answer."""

    text: str
    """All text parts joined (streamed: all deltas joined)."""
    stop: str
    """The stop reason, normalised: ``end_turn``, ``tool_use`` or ``max_tokens``."""
    input_tokens: int
    """Input tokens as the client was told (cached ones included)."""
    output_tokens: int
    calls: tuple[Call, ...] = field(default=())


class Driver(Protocol):
    def ask(self, base_url: str, model: str, prompt: str, *, stream: bool, tool: bool) -> Outcome:
        """One user turn of ``prompt`` to ``model`` at ``base_url`` (the proxy's URL and the route prefix, no
        trailing slash; the driver adds its dialect's path). ``tool``: declare the tool ``TOOL_NAME``."""
        ...

    def answer_tool(
        self, base_url: str, model: str, prompt: str, first: Outcome, result: str, *, stream: bool
    ) -> Outcome:
        """The second turn of a tool round trip: the user's ``prompt``, the assistant turn ``first`` (its
        calls), and ``result`` as the result of ``first.calls[0]``; the tool stays declared."""
        ...
