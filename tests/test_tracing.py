"""OpenTelemetry spans on the wire: the SDK's real OTLP/HTTP exporter sends to a receiver in this test, which
decodes the protobuf with ``opentelemetry-proto``; the upstream sees the propagated ``traceparent``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llm_proxy.app.exchange import Receive, Scope, Send
from llm_proxy.app.server import ProxyApp
from llm_proxy.observe import tracing
from tests.servers import RecordingUpstream, ServerThread, make_config, running_upstream
from tests.test_observability import CHAT, CLAUDE, KEY, chat_upstream, request

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"


class Receiver:
    """An OTLP/HTTP trace receiver: every exported span, decoded."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.content_types: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.content_types.append(headers.get("content-type", ""))
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        for resource_spans in export.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/x-protobuf")]}
        )
        await send({"type": "http.response.body", "body": answer})


def attributes(span: Span) -> dict[str, Any]:
    def plain(value: AnyValue) -> Any:
        kind = value.WhichOneof("value")
        if kind == "array_value":
            return [plain(v) for v in value.array_value.values]
        return getattr(value, kind) if kind else None

    return {a.key: plain(a.value) for a in span.attributes}


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    collector = Receiver()
    with ServerThread(collector) as server:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", server.url)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "proxy-under-test")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        yield collector


def test_spans_reach_an_otlp_receiver_with_genai_attributes_and_the_trace_goes_upstream(receiver: Receiver) -> None:
    fake = RecordingUpstream(chat_upstream)
    with running_upstream(fake) as upstream:
        config = make_config(
            [
                {
                    "frontend_model_name": "claude-x",
                    "frontend_base_url": "/claude",
                    "frontend_dialect": "claude",
                    "backend_dialect": "openai-chat",
                    "backend_model_name": "upstream-model",
                    "backend_base_url": upstream.url,
                    "backend_api_key": KEY,
                },
                {
                    "frontend_model_name": "chat",
                    "frontend_base_url": "/openai",
                    "backend_model_name": "upstream-model",
                    "backend_base_url": upstream.url,
                },
            ]
        )
        app = ProxyApp(config)
        assert app.tracing is not None
        with ServerThread(app) as proxy:
            traceparent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
            headers = {"traceparent": traceparent, "x-request-id": "rid-traced"}
            status, _, body = request(proxy.port, "/claude/v1/messages", CLAUDE, headers)
            assert status == 200 and b"message_stop" in body
            status, _, _ = request(proxy.port, "/openai/v1/chat/completions", {**CHAT, "model": "chat"})
            assert status == 200
        # Leaving the server ran the app's shutdown, which flushed the exporter.
    assert set(receiver.content_types) == {"application/x-protobuf"}
    by_name = {span.name: span for span in receiver.spans}
    assert set(by_name) == {"chat claude-x", "chat chat", "attempt 0"} and len(receiver.spans) == 4
    root = by_name["chat claude-x"]
    attempt = next(s for s in receiver.spans if s.name == "attempt 0" and s.trace_id.hex() == CLIENT_TRACE)

    # The client's trace continues: same trace id, the client's span as parent.
    assert root.trace_id.hex() == CLIENT_TRACE and root.parent_span_id.hex() == CLIENT_SPAN
    assert root.kind == Span.SPAN_KIND_SERVER and attempt.kind == Span.SPAN_KIND_CLIENT
    assert attempt.parent_span_id == root.span_id
    assert attributes(root) == {
        "http.request.method": "POST",
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "claude-x",
        "gen_ai.response.model": "upstream-model",
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.response.finish_reasons": ["end_turn"],
        "http.response.status_code": 200,
        "llm_proxy.request_id": "rid-traced",
        "llm_proxy.prefix": "/claude",
        "llm_proxy.client": "-",
        "llm_proxy.attempts": 1,
        "llm_proxy.backend": "0",
        "llm_proxy.time_to_first_token": pytest.approx(attributes(root)["llm_proxy.time_to_first_token"]),
    }
    assert 0.3 <= attributes(root)["llm_proxy.time_to_first_token"] < 1.0
    assert attributes(attempt) == {
        "llm_proxy.backend": "0",
        "http.request.method": "POST",
        "gen_ai.provider.name": "openai",
        "http.response.status_code": 200,
        "llm_proxy.attempt.outcome": "ok",
    }
    # The upstream got the attempt span's context (not the client's own traceparent).
    seen = fake.requests[0].headers["traceparent"]
    assert seen == f"00-{CLIENT_TRACE}-{attempt.span_id.hex()}-01"
    # A request without a traceparent starts its own trace, which the upstream continues too.
    other = by_name["chat chat"]
    assert other.trace_id.hex() != CLIENT_TRACE and not other.parent_span_id
    assert fake.requests[1].headers["traceparent"].split("-")[1] == other.trace_id.hex()
    # No prompt or completion text in any span.
    for span in receiver.spans:
        text = json.dumps(attributes(span))
        assert "hello" not in text and '"hi"' not in text and KEY not in text


def test_an_upstream_error_marks_the_span(receiver: Receiver) -> None:
    fake = RecordingUpstream(chat_upstream)
    with running_upstream(fake) as upstream:
        config = make_config(
            [
                {
                    "frontend_model_name": "down",
                    "frontend_base_url": "/claude",
                    "frontend_dialect": "claude",
                    "backend_dialect": "openai-chat",
                    "backend_model_name": "broken",
                    "backend_base_url": upstream.url,
                }
            ]
        )
        with ServerThread(ProxyApp(config)) as proxy:
            status, _, _ = request(proxy.port, "/claude/v1/messages", {**CLAUDE, "model": "down"})
            assert status == 529  # overloaded, as Claude says it
    root = next(s for s in receiver.spans if s.name == "chat down")
    attempt = next(s for s in receiver.spans if s.name == "attempt 0")
    assert attributes(root)["error.type"] == "overloaded" and root.status.code == 2  # STATUS_CODE_ERROR
    assert attributes(attempt)["error.type"] == "overloaded"
    assert attributes(attempt)["llm_proxy.attempt.outcome"] == "failed"


def test_tracing_is_off_without_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    assert not tracing.wanted()
    assert tracing.wanted({"OTEL_TRACES_EXPORTER": "otlp"})
    assert not tracing.wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"})
    assert not tracing.wanted({"OTEL_TRACES_EXPORTER": "none"})
