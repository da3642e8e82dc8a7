"""The pair matrix: every client dialect against every upstream dialect, with real SDK clients.

One proxy holds one route per directed pair (``/p/<client>/<upstream>``, built from the dialect registry) in
front of one mock upstream over HTTP; upstreams whose spec says ``sigv4`` are reached with SigV4, which the mock
verifies. Each client dialect is played by its driver (``tests/pairs/<package>.py``, see ``tests/pairs``), so a
new dialect joins the matrix, as client and as upstream, by its registry entry plus one driver module; a
registered dialect without a driver fails here by name.

Per pair: plain text (exact echo, end_turn, the mock's output token count), the same streamed, a tool round trip
(one call, then the mock's quote of the result) streamed and not, and the max_tokens stop streamed and not.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import tests.pairs
from llm_proxy.app.serve import MockApp
from llm_proxy.dialects import get_spec, names, specs
from llm_proxy.dialects.base import DialectSpec
from llm_proxy.upstream.mock import MockOptions, MockUpstream
from tests.aws_env import isolate_aws_env
from tests.pairs import TOOL_NAME, Driver, MissingDriver, Outcome, SupportsClose, driver_module, load_driver
from tests.servers import ServerThread, make_config, running_proxy

MODEL = "pair-model"
UPSTREAM_MODEL = "pair-upstream-model"
AWS = {"aws_region": "us-east-1", "aws_access_key_id": "AKIDPAIRROUTE", "aws_secret_access_key": "pair/route+secret"}
"""The route's AWS keys toward SigV4 upstreams; the mock holds the same secret and checks every signature."""

PROMPT = "hello from the pair matrix"
TOOL_PROMPT = 'what is the weather? [[mock:tool get_weather {"city": "Paris"}]]'
TOOL_RESULT = "sunny, 21 C"
LENGTH_PROMPT = "cut me short [[mock:length]]"

PAIRS = [(client, upstream) for client in names() for upstream in names()]
IDS = [f"{client}->{upstream}" for client, upstream in PAIRS]


def echo(prompt: str) -> str:
    """The mock's reply to a user turn holding ``prompt``."""
    return f"mock reply: {prompt}"


def quote(result: str) -> str:
    """The mock's reply to a user turn carrying a tool result."""
    return f"The tool returned: {result}"


def mock_output_tokens(text: str) -> int:
    """Output tokens the mock reports for a text-only reply (``llm_proxy.upstream.mock._usage``)."""
    return len(text) // 4 + 1


def route(client: DialectSpec, upstream: DialectSpec, mock_url: str) -> dict[str, Any]:
    return {
        "frontend_model_name": MODEL,
        "frontend_base_url": prefix(client.name, upstream.name),
        "frontend_dialect": client.name,
        "backend_model_name": UPSTREAM_MODEL,
        "backend_base_url": mock_url,
        "backend_dialect": upstream.name,
        **(AWS if upstream.sigv4 else {}),
    }


def prefix(client: str, upstream: str) -> str:
    return f"/p/{client}/{upstream}"


@dataclass(frozen=True)
class Matrix:
    proxy: ServerThread
    drivers: dict[str, Driver]
    missing: dict[str, str]
    """Dialect -> why it has no driver."""

    def pair(self, client: str, upstream: str) -> tuple[Driver, str]:
        """The client's driver and the base URL of the pair's route."""
        if client in self.missing:
            pytest.fail(self.missing[client], pytrace=False)
        return self.drivers[client], self.proxy.url + prefix(client, upstream)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    drivers: dict[str, Driver] = {}
    missing: dict[str, str] = {}
    for spec in specs():
        try:
            drivers[spec.name] = load_driver(spec)
        except MissingDriver as exc:
            missing[spec.name] = str(exc)
    with pytest.MonkeyPatch.context() as env:
        isolate_aws_env(env, tmp_path_factory.mktemp("home"))
        mock = MockUpstream(MockOptions(aws_secrets={AWS["aws_access_key_id"]: AWS["aws_secret_access_key"]}))
        with ServerThread(MockApp(mock)) as upstream:
            routes = [route(get_spec(c), get_spec(u), upstream.url) for c, u in PAIRS]
            with running_proxy(make_config(routes)) as proxy:
                try:
                    yield Matrix(proxy, drivers, missing)
                finally:
                    for driver in drivers.values():
                        if isinstance(driver, SupportsClose):
                            driver.close()


@pytest.mark.parametrize("dialect", names())
def test_driver(dialect: str) -> None:
    """Every registered dialect has a client driver (else each of its pairs fails too, with the same message)."""
    try:
        load_driver(get_spec(dialect))
    except MissingDriver as exc:
        pytest.fail(str(exc), pytrace=False)


def check_text(seen: Outcome, prompt: str) -> None:
    assert seen.text == echo(prompt)
    assert seen.stop == "end_turn"
    assert seen.calls == ()
    assert seen.input_tokens > 0


@pytest.mark.parametrize(("client", "upstream"), PAIRS, ids=IDS)
def test_text(matrix: Matrix, client: str, upstream: str) -> None:
    driver, base_url = matrix.pair(client, upstream)
    seen = driver.ask(base_url, MODEL, PROMPT, stream=False, tool=False)
    check_text(seen, PROMPT)
    assert seen.output_tokens == mock_output_tokens(echo(PROMPT))


@pytest.mark.parametrize(("client", "upstream"), PAIRS, ids=IDS)
def test_text_streamed(matrix: Matrix, client: str, upstream: str) -> None:
    driver, base_url = matrix.pair(client, upstream)
    seen = driver.ask(base_url, MODEL, PROMPT, stream=True, tool=False)
    check_text(seen, PROMPT)
    assert seen.output_tokens == mock_output_tokens(echo(PROMPT))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(("client", "upstream"), PAIRS, ids=IDS)
def test_tool_round_trip(matrix: Matrix, client: str, upstream: str, stream: bool) -> None:
    driver, base_url = matrix.pair(client, upstream)
    first = driver.ask(base_url, MODEL, TOOL_PROMPT, stream=stream, tool=True)
    assert [(call.name, call.arguments) for call in first.calls] == [(TOOL_NAME, {"city": "Paris"})]
    assert first.calls[0].id
    assert first.stop == "tool_use"
    second = driver.answer_tool(base_url, MODEL, TOOL_PROMPT, first, TOOL_RESULT, stream=stream)
    assert quote(TOOL_RESULT) in second.text
    assert second.stop == "end_turn"
    assert second.calls == ()
    assert second.output_tokens == mock_output_tokens(quote(TOOL_RESULT))


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize(("client", "upstream"), PAIRS, ids=IDS)
def test_max_tokens(matrix: Matrix, client: str, upstream: str, stream: bool) -> None:
    driver, base_url = matrix.pair(client, upstream)
    seen = driver.ask(base_url, MODEL, LENGTH_PROMPT, stream=stream, tool=False)
    assert seen.stop == "max_tokens"
    assert seen.text == echo(LENGTH_PROMPT)
    assert seen.output_tokens == mock_output_tokens(echo(LENGTH_PROMPT))


def test_every_driver_module_is_a_registered_dialect() -> None:
    """A driver module named after no dialect (a typo, a renamed package) would silently never run."""
    expected = {driver_module(spec).rsplit(".", 1)[-1] for spec in specs()}
    found = {m.name for m in pkgutil.iter_modules(tests.pairs.__path__) if not m.name.startswith("_")}
    assert found - expected == set()
