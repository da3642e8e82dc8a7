"""Prometheus metrics, served at ``GET /metrics`` (the table and PromQL examples: ``docs/observability.md``).

Labels stay bounded: ``model`` is the configured frontend name (the pattern, for pattern routes), ``backend``
a backend name from the config, ``client`` a client key's name (``-`` until client keys exist), ``status``
an HTTP status. Nothing a client writes becomes a label value.

With ``server.workers > 1`` each worker process writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``
(prometheus_client's multiprocess mode, chosen when that variable is set before the library is imported;
``app.serve`` makes the directory and removes it at exit), and a scrape served by any worker reads all the
files: one scrape, the sum over the workers.

In one process (the default) the per-request metrics are plain numbers (``_Counter``, ``_Histogram``) that a
scrape turns into the same families, samples and values prometheus_client's own ``Counter`` and ``Histogram``
would give: a request then costs a few additions instead of a locked ``inc``/``observe`` call chain per value.
With workers, the values must be in the shared files as they happen, so prometheus_client's classes are used.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import metrics as _prometheus_metrics
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import INF, floatToGoString

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
        self.requests = self._counter(
            "llm_proxy_requests",
            "Requests answered, by route, backend, status and client key",
            [*common, "status", "client"],
        )
        self.duration = self._histogram(
            "llm_proxy_request_duration_seconds",
            "Seconds from a request's arrival to the end of its response",
            common,
            DURATION_BUCKETS,
        )
        self.first_token = self._histogram(
            "llm_proxy_time_to_first_token_seconds",
            "Streams: seconds from a request's arrival to the first generated token sent",
            common,
            FIRST_TOKEN_BUCKETS,
        )
        self.upstream = self._histogram(
            "llm_proxy_upstream_duration_seconds",
            "Seconds from sending an upstream request to its response headers",
            ["backend"],
            FIRST_TOKEN_BUCKETS,
        )
        self.tokens = self._counter(
            "llm_proxy_tokens", "Tokens in answers, by kind (usage the upstream reported)", [*common, "client", "kind"]
        )
        self.active_streams = Gauge(
            "llm_proxy_active_streams",
            "Streamed answers in progress",
            ["prefix"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.attempts = self._counter(
            "llm_proxy_upstream_attempts",
            "Upstream attempts by outcome: ok, retried (same backend again), fallback (another backend), failed",
            ["backend", "outcome"],
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
        self._attempts: dict[tuple[str, str], _Inc] = {}
        self._upstream: dict[str, _Observe] = {}
        self._streams: dict[str, Gauge] = {}
        self._series: dict[tuple[str, str, str, str], _Series] = {}
        """The children of one (prefix, model, backend, client), looked up once: ``labels()`` validates and
        locks on every call, which cost about a third of the metrics' time per request."""

    def _counter(self, name: str, documentation: str, labelnames: list[str]) -> _Family[_Inc]:
        """A labelled counter: plain numbers in one process, prometheus_client's (shared files) with workers."""
        if self.multiprocess:
            return Counter(name, documentation, labelnames, registry=self.registry)
        family = _Counter(name, documentation, labelnames)
        self.registry.register(family)
        return family

    def _histogram(
        self, name: str, documentation: str, labelnames: list[str], buckets: Sequence[float]
    ) -> _Family[_Observe]:
        if self.multiprocess:
            return Histogram(name, documentation, labelnames, buckets=buckets, registry=self.registry)
        family = _Histogram(name, documentation, labelnames, buckets)
        self.registry.register(family)
        return family

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
        if self.multiprocess:
            # Each worker carries its own share over; in one process the scrape does it (``render``).
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
        self._stream_gauge(prefix or "/").inc()

    def stream_closed(self, prefix: str) -> None:
        self._stream_gauge(prefix or "/").dec()

    def _stream_gauge(self, prefix: str) -> Gauge:
        gauge = self._streams.get(prefix)
        if gauge is None:
            gauge = self._streams[prefix] = self.active_streams.labels(prefix)
        return gauge

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


_Child = TypeVar("_Child", covariant=True)


class _Inc(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _Observe(Protocol):
    def observe(self, amount: float) -> None: ...


class _Family(Protocol[_Child]):
    def labels(self, *values: str) -> _Child: ...


class _Series:
    """The children of one route, backend and client (see ``Metrics._of``)."""

    __slots__ = ("prefix", "duration", "first_token", "requests", "tokens")

    def __init__(self, metrics: Metrics, prefix: str, model: str, backend: str, client: str) -> None:
        self.prefix = prefix
        self.duration = metrics.duration.labels(prefix, model, backend)
        self.first_token = metrics.first_token.labels(prefix, model, backend)
        self.requests: dict[str, _Inc] = {}
        self.tokens: dict[str, _Inc] = {}


# -- plain-number families, exposed as prometheus_client's own classes expose theirs ----------------------


class _CounterChild:
    __slots__ = ("value", "created")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class _HistogramChild:
    __slots__ = ("bounds", "counts", "sum", "created")

    def __init__(self, bounds: list[float]) -> None:
        self.bounds = bounds
        self.counts = [0.0] * len(bounds)
        """Observations per bucket (not cumulative), as prometheus_client keeps them."""
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        self.sum += amount
        if amount <= INF:  # the first bucket whose bound is >= amount; NaN goes in none (as in prometheus_client)
            self.counts[bisect_left(self.bounds, amount)] += 1


class _Counter:
    """A labelled counter of plain numbers; ``collect`` gives what ``prometheus_client.Counter`` would."""

    __slots__ = ("name", "documentation", "labelnames", "children")

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self.children: dict[tuple[str, ...], _CounterChild] = {}

    def labels(self, *values: str) -> _CounterChild:
        child = self.children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name}: {len(self.labelnames)} label values expected, {len(values)} given")
            child = self.children[values] = _CounterChild()
        return child

    def describe(self) -> list[Metric]:
        return [Metric(self.name, self.documentation, "counter")]

    def collect(self) -> list[Metric]:
        metric = Metric(self.name, self.documentation, "counter")
        created = _prometheus_metrics._use_created
        for values, child in list(self.children.items()):
            labels = dict(zip(self.labelnames, values, strict=True))
            metric.add_sample(self.name + "_total", labels, child.value)
            if created:
                metric.add_sample(self.name + "_created", labels, child.created)
        return [metric]


class _Histogram:
    """A labelled histogram of plain numbers; ``collect`` gives what ``prometheus_client.Histogram`` would."""

    __slots__ = ("name", "documentation", "labelnames", "bounds", "_le", "children")

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        bounds = [float(b) for b in buckets]
        if bounds[-1] != INF:
            bounds.append(INF)
        self.bounds = bounds
        self._le = [floatToGoString(b) for b in bounds]  # type: ignore[no-untyped-call]
        self.children: dict[tuple[str, ...], _HistogramChild] = {}

    def labels(self, *values: str) -> _HistogramChild:
        child = self.children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name}: {len(self.labelnames)} label values expected, {len(values)} given")
            child = self.children[values] = _HistogramChild(self.bounds)
        return child

    def describe(self) -> list[Metric]:
        return [Metric(self.name, self.documentation, "histogram")]

    def collect(self) -> list[Metric]:
        metric = Metric(self.name, self.documentation, "histogram")
        created = _prometheus_metrics._use_created
        name = self.name
        for values, child in list(self.children.items()):
            labels = dict(zip(self.labelnames, values, strict=True))
            cumulative = 0.0
            for le, count in zip(self._le, child.counts, strict=True):
                cumulative += count
                metric.add_sample(name + "_bucket", {**labels, "le": le}, cumulative)
            metric.add_sample(name + "_count", labels, cumulative)
            if self.bounds[0] >= 0:
                metric.add_sample(name + "_sum", labels, child.sum)
            if created:
                metric.add_sample(name + "_created", labels, child.created)
        return [metric]
