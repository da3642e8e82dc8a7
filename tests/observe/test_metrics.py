"""The plain-number metrics give, at scrape time, exactly the exposition prometheus_client's own classes give.

The reference is the same ``Metrics`` built as with workers (prometheus_client's ``Counter`` and ``Histogram``,
here with in-process values), fed the same traffic; the clock is fixed so that ``_created`` samples compare too.
"""

from __future__ import annotations

import math
import time

import pytest
from prometheus_client import generate_latest

from llm_proxy.canonical import Usage
from llm_proxy.observe.metrics import DURATION_BUCKETS, FIRST_TOKEN_BUCKETS, MULTIPROC_ENV, Metrics


def _traffic(metrics: Metrics, failures: list[int], reloads: dict[str, int]) -> None:
    seconds = [0.0, 0.01, *DURATION_BUCKETS, *FIRST_TOKEN_BUCKETS, 0.30000000000000004, 1e-9, 700.0, math.inf, math.nan]
    for n, value in enumerate(seconds):
        prefix = ("", "/openai", "/claude")[n % 3]
        model = ("m", "claude-*", "-")[n % 3]
        backend = ("0", "pool-a", "-")[n % 3]
        client = ("-", "alice")[n % 2]
        status = ("200", "429", "499", "502")[n % 4]
        ttft = None if n % 2 else value / 3
        metrics.request(prefix, model, backend, status, client, value, ttft)
        metrics.attempt(backend, ("ok", "retried", "fallback", "failed")[n % 4], None if n % 5 == 0 else value / 7)
        usage = Usage(input_tokens=n, output_tokens=2 * n, cache_read_tokens=n % 3, reasoning_tokens=n % 2)
        metrics.usage(prefix, model, backend, client, usage)
        if n % 4 == 1:
            metrics.stream_opened(prefix)
        if n % 8 == 1:
            metrics.stream_closed(prefix)
        if n % 6 == 0:
            metrics.reject(("auth", "forbidden", "rate_limit", "bad_request")[n % 4])
        failures[0] += n % 2
        reloads["ok" if n % 3 else "failed"] = reloads.get("ok" if n % 3 else "failed", 0) + 1


def _fed(monkeypatch: pytest.MonkeyPatch, *, multiprocess: bool) -> tuple[Metrics, bytes]:
    failures = [0]
    reloads: dict[str, int] = {}
    with monkeypatch.context() as patch:
        if multiprocess:
            patch.setenv(MULTIPROC_ENV, "/nonexistent")  # prometheus_client's classes (values stay in-process)
        else:
            patch.delenv(MULTIPROC_ENV, raising=False)
        metrics = Metrics(lambda: failures[0], lambda: reloads)
    _traffic(metrics, failures, reloads)
    metrics.sync()
    return metrics, generate_latest(metrics.registry)


def test_the_exposition_is_prometheus_clients_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_790_000_000.125)
    plain, ours = _fed(monkeypatch, multiprocess=False)
    reference, theirs = _fed(monkeypatch, multiprocess=True)
    assert not plain.multiprocess and reference.multiprocess
    assert ours == theirs
    assert plain.render() == theirs  # render carries the store's and the reloader's counts over, then the same
    assert b'llm_proxy_requests_total{backend="pool-a",client="alice",model="claude-*",prefix="/openai"' in ours


def test_created_samples_are_the_series_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(float(n) for n in range(1_000, 2_000))
    monkeypatch.setattr(time, "time", lambda: next(clock))
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    metrics = Metrics()
    metrics.request("/p", "m", "0", "200", "-", 0.2, None)
    first = generate_latest(metrics.registry)
    metrics.request("/p", "m", "0", "200", "-", 0.2, None)
    later = generate_latest(metrics.registry)
    created = [line for line in first.splitlines() if line.startswith(b"llm_proxy_requests_created")]
    assert len(created) == 1 and created[0] in later.splitlines()
    assert b'llm_proxy_requests_total{backend="0",client="-",model="m",prefix="/p",status="200"} 2.0' in later


def test_a_histogram_counts_each_observation_in_its_first_bucket_at_or_above(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    metrics = Metrics()
    for value in (0.05, 0.0500001, 600.0, math.inf, math.nan):
        metrics.attempt("b", "ok", value)
    text = generate_latest(metrics.registry).decode()
    assert 'llm_proxy_upstream_duration_seconds_bucket{backend="b",le="0.05"} 1.0' in text
    assert 'llm_proxy_upstream_duration_seconds_bucket{backend="b",le="0.1"} 2.0' in text
    assert 'llm_proxy_upstream_duration_seconds_bucket{backend="b",le="60.0"} 2.0' in text
    assert 'llm_proxy_upstream_duration_seconds_bucket{backend="b",le="+Inf"} 4.0' in text  # NaN: in no bucket
    assert 'llm_proxy_upstream_duration_seconds_sum{backend="b"} NaN' in text
