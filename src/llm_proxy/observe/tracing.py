"""OpenTelemetry traces following the GenAI semantic conventions (the optional ``[otel]`` extra).

Enabled when ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_TRACES_EXPORTER``
is set (and ``OTEL_SDK_DISABLED`` is not ``true``); everything else (service name, headers, batching) comes from
the standard ``OTEL_*`` variables, read by the SDK. The SDK is imported only then, so a proxy without tracing
starts as fast as before.

One server span per request (``{operation} {model}``) continues the client's trace when it sent a W3C
``traceparent``; each upstream attempt is a client span under it, and its context goes upstream as
``traceparent``. Spans carry names, counts and outcomes, never prompt or completion text.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from llm_proxy.dialects import DIALECTS

if TYPE_CHECKING:
    from llm_proxy.observe.record import Attempt, Record
    from llm_proxy.upstream.client import UpstreamCall

log = logging.getLogger("llm_proxy.observe.tracing")

_PROPAGATION_HEADERS = frozenset({"traceparent", "tracestate"})


def wanted(env: Mapping[str, str] = os.environ) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    keys = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return bool(exporter) or any(env.get(k) for k in keys)


class Tracing:
    """The tracer provider of one proxy app (its own, not the global one), exporting over OTLP/HTTP."""

    def __init__(self) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "llm-proxy")})
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("llm_proxy")
        self.propagator = TraceContextTextMapPropagator()

    @staticmethod
    def from_env() -> Tracing | None:
        """Tracing when the environment asks for it and the ``[otel]`` extra is installed, else None."""
        if not wanted():
            return None
        try:
            return Tracing()
        except ImportError as exc:
            log.warning("OTEL_* is set but tracing is off: install llm-proxy[otel] (%s)", exc)
            return None

    def start(self, method: str, path: str, headers: Mapping[str, str]) -> RequestSpan:
        from opentelemetry.trace import SpanKind

        parent = self.propagator.extract(headers) if "traceparent" in headers else None
        span = self.tracer.start_span(
            f"{method} {path}", context=parent, kind=SpanKind.SERVER, attributes={"http.request.method": method}
        )
        return RequestSpan(self, span)

    def shutdown(self) -> None:
        """Export what is left (at the app's shutdown)."""
        self.provider.shutdown()


class RequestSpan:
    """The span of one request and its attempts' spans."""

    __slots__ = ("_tracing", "span", "_attempt", "_provider", "trace_id")

    def __init__(self, tracing: Tracing, span: Any) -> None:
        self._tracing = tracing
        self.span = span
        self._attempt: Any = None
        self._provider: str | None = None
        """The provider of the last attempt's upstream."""
        self.trace_id: str = format(span.get_span_context().trace_id, "032x")

    def attempt_started(self, backend: str, call: UpstreamCall) -> UpstreamCall:
        from opentelemetry.trace import SpanKind, set_span_in_context

        tracing = self._tracing
        attributes: dict[str, Any] = {"llm_proxy.backend": backend, "http.request.method": call.method}
        dialect = call.route.backend_dialect
        if dialect in DIALECTS:
            attributes["gen_ai.provider.name"] = self._provider = DIALECTS[dialect].provider
        context = set_span_in_context(self.span)
        child = tracing.tracer.start_span(
            f"attempt {backend}", context=context, kind=SpanKind.CLIENT, attributes=attributes
        )
        self._attempt = child
        carrier: dict[str, str] = {}
        tracing.propagator.inject(carrier, context=set_span_in_context(child))
        # The proxy's span replaces whatever trace headers the client sent (it continues that trace).
        headers = [(k, v) for k, v in call.headers if k.lower() not in _PROPAGATION_HEADERS]
        return replace(call, headers=headers + list(carrier.items()))

    def attempt_ended(self, attempt: Attempt) -> None:
        child, self._attempt = self._attempt, None
        if child is None:
            return
        if attempt.status:
            child.set_attribute("http.response.status_code", attempt.status)
        child.set_attribute("llm_proxy.attempt.outcome", attempt.outcome)
        if attempt.failure is not None or attempt.outcome == "failed":
            from opentelemetry.trace import Status, StatusCode

            child.set_attribute("error.type", attempt.failure or str(attempt.status))
            child.set_status(Status(StatusCode.ERROR))
        child.end()

    def finish(
        self, record: Record, *, status: int, prefix: str, model: str, backend_model: str, dialect: str | None
    ) -> None:
        """Every GenAI attribute known at the end, then the end of the span."""
        span = self.span
        spec = DIALECTS.get(dialect or "")
        operation = "chat" if spec is None else spec.operation
        if model != "-":
            span.update_name(f"{operation} {model}")
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "http.response.status_code": status,
            "llm_proxy.request_id": record.request_id,
            "llm_proxy.prefix": prefix or "/",
            "llm_proxy.client": record.client,
            "llm_proxy.attempts": len(record.attempts),
        }
        provider = self._provider or (None if spec is None else spec.provider)
        if provider is not None:
            attributes["gen_ai.provider.name"] = provider
        if model != "-":
            attributes["gen_ai.request.model"] = model
        if record.response_model or backend_model != "-":
            attributes["gen_ai.response.model"] = record.response_model or backend_model
        if record.attempts:
            attributes["llm_proxy.backend"] = record.backend
        usage = record.usage
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
        if record.finish_reasons:
            attributes["gen_ai.response.finish_reasons"] = list(record.finish_reasons)
        if record.ttft is not None:
            attributes["llm_proxy.time_to_first_token"] = record.ttft
        span.set_attributes(attributes)
        error = record.error_type or (str(status) if status >= 400 else None)
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=time.time_ns())
