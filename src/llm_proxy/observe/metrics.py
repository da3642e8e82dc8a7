"""Prometheus metrics, served at ``GET /metrics`` (the table and PromQL examples: ``docs/observability.md``).

Labels stay bounded: ``model`` is the configured frontend name (the pattern, for pattern routes), ``backend``
a backend name from the config, ``client`` a client key's name (``-`` until client keys exist), ``status``
an HTTP status. Nothing a client writes becomes a label value.

With ``server.workers > 1`` each worker process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``
(prometheus_client's multiprocess mode, chosen when that variable is set before the library is imported;
``app.serve`` makes the directory and removes it at exit), and a scrape served by any worker reads all the
files: one scrape, the sum over the workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from llm_proxy.canonical import Usage

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
FIRST_TOKEN_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
REJECTION_REASONS = ("auth", "forbidden", "rate_limit", "budget", "bad_request")
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")


class Metrics:
    """Every metric of the proxy, and the one render of them."""

    def __init__(
        self,
        state_failures: Callable[[], int] = lambda: 0,
        config_reloads: Callable[[], dict[str, int]] = dict,
        ledger: Callable[[], tuple[int, int]] = lambda: (0, 0),
    ) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        common = ["prefix", "model", "backend"]
        self.requests = Counter(
            "llm_proxy_requests",
            "Requests answered, by route, backend, status and client key",
            [*common, "status", "client"],
            registry=r,
        )
        self.duration = Histogram(
            "llm_proxy_request_duration_seconds",
            "Seconds from a request's arrival to the end of its response",
            common,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.first_token = Histogram(
            "llm_proxy_time_to_first_token_seconds",
            "Streams: seconds from a request's arrival to the first generated token sent",
            common,
            buckets=FIRST_TOKEN_BUCKETS,
            registry=r,
        )
        self.upstream = Histogram(
            "llm_proxy_upstream_duration_seconds",
            "Seconds from sending an upstream request to its response headers",
            ["backend"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "llm_proxy_tokens",
            "Tokens in answers, by kind (usage the upstream reported)",
            [*common, "client", "kind"],
            registry=r,
        )
        self.active_streams = Gauge(
            "llm_proxy_active_streams",
            "Streamed answers in progress",
            ["prefix"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.attempts = Counter(
            "llm_proxy_upstream_attempts",
            "Upstream attempts by outcome: ok, retried (same backend again), fallback (another backend), failed",
            ["backend", "outcome"],
            registry=r,
        )
        self.rejections = Counter(
            "llm_proxy_rejections", "Requests refused by the proxy itself", ["reason"], registry=r
        )
        for reason in REJECTION_REASONS:
            self.rejections.labels(reason)
        self.state_failures = Counter(
            "llm_proxy_state_store_failures", "State store operations that failed", registry=r
        )
        self.reloads = Counter("llm_proxy_config_reloads", "Config reloads by result", ["result"], registry=r)
        self.ledger_written = Counter(
            "llm_proxy_ledger_written", "Usage records written to the ledger's database", registry=r
        )
        self.ledger_dropped = Counter(
            "llm_proxy_ledger_dropped",
            "Usage records dropped: the ledger's queue was full (database slow or down) or shutdown came first",
            registry=r,
        )
        self._read_ledger = ledger
        self._seen_ledger = (0, 0)
        # Both are counted where they happen (the store, the reloader) as plain integers; they are carried
        # over here by difference, so that a worker's file holds its own share in multiprocess mode.
        self._read_state_failures, self._read_reloads = state_failures, config_reloads
        self._seen_state_failures = 0
        self._seen_reloads: dict[str, int] = {}
        self._attempts: dict[tuple[str, str], Counter] = {}
        self._upstream: dict[str, Histogram] = {}
        self._series: dict[tuple[str, str, str, str], _Series] = {}
        """The children of one (prefix, model, backend, client), looked up once: ``labels()`` validates and
        locks on every call, which cost about a third of the metrics' time per request."""

    def _of(self, prefix: str, model: str, backend: str, client: str) -> _Series:
        key = (prefix, model, backend, client)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self, prefix, model, backend, client)
        return series

    def request(
        self, prefix: str, model: str, backend: str, status: str, client: str, seconds: float, ttft: float | None
    ) -> None:
        series = self._of(prefix or "/", model, backend, client)
        requests = series.requests.get(status)
        if requests is None:
            requests = series.requests[status] = self.requests.labels(series.prefix, model, backend, status, client)
        requests.inc()
        if model != "-":
            series.duration.observe(seconds)
        if ttft is not None:
            series.first_token.observe(ttft)
        self.sync()

    def usage(self, prefix: str, model: str, backend: str, client: str, usage: Usage) -> None:
        series = self._of(prefix or "/", model, backend, client)
        counts = (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
        )
        for kind, count in zip(TOKEN_KINDS, counts, strict=True):
            if count:
                child = series.tokens.get(kind)
                if child is None:
                    child = series.tokens[kind] = self.tokens.labels(series.prefix, model, backend, client, kind)
                child.inc(count)

    def attempt(self, backend: str, outcome: str, upstream_seconds: float | None) -> None:
        key = (backend, outcome)
        child = self._attempts.get(key)
        if child is None:
            child = self._attempts[key] = self.attempts.labels(backend, outcome)
        child.inc()
        if upstream_seconds is not None:
            upstream = self._upstream.get(backend)
            if upstream is None:
                upstream = self._upstream[backend] = self.upstream.labels(backend)
            upstream.observe(upstream_seconds)

    def reject(self, reason: str) -> None:
        """A request the proxy refused itself (``reason`` one of ``REJECTION_REASONS``)."""
        self.rejections.labels(reason).inc()

    def stream_opened(self, prefix: str) -> None:
        self.active_streams.labels(prefix or "/").inc()

    def stream_closed(self, prefix: str) -> None:
        self.active_streams.labels(prefix or "/").dec()

    def sync(self) -> None:
        """Carry the store's and the reloader's counts over (cheap: two integer comparisons when nothing changed)."""
        failures = self._read_state_failures()
        if failures > self._seen_state_failures:
            self.state_failures.inc(failures - self._seen_state_failures)
            self._seen_state_failures = failures
        ledger = self._read_ledger()
        if ledger != self._seen_ledger:
            self.ledger_written.inc(ledger[0] - self._seen_ledger[0])
            self.ledger_dropped.inc(ledger[1] - self._seen_ledger[1])
            self._seen_ledger = ledger
        reloads = self._read_reloads()
        if reloads != self._seen_reloads:
            for result, count in reloads.items():
                seen = self._seen_reloads.get(result, 0)
                if count > seen:
                    self.reloads.labels(result).inc(count - seen)
            self._seen_reloads = dict(reloads)

    def render(self) -> bytes:
        self.sync()
        if not self.multiprocess:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


class _Series:
    """The children of one route, backend and client (see ``Metrics._of``)."""

    __slots__ = ("prefix", "duration", "first_token", "requests", "tokens")

    def __init__(self, metrics: Metrics, prefix: str, model: str, backend: str, client: str) -> None:
        self.prefix = prefix
        self.duration = metrics.duration.labels(prefix, model, backend)
        self.first_token = metrics.first_token.labels(prefix, model, backend)
        self.requests: dict[str, Counter] = {}
        self.tokens: dict[str, Counter] = {}
