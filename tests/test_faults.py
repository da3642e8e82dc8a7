"""Upstream faults, end to end: what each client dialect gets when the upstream cannot be reached, stalls,
cuts the connection or fails, in proxy mode and in translation mode, streamed and not.

The upstreams are real sockets on loopback (``tests.faulty_upstream``); the proxy is a real server with
short timeouts so that the stalls cost a fraction of a second. What the README promises:

- connect failures (refused, connect timeout) and a connection closed before the first byte: 502 in the
  client's dialect; a read timeout before the first byte: 504 (Bedrock clients, InvokeModel and Converse: 503
  ServiceUnavailableException and 408 ModelTimeoutException, docs/dialects/bedrock.md; Gemini clients: 503
  UNAVAILABLE and 504 DEADLINE_EXCEEDED, docs/translation.md). A non-streamed
  translation reads the whole upstream body before it writes a byte, so a cut or a stall in that body is
  still "before the first byte" for its client: 502 and 504;
- an upstream 500/503/529: relayed as it is in proxy mode, the equivalent error in translation mode;
- a failure after the response started: in proxy mode the client connection is aborted with no terminating
  chunk (or short of its Content-Length), so every HTTP client raises; in translation mode the dialect's
  in-stream error event ends the stream (Gemini: an ``{"error": …}`` chunk and no ``finishReason``; Converse:
  an exception frame and no ``messageStop``). So does an upstream stream that stops short of its terminal event
  inside a well-framed HTTP answer (``truncated``): only the upstream dialect's stream decoder can tell.

Every registered dialect is a client (``CLIENTS``), translated to the upstream dialect ``BACKEND`` names, so the
faulty upstream speaks each dialect's wire too (Gemini and Converse serve each other). Each test sends every
combination of client dialect and streaming at once, so a timeout is paid once per test, and compares what came
back to the expected table as a whole.
"""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest

from llm_proxy.dialects import get_spec, names
from llm_proxy.framing.eventstream import EventStreamDecoder, chunk_event_json, header_text
from tests.error_shapes import error_shape_problem
from tests.faulty_upstream import (
    PARTIAL_TEXT,
    FaultyUpstream,
    closed_port,
    error_body,
    error_message,
    never_accepting,
)
from tests.inprocess import Answer
from tests.servers import ServerThread, make_config, running_proxy, sdk_anthropic, sdk_openai

CONNECT_TIMEOUT = 0.5
READ_TIMEOUT = 1.0
"""Short, so a stall costs little; not shorter, since twelve requests at once on two busy cores must not time out
where only the stalling upstreams should (0.3 / 0.5 s did, under the full suite)."""
MODEL = "fault-model"
BEDROCK_MODEL = "fault.bedrock-v1:0"
CLIENTS = names()
"""Every registered dialect, as a client."""
BACKEND = {
    "claude": "openai-chat",
    "openai-chat": "claude",
    "openai-responses": "claude",
    "bedrock": "openai-chat",
    "bedrock-converse": "gemini",
    "gemini": "bedrock-converse",
}
"""The upstream dialect each client dialect is translated to (a dialect missing here fails with KeyError)."""
FRONTEND_MODEL = {
    "claude": MODEL,
    "openai-chat": MODEL,
    "openai-responses": MODEL,
    "bedrock": BEDROCK_MODEL,
    "bedrock-converse": BEDROCK_MODEL,
    "gemini": MODEL,
}
MODES = ("proxy", "translation")


@dataclass(frozen=True, slots=True)
class Result:
    status: int
    headers: dict[str, str]
    body: bytes
    broken: str | None
    """Why reading the response failed (the connection ended before the response did), or None."""


# ---------------------------------------------------------------------------------------------
# Upstreams, config and proxy: one set for the module
# ---------------------------------------------------------------------------------------------


def _routes(fault: str, url: str) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = [
        {
            "frontend_model_name": name,
            "frontend_base_url": f"/{fault}/proxy",
            "backend_model_name": backend,
            "backend_base_url": url,
            "backend_api_key": "upstream-key",  # a Bedrock API key: Bedrock paths are then not SigV4-signed
        }
        for name, backend in ((MODEL, "upstream-model"), (BEDROCK_MODEL, "upstream.bedrock-v1:0"))
    ]
    for client in CLIENTS:
        route = {
            "frontend_model_name": FRONTEND_MODEL[client],
            "frontend_base_url": f"/{fault}/{client}",
            "frontend_dialect": client,
            "backend_model_name": "upstream-model",
            "backend_base_url": url,
            "backend_dialect": BACKEND[client],
        }
        if get_spec(BACKEND[client]).sigv4:  # a Bedrock API key, so no AWS credentials are looked for
            route.update(backend_api_key="upstream-key", aws_region="us-east-1")
        routes.append(route)
    return routes


@pytest.fixture(scope="module")
def proxy() -> Iterator[ServerThread]:
    with ExitStack() as stack:
        urls = {
            "refused": f"http://127.0.0.1:{closed_port()}",
            "never_accepting": f"http://127.0.0.1:{stack.enter_context(never_accepting())}",
        }
        for fault in ("silent", "cut_before", "cut_mid", "silent_mid", "truncated"):
            urls[fault] = stack.enter_context(FaultyUpstream(fault)).url
        for status in (500, 503, 529):
            urls[str(status)] = stack.enter_context(FaultyUpstream("status", status=status)).url
        models = [route for fault, url in urls.items() for route in _routes(fault, url)]
        server = {"connect_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT}
        yield stack.enter_context(running_proxy(make_config(models, server)))


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def request_for(fault: str, mode: str, client: str, stream: bool) -> tuple[str, bytes]:
    """(path, body) of a minimal valid request of ``client``'s dialect."""
    prefix = f"/{fault}/{'proxy' if mode == 'proxy' else client}"
    body: dict[str, Any]
    messages = [{"role": "user", "content": "hi"}]
    if client == "bedrock-converse":
        op = "converse-stream" if stream else "converse"
        body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}], "inferenceConfig": {"maxTokens": 50}}
        return f"{prefix}/model/{quote(BEDROCK_MODEL, safe='')}/{op}", orjson.dumps(body)
    if client == "gemini":
        op = "streamGenerateContent?alt=sse" if stream else "generateContent"
        body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
        return f"{prefix}/v1beta/models/{MODEL}:{op}", orjson.dumps(body)
    if client == "bedrock":
        op = "invoke-with-response-stream" if stream else "invoke"
        body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": messages}
        return f"{prefix}/model/{quote(BEDROCK_MODEL, safe='')}/{op}", orjson.dumps(body)
    if client == "claude":
        body = {"model": MODEL, "max_tokens": 50, "messages": messages, "stream": stream}
        return f"{prefix}/v1/messages", orjson.dumps(body)
    if client == "openai-chat":
        return f"{prefix}/v1/chat/completions", orjson.dumps({"model": MODEL, "messages": messages, "stream": stream})
    return f"{prefix}/v1/responses", orjson.dumps({"model": MODEL, "input": "hi", "stream": stream})


def send(port: int, path: str, body: bytes) -> Result:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body, {"content-type": "application/json", "anthropic-version": "2023-06-01"})
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        try:
            return Result(response.status, headers, response.read(), None)
        except http.client.IncompleteRead as exc:
            return Result(response.status, headers, exc.partial, "IncompleteRead")
        except (ConnectionError, http.client.HTTPException) as exc:
            return Result(response.status, headers, b"", type(exc).__name__)
    finally:
        conn.close()


Combo = tuple[str, bool]
"""(client dialect, streamed)."""
COMBOS: list[Combo] = [(client, stream) for client in CLIENTS for stream in (False, True)]


def send_all(proxy: ServerThread, fault: str, mode: str, combos: list[Combo] = COMBOS) -> dict[Combo, Result]:
    """Every combination at once (a stall is waited for once, not eight times)."""
    with ThreadPoolExecutor(len(combos)) as pool:
        futures = {combo: pool.submit(send, proxy.port, *request_for(fault, mode, *combo)) for combo in combos}
        return {combo: future.result() for combo, future in futures.items()}


# ---------------------------------------------------------------------------------------------
# Reading answers
# ---------------------------------------------------------------------------------------------


def error_of(client: str, result: Result) -> tuple[int, str, str]:
    """(status, error type, message) of an error answer, after checking it has the client dialect's shape."""
    problem = error_shape_problem(client, Answer(result.status, result.headers, result.body, result.broken is None))
    if problem is not None:
        return result.status, f"malformed: {problem}", result.body.decode("utf-8", "replace")[:200]
    doc = orjson.loads(result.body)
    if client in ("bedrock", "bedrock-converse"):
        return result.status, result.headers["x-amzn-errortype"], doc["message"]
    if client == "gemini":
        return result.status, doc["error"]["status"], doc["error"]["message"]
    return result.status, doc["error"]["type"], doc["error"]["message"]


def expected(table: dict[str, tuple[int, str]], combos: list[Combo] = COMBOS) -> dict[Combo, tuple[int, str]]:
    return {(client, stream): table[client] for client, stream in combos}


UNREACHABLE = {
    "claude": (502, "api_error"),
    "openai-chat": (502, "server_error"),
    "openai-responses": (502, "server_error"),
    "bedrock": (503, "ServiceUnavailableException"),
    "bedrock-converse": (503, "ServiceUnavailableException"),
    "gemini": (503, "UNAVAILABLE"),
}
TIMEOUT = {
    "claude": (504, "timeout_error"),
    "openai-chat": (504, "server_error"),
    "openai-responses": (504, "server_error"),
    "bedrock": (408, "ModelTimeoutException"),
    "bedrock-converse": (408, "ModelTimeoutException"),
    "gemini": (504, "DEADLINE_EXCEEDED"),
}


# ---------------------------------------------------------------------------------------------
# Before the response starts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fault", "table"),
    [("refused", UNREACHABLE), ("never_accepting", UNREACHABLE), ("cut_before", UNREACHABLE), ("silent", TIMEOUT)],
    ids=["refused", "never_accepting", "cut_before", "silent"],
)
def test_upstream_fails_before_answering(
    proxy: ServerThread, fault: str, table: dict[str, tuple[int, str]], mode: str
) -> None:
    results = send_all(proxy, fault, mode)
    got = {combo: error_of(combo[0], result)[:2] for combo, result in results.items()}
    assert got == expected(table)
    assert all(result.broken is None for result in results.values())


@pytest.mark.parametrize(("fault", "table"), [("cut_mid", UNREACHABLE), ("silent_mid", TIMEOUT)], ids=["cut", "silent"])
def test_translated_answer_cut_before_the_client_saw_a_byte(
    proxy: ServerThread, fault: str, table: dict[str, tuple[int, str]]
) -> None:
    """A non-streamed translation reads the whole upstream body first: a cut there is still before the start."""
    combos = [(client, False) for client in CLIENTS]
    results = send_all(proxy, fault, "translation", combos)
    assert {combo: error_of(combo[0], result)[:2] for combo, result in results.items()} == expected(table, combos)


# ---------------------------------------------------------------------------------------------
# Upstream error statuses
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 529])
def test_upstream_error_status_is_relayed_in_proxy_mode(proxy: ServerThread, status: int) -> None:
    results = send_all(proxy, str(status), "proxy")
    for (client, stream), result in results.items():
        path, _ = request_for(str(status), "proxy", client, stream)  # error_body reads the dialect off the path
        assert (result.status, result.body, result.broken) == (status, error_body(path, status), None)


OVERLOADED = {
    "claude": (529, "overloaded_error"),
    "openai-chat": (503, "server_error"),
    "openai-responses": (503, "server_error"),
    "bedrock": (503, "ServiceUnavailableException"),
    "bedrock-converse": (503, "ServiceUnavailableException"),
    "gemini": (503, "UNAVAILABLE"),
}
INTERNAL = {
    "claude": (500, "api_error"),
    "openai-chat": (500, "server_error"),
    "openai-responses": (500, "server_error"),
    "bedrock": (500, "InternalServerException"),
    "bedrock-converse": (500, "InternalServerException"),
    "gemini": (500, "INTERNAL"),
}


@pytest.mark.parametrize(
    ("status", "table"), [(500, INTERNAL), (503, OVERLOADED), (529, OVERLOADED)], ids=["500", "503", "529"]
)
def test_upstream_error_status_is_translated(
    proxy: ServerThread, status: int, table: dict[str, tuple[int, str]]
) -> None:
    results = send_all(proxy, str(status), "translation")
    got = {combo: error_of(combo[0], result) for combo, result in results.items()}
    want = {combo: (*kind, error_message(status)) for combo, kind in expected(table).items()}
    assert got == want


# ---------------------------------------------------------------------------------------------
# After the response started: translation mode ends the stream with the dialect's error event
# ---------------------------------------------------------------------------------------------


def sse_events(body: bytes) -> list[tuple[str | None, Any]]:
    events: list[tuple[str | None, Any]] = []
    for block in body.split(b"\n\n"):
        name: str | None = None
        data: Any = None
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: "):
                data = line[6:].decode() if line[6:] == b"[DONE]" else orjson.loads(line[6:])
        if name is not None or data is not None:
            events.append((name, data))
    return events


def stream_outcome(client: str, body: bytes) -> tuple[bool, str]:
    """(whether the partial text reached the client, the error that ends the stream)."""
    if client == "bedrock-converse":
        frames = EventStreamDecoder().feed(body)
        deltas = [orjson.loads(f.payload) for f in frames if f.headers.get(":event-type") == "contentBlockDelta"]
        text = any(d["delta"].get("text") == PARTIAL_TEXT for d in deltas)
        if any(f.headers.get(":event-type") == "messageStop" for f in frames):
            return text, "messageStop: the stream looks complete"
        last = frames[-1].headers
        return text, f"{header_text(last.get(':message-type'))} {header_text(last.get(':exception-type'))}"
    if client == "bedrock":
        frames = EventStreamDecoder().feed(body)
        inner = b"".join(chunk_event_json(f) for f in frames if f.headers.get(":event-type") == "chunk")
        return PARTIAL_TEXT.encode() in inner, str(frames[-1].headers.get(":exception-type"))
    events = sse_events(body)
    text = PARTIAL_TEXT in body.decode()
    name, data = events[-1]
    if client == "claude":
        return text, f"{name} {data['error']['type']}"
    if client == "openai-chat":
        return text, f"error {data['error']['type']}"
    if client == "gemini":  # an error object, and no finishReason anywhere
        if any("finishReason" in candidate for _, chunk in events for candidate in chunk.get("candidates", ())):
            return text, "finishReason: the stream looks complete"
        if "error" not in data:
            return text, f"no error chunk at the end: {data}"
        return text, f"error {data['error']['code']} {data['error']['status']}"
    return text, f"{name} {data['response']['error']['code']}"


@pytest.mark.parametrize(
    ("fault", "ends"),
    [
        (
            "cut_mid",
            {
                "claude": "error api_error",
                "openai-chat": "error server_error",
                "openai-responses": "response.failed server_error",
                "bedrock": "modelStreamErrorException",
                "bedrock-converse": "exception modelStreamErrorException",
                "gemini": "error 500 INTERNAL",
            },
        ),
        (
            "silent_mid",
            {
                "claude": "error timeout_error",
                "openai-chat": "error server_error",
                "openai-responses": "response.failed server_error",
                "bedrock": "modelTimeoutException",
                "bedrock-converse": "exception modelStreamErrorException",
                "gemini": "error 504 DEADLINE_EXCEEDED",
            },
        ),
    ],
    ids=["cut", "silent"],
)
def test_translated_stream_failure_ends_with_the_error_event(
    proxy: ServerThread, fault: str, ends: dict[str, str]
) -> None:
    combos = [(client, True) for client in CLIENTS]
    results = send_all(proxy, fault, "translation", combos)
    assert {combo: (r.status, r.broken) for combo, r in results.items()} == {combo: (200, None) for combo in combos}
    got = {client: stream_outcome(client, results[(client, True)].body) for client in CLIENTS}
    assert got == {client: (True, end) for client, end in ends.items()}


TRUNCATED_ENDS = {
    "claude": "error api_error",
    "openai-chat": "error server_error",
    "openai-responses": "response.failed server_error",
    "bedrock": "modelStreamErrorException",
    "bedrock-converse": "exception modelStreamErrorException",
    "gemini": "error 500 INTERNAL",
}


def test_translated_stream_that_ends_early_ends_with_the_error_event(proxy: ServerThread) -> None:
    """A well-framed HTTP answer whose stream stops before the dialect's terminal event: only the upstream
    dialect's stream decoder can tell, and it must end the client's stream with an error, never cleanly."""
    combos = [(client, True) for client in CLIENTS]
    results = send_all(proxy, "truncated", "translation", combos)
    assert {combo: (r.status, r.broken) for combo, r in results.items()} == {combo: (200, None) for combo in combos}
    got = {client: stream_outcome(client, results[(client, True)].body) for client in CLIENTS}
    assert got == {client: (True, end) for client, end in TRUNCATED_ENDS.items()}


# ---------------------------------------------------------------------------------------------
# After the response started: proxy mode aborts the client connection
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["cut_mid", "silent_mid"])
def test_proxy_mode_failure_after_start_aborts_the_connection(proxy: ServerThread, fault: str) -> None:
    """No terminating chunk (or a body shorter than its Content-Length): the raw client sees a broken response."""
    results = send_all(proxy, fault, "proxy")
    got = {combo: (result.status, result.broken) for combo, result in results.items()}
    assert got == {combo: (200, "IncompleteRead") for combo in COMBOS}
    assert all(result.body for result in results.values())  # what the upstream did send was forwarded


def _aiohttp_read(url: str, body: bytes) -> str:
    async def read() -> str:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.post(url, data=body, headers={"content-type": "application/json"}) as response:
                    try:
                        await response.read()
                    except aiohttp.ClientPayloadError as exc:
                        return type(exc).__name__
                    return f"complete: {response.status}"
            except aiohttp.ClientError as exc:  # the response did not start (as in ``_openai_stream``)
                return f"not started: {exc!r}"

    return asyncio.run(read())


def _openai_stream(base_url: str) -> str:
    client = sdk_openai(base_url=base_url, api_key="k", max_retries=0)
    try:
        stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True)
    except Exception as exc:  # the response did not start: reported as such, so the assertion shows every outcome
        return f"not started: {exc!r}"
    try:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    except Exception as exc:  # an APIError, or a transport error the SDK lets through from a stream as it is
        return type(exc).__name__
    return f"complete: {text}"


def _anthropic_stream(base_url: str) -> str:
    client = sdk_anthropic(base_url=base_url, api_key="k", max_retries=0)
    try:
        stream = client.messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    except Exception as exc:  # as above
        return f"not started: {exc!r}"
    try:
        kinds = [event.type for event in stream]
    except Exception as exc:  # as above
        return type(exc).__name__
    return f"complete: {kinds}"


@pytest.mark.parametrize("fault", ["cut_mid", "silent_mid"])
def test_proxy_mode_failure_after_start_makes_every_client_raise(proxy: ServerThread, fault: str) -> None:
    base = f"{proxy.url}/{fault}/proxy"
    path, body = request_for(fault, "proxy", "openai-chat", True)
    calls: dict[str, Callable[[], str]] = {
        "openai": lambda: _openai_stream(f"{base}/v1"),
        "anthropic": lambda: _anthropic_stream(base),
        "aiohttp": lambda: _aiohttp_read(proxy.url + path, body),
    }
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
        outcomes = {name: future.result() for name, future in futures.items()}
    # every client got the response's start, then an error: none saw an end, none saw an error instead of a start
    assert not any(outcome.startswith(("complete", "not started")) for outcome in outcomes.values()), outcomes
    assert outcomes["aiohttp"] == "ClientPayloadError"
