"""Proxy mode end to end: real proxy server, real upstream fakes, official SDKs and raw HTTP as clients."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import logging
import threading
import time
from collections.abc import Iterator

import anthropic
import openai
import pytest

from llm_proxy.app.exchange import Message
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

KEY = "sk-route-key-0000000000003f9a"


def route(upstream: ServerThread, **extra: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "frontend_model_name": "client-model",
        "frontend_base_url": "/openai",
        "backend_model_name": "upstream-model",
        "backend_base_url": upstream.url + "/base",
    }
    entry.update(extra)
    return entry


@pytest.fixture
def upstream() -> Iterator[tuple[RecordingUpstream, ServerThread]]:
    fake = RecordingUpstream()
    with running_upstream(fake) as server:
        yield fake, server


def raw_request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body or None, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


CHAT_REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "upstream-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def test_openai_sdk_model_rewrite_and_body_bytes_preserved(upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = upstream

    async def handler(req: Recorded, reply: Reply) -> None:
        await reply.json(200, json.dumps(CHAT_REPLY).encode(), [("x-request-id", "req-123")])

    fake.handler = handler
    with running_proxy(make_config([route(server)])) as proxy:
        client = sdk_openai(base_url=f"{proxy.url}/openai/v1", api_key="client-key", max_retries=0)
        result = client.chat.completions.with_raw_response.create(
            model="client-model", messages=[{"role": "user", "content": "héllo"}], temperature=1.0
        )
        # The upstream's own id is kept under another name: `x-request-id` is the proxy's (in its logs and span).
        assert result.headers["x-upstream-request-id"] == "req-123"
        assert result.headers["x-request-id"] != "req-123"
        assert result.parse().choices[0].message.content == "hi"
        body = b'{"model" : "client-model", "x_unknown": {"b": 1.0, "a": 1e2}, "messages": [{"content":"\\u00e9"}]}'
        status, _, _ = raw_request(proxy.port, "POST", "/openai/v1/chat/completions?api-version=2", body)
        assert status == 200
    first, second = fake.requests
    assert first.path == "/base/v1/chat/completions"
    assert json.loads(first.body)["model"] == "upstream-model"
    assert second.query == "api-version=2"
    assert second.body == body.replace(b'"client-model"', b'"upstream-model"')


def test_route_key_replaces_every_client_credential(upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = upstream
    with running_proxy(make_config([route(server, backend_api_key=KEY)])) as proxy:
        headers = {
            "content-type": "application/json",
            "authorization": "Bearer client-secret",
            "x-api-key": "client-secret",
            "api-key": "client-secret",
            "x-goog-api-key": "client-secret",
            "x-amz-date": "20250101T000000Z",
            "x-amz-security-token": "tok",
            "x-custom": "kept",
        }
        raw_request(proxy.port, "POST", "/openai/v1/chat/completions", b'{"model":"client-model"}', headers)
    seen = fake.requests[0].headers
    assert seen["authorization"] == f"Bearer {KEY}"
    for name in ("x-api-key", "api-key", "x-goog-api-key", "x-amz-date", "x-amz-security-token"):
        assert name not in seen
    assert seen["x-custom"] == "kept"
    assert "client-secret" not in json.dumps(fake.requests[0].raw_headers)


def test_raw_key_with_empty_schema(upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = upstream
    entry = route(server, backend_api_key="ant-key", backend_auth_header="x-api-key", backend_auth_schema="")
    with running_proxy(make_config([entry])) as proxy:
        client = sdk_anthropic(base_url=f"{proxy.url}/openai", api_key="client", max_retries=0)
        raw = client.messages.with_raw_response.create(
            model="client-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
        assert raw.status_code == 200 and raw.http_response.content == b'{"ok":true}'
    seen = fake.requests[0].headers
    assert seen["x-api-key"] == "ant-key"
    assert "authorization" not in seen


def test_without_route_key_client_headers_pass_unchanged(upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = upstream
    with running_proxy(make_config([route(server)])) as proxy:
        headers = {
            "authorization": "Bearer client-secret",
            "x-api-key": "client-key",
            "connection": "keep-alive, x-hop",
            "x-hop": "dropped",
            "anthropic-beta": "a,b",
            "content-type": "application/json",
        }
        raw_request(proxy.port, "POST", "/openai/v1/messages", b'{"model":"client-model"}', headers)
    seen = fake.requests[0].headers
    assert seen["authorization"] == "Bearer client-secret"
    assert seen["x-api-key"] == "client-key"
    assert seen["anthropic-beta"] == "a,b"
    assert "x-hop" not in seen and "connection" not in seen or seen.get("connection") != "keep-alive, x-hop"
    assert seen["host"] == f"127.0.0.1:{server.port}"


def test_status_headers_and_compressed_body_pass_through(upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = upstream
    compressed = gzip.compress(b'{"error":{"message":"slow down"}}')

    async def handler(req: Recorded, reply: Reply) -> None:
        await reply.start(
            429, [("content-type", "application/json"), ("content-encoding", "gzip"), ("retry-after", "7")]
        )
        await reply.chunk(compressed, more=False)

    fake.handler = handler
    with running_proxy(make_config([route(server)])) as proxy:
        status, headers, body = raw_request(
            proxy.port,
            "POST",
            "/openai/v1/chat/completions",
            b'{"model":"client-model"}',
            {"accept-encoding": "gzip", "content-type": "application/json"},
        )
    assert status == 429
    assert headers["content-encoding"] == "gzip" and headers["retry-after"] == "7"
    assert body == compressed
    assert fake.requests[0].headers["accept-encoding"] == "gzip"


def test_stream_arrives_before_upstream_finishes(upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = upstream
    release = fake.event("release")
    waited: list[bool] = []

    def chunk(text: str, finish: str | None = None) -> bytes:
        delta = {"content": text} if text else {}
        data = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "upstream-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    async def handler(req: Recorded, reply: Reply) -> None:
        await reply.start(200, [("content-type", "text/event-stream")])
        await reply.chunk(chunk("first"))
        waited.append(await asyncio.to_thread(release.wait, 5))
        await reply.chunk(chunk(" second", "stop"))
        await reply.chunk(b"data: [DONE]\n\n", more=False)

    fake.handler = handler
    with running_proxy(make_config([route(server)])) as proxy:
        client = sdk_openai(base_url=f"{proxy.url}/openai", api_key="k", max_retries=0)
        texts = []
        for event in client.chat.completions.create(
            model="client-model", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            texts.append(event.choices[0].delta.content)
            release.set()
    assert waited == [True], "the first event reached the client only after the upstream finished"
    assert texts == ["first", " second"]


def test_client_disconnect_cancels_upstream(upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = upstream
    saw_disconnect: list[float] = []

    async def handler(req: Recorded, reply: Reply) -> None:
        await reply.start(200, [("content-type", "text/event-stream")])
        await reply.chunk(b"data: {}\n\n")
        started = time.monotonic()
        if await reply.wait_disconnect(5):
            saw_disconnect.append(time.monotonic() - started)

    fake.handler = handler
    with running_proxy(make_config([route(server)])) as proxy:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        conn.request("POST", "/openai/v1/chat/completions", body=b'{"model":"client-model","stream":true}')
        resp = conn.getresponse()
        assert resp.read1(100).startswith(b"data: {}")
        conn.sock.close() if conn.sock else None
        conn.close()
        deadline = time.monotonic() + 5
        while not saw_disconnect and time.monotonic() < deadline:
            time.sleep(0.02)
    assert saw_disconnect and saw_disconnect[0] < 2.0


def test_unknown_model_and_prefix_errors_in_path_dialect(upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    _, server = upstream
    models = [route(server), route(server, frontend_model_name="other-model")]
    with running_proxy(make_config(models)) as proxy:
        client = sdk_openai(base_url=f"{proxy.url}/openai/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.NotFoundError) as oai:
            client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
        assert oai.value.status_code == 404
        assert oai.value.body == {
            "message": "model 'nope' is not served under /openai; available: client-model, other-model",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
        claude = sdk_anthropic(base_url=f"{proxy.url}/openai", api_key="k", max_retries=0)
        with pytest.raises(anthropic.NotFoundError) as ant:
            claude.messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
        assert ant.value.body == {
            "type": "error",
            "error": {
                "type": "not_found_error",
                "message": "model 'nope' is not served under /openai; available: client-model, other-model",
            },
        }
        status, _, body = raw_request(proxy.port, "POST", "/nowhere/v1/chat/completions", b"{}")
        assert status == 404
        assert (
            json.loads(body)["error"]["message"]
            == "no route for path '/nowhere/v1/chat/completions'; configured prefixes: /openai"
        )


def test_models_listing_and_healthz(upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    _, server = upstream
    models = [route(server), route(server, frontend_model_name="second")]
    with running_proxy(make_config(models)) as proxy:
        client = sdk_openai(base_url=f"{proxy.url}/openai/v1", api_key="k", max_retries=0)
        assert [m.id for m in client.models.list()] == ["client-model", "second"]
        claude = sdk_anthropic(base_url=f"{proxy.url}/openai", api_key="k", max_retries=0)
        page = claude.models.list()
        assert [m.id for m in page.data] == ["client-model", "second"]
        status, headers, body = raw_request(proxy.port, "GET", "/healthz")
        assert (status, body) == (200, b"OK")
        assert headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    "path", ["/openai/v1/../../admin", "/openai/%2e%2e/admin", "/openai/v1/a%2Fb", "/openai/http://evil.example/x"]
)
def test_path_escapes_refused(upstream: tuple[RecordingUpstream, ServerThread], path: str) -> None:
    fake, server = upstream
    with running_proxy(make_config([route(server)])) as proxy:
        status, _, body = raw_request(proxy.port, "POST", path, b'{"model":"client-model"}')
    assert status == 400, body
    assert "not allowed" in json.loads(body)["error"]["message"]
    assert fake.requests == []


def test_upstream_unreachable_is_502_in_dialect() -> None:
    entry = {
        "frontend_model_name": "m",
        "frontend_base_url": "/a",
        "backend_base_url": "http://127.0.0.1:9",
    }
    with running_proxy(make_config([entry], {"connect_timeout": 2})) as proxy:
        claude = sdk_anthropic(base_url=f"{proxy.url}/a", api_key="k", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as info:
            claude.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert info.value.body == {
        "type": "error",
        "error": {"type": "api_error", "message": "the upstream at 127.0.0.1 cannot be reached (ClientConnectorError)"},
    }


def test_upstream_timeout_is_504(upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = upstream

    async def handler(req: Recorded, reply: Reply) -> None:
        await asyncio.sleep(2)
        await reply.json(200, b"{}")

    fake.handler = handler
    with running_proxy(make_config([route(server)], {"read_timeout": 0.3})) as proxy:
        client = sdk_openai(base_url=f"{proxy.url}/openai/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="client-model", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 504


def test_malformed_json_is_400_in_dialect(upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    _, server = upstream
    with running_proxy(make_config([route(server)])) as proxy:
        status, _, body = raw_request(proxy.port, "POST", "/openai/v1/messages", b'{"model": ')
    assert status == 400
    doc = json.loads(body)
    assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error"
    assert doc["error"]["message"].startswith("the request body is not valid JSON")


def test_access_log_line_without_secrets(
    upstream: tuple[RecordingUpstream, ServerThread], caplog: pytest.LogCaptureFixture
) -> None:
    _, server = upstream
    caplog.set_level(logging.INFO, logger="llm_proxy.access")
    with running_proxy(make_config([route(server, backend_api_key=KEY)])) as proxy:
        raw_request(
            proxy.port,
            "POST",
            "/openai/v1/chat/completions",
            b'{"model":"client-model","messages":[{"role":"user","content":"private words"}]}',
            {"authorization": "Bearer client-secret"},
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "llm_proxy.access"]
    assert len(lines) == 1
    assert lines[0].startswith("POST /openai client-model -> upstream-model 200 ")
    assert lines[0].endswith("B")
    assert KEY not in caplog.text and "client-secret" not in caplog.text and "private words" not in caplog.text


def test_concurrent_requests_all_complete(upstream: tuple[RecordingUpstream, ServerThread]) -> None:
    fake, server = upstream
    with running_proxy(make_config([route(server)])) as proxy:
        results: list[int] = []

        def call() -> None:
            results.append(raw_request(proxy.port, "POST", "/openai/x", b'{"model":"client-model"}')[0])

        threads = [threading.Thread(target=call) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert results == [200] * 20
    assert len(fake.requests) == 20


def _asgi_messages(body: bytes) -> list[Message]:
    """What the app sends the server for one proxy-mode request to the embedded mock."""
    from llm_proxy.app.server import ProxyApp

    config = make_config(
        [
            {
                "frontend_model_name": "m",
                "frontend_base_url": "/p",
                "backend_base_url": "mock://",
                "backend_model_name": "b",
            }
        ]
    )
    app = ProxyApp(config)
    sent: list[Message] = []

    async def run() -> None:
        done = asyncio.get_running_loop().create_future()

        async def receive() -> Message:
            if not sent and not done.done():
                done.set_result(None)
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client stays until cancelled
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/p/v1/chat/completions", "headers": [], "query_string": b""}
        await app(scope, receive, send)

    asyncio.run(run())
    return sent


def test_a_body_of_announced_length_goes_out_in_one_message() -> None:
    """Start, then the whole body with ``more_body`` false: no empty closing message."""
    sent = _asgi_messages(json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    headers = dict(sent[0]["headers"])
    assert sent[1]["more_body"] is False
    assert len(sent[1]["body"]) == int(headers[b"content-length"])
    assert json.loads(sent[1]["body"])["object"] == "chat.completion"


def test_a_stream_passes_chunk_by_chunk() -> None:
    """Without a length, every chunk leaves as it comes; the end is its own message."""
    sent = _asgi_messages(
        json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
    )
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) > 2
    assert all(m["more_body"] is True for m in bodies[:-1])
    assert bodies[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert b"[DONE]" in b"".join(m["body"] for m in bodies)
