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

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast, runtime_checkable

from llm_proxy.dialects.base import DialectSpec

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


# -- helpers for drivers and the matrix (additions; the names above are the interface) ---------------------------

STOPS: dict[str, str] = {
    # Claude and Bedrock (Anthropic Messages)
    "end_turn": "end_turn",
    "stop_sequence": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    # OpenAI Chat
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "length": "max_tokens",
    # OpenAI Responses (``incomplete_details.reason``)
    "max_output_tokens": "max_tokens",
}
"""Vendor stop reasons to the normalised three. A reason not listed is kept as it came, so a test fails naming it."""


def normal_stop(reason: str | None) -> str:
    """``reason`` normalised by ``STOPS`` (None: ``"none"``, which no check accepts)."""
    if reason is None:
        return "none"
    return STOPS.get(reason, reason)


def parse_arguments(text: str) -> dict[str, Any]:
    """A tool call's JSON arguments as the client received them (a non-object fails loudly)."""
    value = json.loads(text) if text else {}
    if not isinstance(value, dict):
        raise AssertionError(f"tool arguments are not a JSON object: {text!r}")
    return value


C = TypeVar("C")


class Clients(Generic[C]):
    """SDK clients made once per base URL and reused, so the matrix pays for connections and setup only once.

    A driver holds one and exposes ``close``; the matrix closes every driver when its module ends.
    """

    def __init__(self, make: Callable[[str], C], close: Callable[[C], None]) -> None:
        self._make = make
        self._close = close
        self._made: dict[str, C] = {}

    def get(self, base_url: str) -> C:
        client = self._made.get(base_url)
        if client is None:
            client = self._made[base_url] = self._make(base_url)
        return client

    def close(self) -> None:
        while self._made:
            self._close(self._made.popitem()[1])


@runtime_checkable
class SupportsClose(Protocol):
    """A driver that keeps clients open between calls; closed once the matrix is done."""

    def close(self) -> None: ...


class MissingDriver(LookupError):
    """A registered dialect has no driver module in ``tests/pairs``."""


def driver_module(spec: DialectSpec) -> str:
    """The module that must hold the driver of ``spec``'s dialect: ``tests.pairs.`` + the codec package's name."""
    return f"{__name__}.{spec.module.rsplit('.', 1)[-1]}"


def load_driver(spec: DialectSpec) -> Driver:
    """The ``DRIVER`` of ``spec``'s dialect; ``MissingDriver`` saying what to add when there is none."""
    module_name = driver_module(spec)
    path = f"tests/pairs/{module_name.rsplit('.', 1)[-1]}.py"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise MissingDriver(
            f"dialect {spec.name!r} is registered but has no client driver: add {path} holding DRIVER "
            "(see tests/pairs/__init__.py for the interface)"
        ) from None
    driver = getattr(module, "DRIVER", None)
    if driver is None:
        raise MissingDriver(f"{path} (dialect {spec.name!r}) holds no DRIVER")
    return cast(Driver, driver)
