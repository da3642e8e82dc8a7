"""Prometheus metrics, served at ``GET /metrics``.

``llm_proxy_requests_total{prefix, model, status}`` counts answered requests (499: the client went away);
``llm_proxy_state_store_failures_total`` counts state-store operations that failed, each one a request
that went on without session progress (or a conversation/thinking record not kept).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _FunctionCounter(Collector):
    def __init__(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self._name, self._documentation, self._read = name, documentation, read

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self._name, self._documentation, value=self._read())


class Metrics:
    def __init__(self, state_failures: Callable[[], float]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "llm_proxy_requests",
            "Requests answered, by route and status",
            ["prefix", "model", "status"],
            registry=self.registry,
        )
        self.registry.register(
            _FunctionCounter("llm_proxy_state_store_failures", "State store operations that failed", state_failures)
        )

    def count(self, prefix: str, model: str, status: str) -> None:
        self.requests.labels(prefix or "/", model, status).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
