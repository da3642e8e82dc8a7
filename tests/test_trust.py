"""Trust: no mixed-up conversations, no 500 on hostile bodies, no header injection, no key ever echoed.

Each test here reproduces one defect found by probing the proxy as an attacker and a failing upstream
would (issue "Trust"), with a real proxy server and real upstream fakes on loopback.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import anthropic
import boto3
import botocore.exceptions
import orjson
import pytest
from botocore.config import Config as BotoConfig

from llm_proxy.config import exposure_warning
from llm_proxy.dialects import names
from llm_proxy.jsonbody import MAX_DEPTH
from tests.aws_env import isolate_aws_env
from tests.error_shapes import error_shape_problem
from tests.inprocess import Answer
from tests.servers import (
    Recorded,
    RecordingUpstream,
    Reply,
    ServerThread,
    make_config,
    running_proxy,
    running_upstream,
    sdk_anthropic,
    sdk_openai,
)

ROUTE_KEY = "sk-live-route-key-7f3a9c0d1e2b4a68"
AWS_SECRET = "aws-secret-9f8e7d6c5b4a39281706"


def raw_post(
    port: int, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", path, body=body, headers={"content-type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


# -- 1. conversations: ids minted by the proxy, scoped to the route, never overwritten ---------------------


def _chat_answer_with_fixed_id(recorded: Recorded) -> bytes:
    """An OpenAI-compatible server that returns the same completion id every time (some do)."""
    last = json.loads(recorded.body)["messages"][-1]["content"]
    return orjson.dumps(
        {
            "id": "chatcmpl-constant",
            "object": "chat.completion",
            "created": 1,
            "model": "upstream-model",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": f"re: {last}"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
    )


def _chat_stream_with_fixed_id(recorded: Recorded) -> bytes:
    last = json.loads(recorded.body)["messages"][-1]["content"]
    chunks = [
        {
            "id": "chatcmpl-constant",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": f"re: {last}"}, "finish_reason": None}],
        },
        {
            "id": "chatcmpl-constant",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        },
    ]
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


@pytest.fixture
def fixed_id_upstream() -> Iterator[tuple[RecordingUpstream, ServerThread]]:
    async def handler(recorded: Recorded, reply: Reply) -> None:
        if json.loads(recorded.body).get("stream"):
            await reply.start(200, [("content-type", "text/event-stream")])
            await reply.chunk(_chat_stream_with_fixed_id(recorded), more=False)
        else:
            await reply.json(200, _chat_answer_with_fixed_id(recorded))

    fake = RecordingUpstream(handler)
    with running_upstream(fake) as server:
        yield fake, server


def _responses_route(upstream: ServerThread, prefix: str) -> dict[str, object]:
    return {
        "frontend_model_name": "client-model",
        "frontend_base_url": prefix,
        "frontend_dialect": "openai-responses",
        "backend_model_name": "upstream-model",
        "backend_base_url": upstream.url,
        "backend_dialect": "openai-chat",
    }


def _history(recorded: Recorded) -> list[Any]:
    return [m["content"] for m in json.loads(recorded.body)["messages"]]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_two_conversations_never_share_an_id_when_the_upstream_repeats_its_ids(
    fixed_id_upstream: tuple[RecordingUpstream, ServerThread], stream: bool
) -> None:
    fake, upstream = fixed_id_upstream
    with running_proxy(make_config([_responses_route(upstream, "/r")])) as proxy:
        oai = sdk_openai(base_url=proxy.url + "/r/v1", api_key="k")

        def ask(text: str, previous: str | None = None) -> str:
            if not stream:
                return str(oai.responses.create(model="client-model", input=text, previous_response_id=previous).id)
            events = list(
                oai.responses.create(model="client-model", input=text, previous_response_id=previous, stream=True)
            )
            completed = [e for e in events if e.type == "response.completed"]
            assert len(completed) == 1 and events[0].response.id == completed[0].response.id
            return str(completed[0].response.id)

        alice = ask("alice: my secret is 1")
        bob = ask("bob: my secret is 2")
        assert alice != bob
        for rid in (alice, bob):
            assert re.fullmatch(r"resp_[0-9a-f]{50}", rid), rid  # 200 random bits, nothing of "constant"
        ask("alice: what is my secret?", previous=alice)
        ask("bob: what is my secret?", previous=bob)

    assert [_history(r) for r in fake.requests[2:]] == [
        ["alice: my secret is 1", "re: alice: my secret is 1", "alice: what is my secret?"],
        ["bob: my secret is 2", "re: bob: my secret is 2", "bob: what is my secret?"],
    ]


def test_a_response_id_from_one_route_finds_nothing_on_another(
    fixed_id_upstream: tuple[RecordingUpstream, ServerThread],
) -> None:
    fake, upstream = fixed_id_upstream
    config = make_config([_responses_route(upstream, "/team-a"), _responses_route(upstream, "/team-b")])
    with running_proxy(config) as proxy:
        team_a = sdk_openai(base_url=proxy.url + "/team-a/v1", api_key="k")
        team_b = sdk_openai(base_url=proxy.url + "/team-b/v1", api_key="k")
        first = team_a.responses.create(model="client-model", input="team a private notes")
        status, _, body = raw_post(
            proxy.port,
            "/team-b/v1/responses",
            orjson.dumps({"model": "client-model", "input": "continue", "previous_response_id": first.id}),
        )
        assert status == 404
        assert json.loads(body)["error"]["code"] == "previous_response_not_found"
        # The id still works where it was made.
        team_a.responses.create(model="client-model", input="more", previous_response_id=first.id)
        assert team_b is not None
    assert len(fake.requests) == 2
    assert _history(fake.requests[1]) == ["team a private notes", "re: team a private notes", "more"]


# -- 2. deep nesting: a 400 in the client's dialect, one warning line, no traceback -------------------------


NEST = "__nested__"


def _deep_body(dialect: str, depth: int) -> bytes:
    # The nesting sits where real bodies have free-form JSON: a tool's input schema.
    # orjson itself cannot write such bodies: the nesting is spliced in as bytes.
    schema = {"type": "object", "properties": {"p": {"default": NEST}}}
    docs: dict[str, dict[str, Any]] = {
        "claude": {
            "model": "m",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "t", "input_schema": schema}],
        },
        "openai-chat": {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "t", "parameters": schema}}],
        },
        "openai-responses": {
            "model": "m",
            "input": "hi",
            "tools": [{"type": "function", "name": "t", "parameters": schema}],
        },
        "bedrock": {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"name": "t", "input_schema": schema}],
        },
        "bedrock-converse": {
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "toolConfig": {"tools": [{"toolSpec": {"name": "t", "inputSchema": {"json": schema}}}]},
        },
        "gemini": {
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "tools": [{"functionDeclarations": [{"name": "t", "parametersJsonSchema": schema}]}],
        },
    }
    doc = docs[dialect]  # a dialect without a body here fails loudly
    return orjson.dumps(doc).replace(b'"' + NEST.encode() + b'"', b"[" * depth + b'"x"' + b"]" * depth)


def _nesting(body: bytes) -> int:
    """How deeply a JSON text nests arrays and objects (brackets inside strings do not count)."""
    deepest = level = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            escaped, in_string = (False, True) if escaped else (byte == 0x5C, byte != 0x22)
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            level += 1
            deepest = max(deepest, level)
        elif byte in b"]}":
            level -= 1
    return deepest


def _at_depth(dialect: str, total: int) -> bytes:
    """A body of ``dialect`` whose whole nesting is exactly ``total`` levels."""
    outer = _nesting(_deep_body(dialect, 0))
    body = _deep_body(dialect, total - outer)
    assert _nesting(body) == total
    return body


ENDPOINTS = {
    "claude": "/v1/messages",
    "openai-chat": "/v1/chat/completions",
    "openai-responses": "/v1/responses",
    "bedrock": "/model/m/invoke",
    "bedrock-converse": "/model/m/converse",
    "gemini": "/v1beta/models/m:generateContent",
}


def test_every_registered_dialect_has_a_nesting_case() -> None:
    assert set(ENDPOINTS) == set(names())


def _error_message(dialect: str, status: int, headers: dict[str, str], body: bytes) -> str:
    """The error message, after checking that the body has the client dialect's error shape."""
    problem = error_shape_problem(dialect, Answer(status, headers, body, True))
    assert problem is None, (problem, body[:300])
    doc = json.loads(body)
    return str(doc["message"] if "x-amzn-errortype" in headers else doc["error"]["message"])


@pytest.mark.parametrize("mode", ["translation", "proxy-with-edits"])
@pytest.mark.parametrize("dialect", list(ENDPOINTS))
def test_excessive_nesting_is_a_400_in_the_clients_dialect(
    dialect: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    entry: dict[str, object] = {"frontend_model_name": "m", "frontend_base_url": "/p", "backend_base_url": "mock://"}
    if mode == "translation":
        entry.update(frontend_dialect=dialect, backend_dialect="claude" if dialect != "claude" else "openai-chat")
    else:
        entry.update(system_append="be brief", inject_progress=True)
    with running_proxy(make_config([entry])) as proxy:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            bodies = [
                (MAX_DEPTH, 200, _at_depth(dialect, MAX_DEPTH)),
                (MAX_DEPTH + 1, 400, _at_depth(dialect, MAX_DEPTH + 1)),
                (300, 400, _deep_body(dialect, 300)),
                (1000, 400, _deep_body(dialect, 1000)),
            ]
            for depth, expected, sent in bodies:
                status, headers, body = raw_post(proxy.port, "/p" + ENDPOINTS[dialect], sent)
                assert status == expected, (depth, body[:300])
                if expected == 400:
                    message = _error_message(dialect, status, headers, body)
                    assert message == f"the request body is nested deeper than {MAX_DEPTH} levels of arrays and objects"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [f"request refused: JSON nested deeper than {MAX_DEPTH} levels"] * 3
    assert not any(r.exc_info for r in caplog.records)


# -- 3. body values copied into headers ----------------------------------------------------------------------


@pytest.mark.parametrize("beta", ["bad\r\nx-injected: 1", "a\nb", "two words", "a,b"])
def test_a_bedrock_beta_with_line_breaks_is_a_400_not_an_injected_header(
    recording: tuple[RecordingUpstream, ServerThread], beta: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    isolate_aws_env(monkeypatch, tmp_path)
    fake, upstream = recording
    entry = {
        "frontend_model_name": "m",
        "frontend_base_url": "/b",
        "frontend_dialect": "bedrock",
        "backend_base_url": upstream.url,
        "backend_dialect": "claude",
        "backend_api_key": ROUTE_KEY,
    }
    body = orjson.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "anthropic_beta": [beta],
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    with running_proxy(make_config([entry])) as proxy:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=proxy.url + "/b",
            region_name="us-east-1",
            aws_access_key_id="any",
            aws_secret_access_key="any",
            config=BotoConfig(retries={"max_attempts": 1}),
        )
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.invoke_model(modelId="m", body=body)
        client.close()
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "anthropic_beta" in info.value.response["Error"]["Message"]
    assert fake.requests == []


# -- 4. a configured key never reaches the client or the log, even when the upstream echoes it ---------------


def _echo_handler(gzipped: bool = False) -> Any:
    async def handler(recorded: Recorded, reply: Reply) -> None:
        presented = recorded.headers.get("authorization", "") + " " + recorded.headers.get("x-api-key", "")
        text = f"Incorrect API key provided: {presented.strip()}. You can find your key at example."
        body = orjson.dumps({"error": {"message": text, "type": "invalid_request_error", "code": "invalid_api_key"}})
        headers = [("content-type", "application/json"), ("x-echo-auth", presented.strip())]
        if gzipped:
            body = gzip.compress(body)
            headers.append(("content-encoding", "gzip"))
        await reply.start(401, headers)
        await reply.chunk(body, more=False)

    return handler


def _no_key_anywhere(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        assert ROUTE_KEY.encode() not in data
        assert ROUTE_KEY[-12:].encode() not in data


@pytest.mark.parametrize("auth_header", ["Authorization", "x-api-key"])
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_proxy_mode_scrubs_an_echoed_key_from_error_body_headers_and_log(
    auth_header: str, gzipped: bool, caplog: pytest.LogCaptureFixture
) -> None:
    fake = RecordingUpstream(_echo_handler(gzipped))
    entry = {
        "frontend_model_name": "m",
        "frontend_base_url": "/o",
        "backend_base_url": "",
        "backend_api_key": ROUTE_KEY,
        "backend_auth_header": auth_header,
        "backend_auth_schema": "Bearer" if auth_header == "Authorization" else "",
    }
    with running_upstream(fake) as upstream:
        entry["backend_base_url"] = upstream.url
        with running_proxy(make_config([entry])) as proxy, caplog.at_level(logging.DEBUG):
            body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
            status, headers, data = raw_post(proxy.port, "/o/v1/chat/completions", body, {"accept-encoding": "gzip"})
    assert fake.requests[0].headers[auth_header.lower()].endswith(ROUTE_KEY)  # the key did go upstream
    assert status == 401
    assert "content-encoding" not in headers  # the body was decompressed to be cleaned
    assert int(headers["content-length"]) == len(data)
    message = json.loads(data)["error"]["message"]
    expected_auth = "Bearer [redacted]" if auth_header == "Authorization" else "[redacted]"
    assert message == f"Incorrect API key provided: {expected_auth}. You can find your key at example."
    assert headers["x-echo-auth"] == expected_auth
    _no_key_anywhere(data, json.dumps(headers), caplog.text)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_translation_mode_scrubs_an_echoed_key_from_the_translated_error(
    stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    fake = RecordingUpstream(_echo_handler())
    with running_upstream(fake) as upstream:
        entry = {
            "frontend_model_name": "m",
            "frontend_base_url": "/c",
            "frontend_dialect": "claude",
            "backend_base_url": upstream.url,
            "backend_dialect": "openai-chat",
            "backend_api_key": ROUTE_KEY,
        }
        with running_proxy(make_config([entry])) as proxy, caplog.at_level(logging.DEBUG):
            body = orjson.dumps(
                {"model": "m", "max_tokens": 5, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
            )
            status, headers, data = raw_post(proxy.port, "/c/v1/messages", body)
    assert status == 401
    doc = json.loads(data)
    assert doc["error"] == {
        "type": "authentication_error",
        "message": "Incorrect API key provided: Bearer [redacted]. You can find your key at example.",
    }
    _no_key_anywhere(data, json.dumps(headers), caplog.text)


def test_the_anthropic_sdk_sees_the_scrubbed_error() -> None:
    fake = RecordingUpstream(_echo_handler())
    with running_upstream(fake) as upstream:
        entry = {
            "frontend_model_name": "m",
            "frontend_base_url": "/a",
            "backend_base_url": upstream.url,
            "backend_api_key": ROUTE_KEY,
            "backend_auth_header": "x-api-key",
            "backend_auth_schema": "",
        }
        with running_proxy(make_config([entry])) as proxy:
            client = sdk_anthropic(base_url=proxy.url + "/a", api_key="client-key", max_retries=0)
            with pytest.raises(anthropic.AuthenticationError) as info:
                client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    _no_key_anywhere(str(info.value), info.value.response.text)
    assert "[redacted]" in info.value.response.text


async def _google_echo(recorded: Recorded, reply: Reply) -> None:
    """An upstream that quotes whatever credential it was shown, in Google's error shape."""
    presented = " ".join(recorded.headers.get(h, "") for h in ("authorization", "x-goog-api-key")).strip()
    body = orjson.dumps(
        {"error": {"code": 400, "message": f"API key not valid: {presented}", "status": "INVALID_ARGUMENT"}}
    )
    await reply.start(400, [("content-type", "application/json"), ("x-echo-auth", presented)])
    await reply.chunk(body, more=False)


def _new_dialect_request(client: str, prefix: str, stream: bool) -> tuple[str, bytes]:
    if client == "gemini":
        op = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{prefix}/v1beta/models/m:{op}", orjson.dumps({"contents": [{"parts": [{"text": "hi"}]}]})
    op = "converse-stream" if stream else "converse"
    return f"{prefix}/model/m/{op}", orjson.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("backend", ["gemini", "openai-chat"])
@pytest.mark.parametrize("client", ["gemini", "bedrock-converse"])
def test_gemini_and_converse_clients_see_an_echoed_key_scrubbed(
    client: str, backend: str, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """The route's key (in ``x-goog-api-key`` toward Gemini, a bearer otherwise) and a client's ``?key=`` never
    come back, in the client's error shape, nor reach the log."""
    fake = RecordingUpstream(_google_echo)
    with running_upstream(fake) as upstream:
        entry: dict[str, object] = {
            "frontend_model_name": "m",
            "frontend_base_url": "/t",
            "frontend_dialect": client,
            "backend_base_url": upstream.url,
            "backend_dialect": backend,
            "backend_api_key": ROUTE_KEY,
        }
        if backend == "gemini":
            entry.update(backend_auth_header="x-goog-api-key", backend_auth_schema="")
        path, body = _new_dialect_request(client, "/t", stream)
        if client == "gemini":
            path += ("&" if "?" in path else "?") + "key=client-secret-in-query"
        with running_proxy(make_config([entry])) as proxy, caplog.at_level(logging.DEBUG):
            status, headers, data = raw_post(proxy.port, path, body)
    assert status == 400
    assert error_shape_problem(client, Answer(status, headers, data, True)) is None, data
    assert (
        fake.requests[0]
        .headers.get("x-goog-api-key" if backend == "gemini" else "authorization", "")
        .endswith(ROUTE_KEY)
    )
    assert b"[redacted]" in data
    _no_key_anywhere(data, json.dumps(headers), caplog.text)
    sent = fake.requests[0]
    assert "client-secret-in-query" not in data.decode() + caplog.text + sent.path + sent.query + str(sent.headers)


# -- 8. an empty Bedrock model id ----------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["invoke", "invoke-with-response-stream"])
def test_an_empty_bedrock_model_id_gets_a_bedrock_shaped_error(action: str) -> None:
    entry = {
        "frontend_model_name": "m",
        "frontend_base_url": "/b",
        "frontend_dialect": "bedrock",
        "backend_base_url": "mock://",
        "backend_dialect": "claude",
    }
    with running_proxy(make_config([entry])) as proxy:
        body = orjson.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": []})
        status, headers, data = raw_post(proxy.port, f"/b/model//{action}", body)
    assert status == 400
    assert headers["x-amzn-errortype"] == "ValidationException"
    assert json.loads(data) == {"message": "the request names no model; models under /b: m"}


# -- safe by default -----------------------------------------------------------------------------------------


def test_listening_beyond_loopback_with_route_keys_warns() -> None:
    keyed = make_config(
        [
            {
                "frontend_model_name": "a",
                "frontend_base_url": "/a",
                "backend_base_url": "https://x.example",
                "backend_api_key": ROUTE_KEY,
            },
            {"frontend_model_name": "b", "frontend_base_url": "/b", "backend_base_url": "mock://"},
        ]
    )
    assert keyed.server.host == "127.0.0.1"
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert exposure_warning(keyed, host) is None
    assert exposure_warning(keyed, "0.0.0.0") == (
        "listening on 0.0.0.0, beyond loopback: anyone who can reach this port can spend the keys of 1 route(s) "
        "(models[0] (a)); bind to 127.0.0.1 or restrict access to the port"
    )
    keyless = make_config([{"frontend_model_name": "b", "frontend_base_url": "/b", "backend_base_url": "mock://"}])
    assert exposure_warning(keyless, "0.0.0.0") is None
