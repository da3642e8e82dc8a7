"""The usage dashboard (``llm_proxy/ledger/dashboard``) in a real Chromium, against a scripted records API.

A small HTTP server on 127.0.0.1 serves the packaged files the way the proxy does (``/dashboard`` is
``index.html``, ``/dashboard/<name>`` any other file of the flat directory, read through importlib.resources,
behind HTTP Basic with the admin key) and answers ``/api/usage/records`` from a fixed list of records. The
expectations are computed here, in Python, from the same records: the number of intervals each series of
each chart has data in, and the totals the tiles must show to the cent.

Every page is watched (``tests/browser.py``): a console error, an uncaught error or any request leaving
127.0.0.1 fails the test. Set ``UPDATE_DOCS_SCREENSHOT=1`` to refresh ``docs/dashboard.png``.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import threading
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict
from fnmatch import fnmatch
from html.parser import HTMLParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Error, Page

from llm_proxy.ledger.record import UsageRecord
from tests.browser import WatchedPage, watched_page

REPO = Path(__file__).resolve().parents[1]
ADMIN_KEY = "admin-key-for-the-dashboard-test"
# The proxy may sit under a path behind a reverse proxy: the test serves it under one, so an absolute URL in
# the page (``/api/...``, ``/dashboard/...``) misses and fails the test.
MOUNT = "/gateway"
# A fixed "now" (not aligned to any bucket) makes every expectation reproducible; the page buckets by the
# server's since/now, never by the browser's clock.
NOW = 1_790_000_437.25
RANGE_SECONDS = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
BUCKET_SECONDS = {"1h": 60, "24h": 900, "7d": 7200, "30d": 43200}
MODELS = ("claude-sonnet", "gpt-4o", "llama-70b")
PRICES = {"claude-sonnet": (3e-6, 15e-6), "gpt-4o": (2.5e-6, 10e-6)}  # llama-70b has no known price
CLIENTS = ("alice", "ci-bot")
BACKENDS = ("primary", "fallback")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
# What the proxy should send with the page too: nothing but its own origin, no inline script.
CSP = "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


# Per model: typical duration and time to first token (seconds), so each model draws its own band.
LATENCY = {"claude-sonnet": (1.6, 0.45), "gpt-4o": (1.1, 0.3), "llama-70b": (2.4, 0.7)}


def _record(i: int, time: float) -> UsageRecord:
    rng = random.Random(i)  # one fixed stream per record: the same rows on every run
    model = MODELS[i % 3]
    status = 429 if i % 23 == 3 else 502 if i % 29 == 5 else 400 if i % 31 == 9 else 200
    ok = status == 200
    input_tokens = rng.randrange(200, 2400) if ok else 0
    output_tokens = rng.randrange(20, 900) if ok else 0
    price = PRICES.get(model)
    duration, ttft = LATENCY[model]
    return UsageRecord(
        time=time,
        request_id=f"req-{i:03d}",
        client=CLIENTS[i % 2],
        prefix="/",
        frontend_model=model,
        backend=BACKENDS[(i // 3) % 2] if status != 502 else "primary",
        backend_model=f"{model}-backend",
        frontend_dialect="openai_chat",
        backend_dialect="claude" if model == "claude-sonnet" else "openai_chat",
        status=status,
        duration=duration * rng.uniform(0.6, 1.5) if ok else rng.uniform(0.05, 0.3),
        ttft=ttft * rng.uniform(0.7, 1.4) if i % 2 == 0 and ok else None,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=rng.choice((0, 0, 512, 1024)) if ok else 0,
        cache_write_tokens=rng.choice((0, 0, 0, 300)) if ok else 0,
        reasoning_tokens=output_tokens // 4 if ok and model == "claude-sonnet" else 0,
        cost_usd=None if price is None else input_tokens * price[0] + output_tokens * price[1],
    )


def scripted_records() -> list[UsageRecord]:
    """300 requests spread over the last 24 hours (none in the last hour), plus a burst of 12 two hours ago."""
    spread = [_record(i, NOW - 3700 - i * 274.1) for i in range(300)]
    burst = [_record(300 + k, NOW - 7200 - k * 41.0) for k in range(12)]
    return sorted(spread + burst, key=lambda r: r.time)


RECORDS = scripted_records()


def records_since(since: str) -> list[UsageRecord]:
    return [r for r in RECORDS if r.time >= NOW - RANGE_SECONDS[since]]


# ---- the expectations, computed from the records -------------------------------------------------------------


def intervals(records: list[UsageRecord], key: Callable[[UsageRecord], str], size: int) -> dict[str, int]:
    """Per series name: how many buckets of ``size`` seconds hold at least one of ``records``."""
    buckets: dict[str, set[int]] = defaultdict(set)
    for r in records:
        buckets[key(r)].add(math.floor(r.time / size))
    return {name: len(found) for name, found in buckets.items()}


def expected_points(records: list[UsageRecord], size: int) -> dict[str, dict[str, int]]:
    """What each chart must draw: series name -> non-null points (a gap where a series has nothing)."""

    def model(r: UsageRecord) -> str:
        return r.frontend_model

    per_model = intervals(records, model, size)
    return {
        "requests-by-model": per_model,
        "tokens-by-model": per_model,
        "cost-by-model": intervals([r for r in records if r.cost_usd is not None], model, size),
        "requests-by-client": intervals(records, lambda r: r.client, size),
        "ttft-by-model": intervals([r for r in records if r.ttft is not None], model, size),
        "duration-by-model": per_model,
        "errors-by-backend": intervals(records, lambda r: r.backend, size),
    }


def tokens(r: UsageRecord) -> int:
    return r.input_tokens + r.output_tokens + r.cache_read_tokens + r.cache_write_tokens


def nearest_rank(values: list[float], p: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[min(len(ordered), max(1, math.ceil(p / 100 * len(ordered)))) - 1]


def seconds_text(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 1:
        return f"{math.floor(value * 1000 + 0.5)} ms"  # JavaScript's Math.round
    return f"{value:.2f} s"


# ---- the scripted server -------------------------------------------------------------------------------------


class DashboardServer:
    """The dashboard files and a scripted records API on an ephemeral 127.0.0.1 port, behind Basic auth."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bool]] = []  # (path with query, authorised)
        self.files = resources.files("llm_proxy.ledger").joinpath("dashboard")
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                authorised = server.authorised(self.headers.get("Authorization", ""))
                server.requests.append((self.path, authorised))
                if not authorised:
                    self.reply(HTTPStatus.UNAUTHORIZED, b"admin key needed", "text/plain", basic=True)
                    return
                url = urlsplit(self.path)
                path = url.path.removeprefix(MOUNT) if url.path.startswith(MOUNT + "/") else ""
                if path == "/api/usage/records":
                    self.records(parse_qs(url.query).get("since", [""])[0])
                elif path == "/dashboard":
                    self.file("index.html")
                elif path.startswith("/dashboard/"):
                    self.file(path.removeprefix("/dashboard/"))
                else:
                    self.reply(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

            def records(self, since: str) -> None:
                if since not in RANGE_SECONDS:
                    self.reply(HTTPStatus.BAD_REQUEST, b"bad since", "text/plain")
                    return
                rows = [asdict(r) for r in records_since(since)]
                body = {"since": NOW - RANGE_SECONDS[since], "now": NOW, "truncated": False, "records": rows}
                self.reply(HTTPStatus.OK, json.dumps(body).encode(), "application/json")

            def file(self, name: str) -> None:
                entry = server.files.joinpath(name)
                if "/" in name or name.startswith(".") or not name or not entry.is_file():
                    self.reply(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
                    return
                kind = CONTENT_TYPES.get(Path(name).suffix, "text/plain; charset=utf-8")
                self.reply(HTTPStatus.OK, entry.read_bytes(), kind)

            def reply(self, status: HTTPStatus, body: bytes, kind: str, *, basic: bool = False) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Content-Security-Policy", CSP)
                self.send_header("Cache-Control", "no-store")
                if basic:
                    self.send_header("WWW-Authenticate", 'Basic realm="llm-proxy admin", charset="UTF-8"')
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test reads self.requests instead

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def page_url(self) -> str:
        return f"{self.origin}{MOUNT}/dashboard"

    @staticmethod
    def authorised(header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return value.strip() == ADMIN_KEY
        if scheme.lower() != "basic":
            return False
        _user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        return password == ADMIN_KEY

    def __enter__(self) -> DashboardServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def dashboard_server() -> Iterator[DashboardServer]:
    with DashboardServer() as server:
        yield server


@pytest.fixture
def dashboard(chromium: Browser, dashboard_server: DashboardServer) -> Iterator[WatchedPage]:
    """The dashboard opened at its default range (24h) with the admin key, loaded; checked clean afterwards."""
    with watched_page(chromium, dashboard_server.origin, password=ADMIN_KEY) as watched:
        open_dashboard(watched.page, dashboard_server.page_url)
        yield watched
        watched.assert_clean()


def open_dashboard(page: Page, url: str, loads: int = 1) -> None:
    page.goto(url)
    wait_for_loads(page, loads)


def wait_for_loads(page: Page, loads: int) -> None:
    """Wait until the page has rendered its ``loads``-th answer (fail at once when it reports an error)."""
    page.wait_for_function(
        "n => (window.dashboardState && window.dashboardState.loads >= n) || document.body.dataset.status === 'error'",
        arg=loads,
        timeout=15000,
    )
    if page.locator("body").get_attribute("data-status") == "error":
        pytest.fail(f"the page reports: {page.locator('#status').inner_text()}")


def chart_state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("window.dashboardState")
    return state


def drawn_points(page: Page) -> dict[str, dict[str, int]]:
    charts = chart_state(page)["charts"]
    return {name: {s["label"]: s["points"] for s in chart["series"]} for name, chart in charts.items()}


def tile(page: Page, name: str) -> tuple[str, str]:
    root = page.locator(f'[data-tile="{name}"]')
    return root.locator("[data-value]").inner_text(), root.locator("[data-detail]").inner_text()


# ---- the page ------------------------------------------------------------------------------------------------


def test_every_chart_draws_the_scripted_records(
    dashboard: WatchedPage, dashboard_server: DashboardServer, tmp_path: Path
) -> None:
    page = dashboard.page
    records = records_since("24h")
    assert page.locator("body").get_attribute("data-status") == "ready"
    assert chart_state(page)["bucket"] == BUCKET_SECONDS["24h"]

    expected = expected_points(records, BUCKET_SECONDS["24h"])
    assert drawn_points(page) == expected
    for name, series in expected.items():
        root = page.locator(f'[data-chart="{name}"]')
        assert root.get_attribute("data-points") == str(sum(series.values())), name
        assert sum(series.values()) > 0, name
        assert root.locator("canvas").count() >= 1, name  # uPlot drew into it
        label = root.locator("canvas").first.get_attribute("aria-label") or ""
        assert all(f"{series_name}: {n} intervals" in label for series_name, n in series.items()), label
        legend = root.locator(".u-legend .u-label").all_inner_texts()
        assert sorted(legend[1:]) == sorted(series), name  # the first label is the time axis
    # What the points add up to: every request counted once per model and client, every priced dollar drawn.
    totals = {
        name: {s["label"]: s["total"] for s in chart["series"]} for name, chart in chart_state(page)["charts"].items()
    }
    assert totals["requests-by-model"] == {m: sum(1 for r in records if r.frontend_model == m) for m in MODELS}
    assert totals["requests-by-client"] == {c: sum(1 for r in records if r.client == c) for c in CLIENTS}
    assert totals["tokens-by-model"] == {m: sum(tokens(r) for r in records if r.frontend_model == m) for m in MODELS}
    for model, drawn in totals["cost-by-model"].items():
        assert drawn == pytest.approx(sum(r.cost_usd or 0 for r in records if r.frontend_model == model)), model
    # The cost chart has no series for the unpriced model: a gap is not a zero.
    assert "llama-70b" not in expected["cost-by-model"]
    # Scripted so that the burst puts several requests of one model into one bucket: fewer points than rows.
    assert sum(expected["requests-by-model"].values()) < len(records)

    # Relative URLs only, every one behind the admin key: the browser answered the challenge and reused it.
    paths = [path for path, authorised in dashboard_server.requests if authorised]
    assert f"{MOUNT}/api/usage/records?since=24h" in paths
    assert {f"{MOUNT}/dashboard{name}" for name in ("", "/dashboard.js", "/uPlot.iife.min.js")} <= set(paths)
    assert all(path.startswith(MOUNT + "/") for path in paths), paths

    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        page.screenshot(path=str(REPO / "docs" / "dashboard.png"), full_page=True)


def test_the_tiles_show_the_exact_totals(dashboard: WatchedPage) -> None:
    page = dashboard.page
    records = records_since("24h")
    errors = sum(1 for r in records if r.status >= 400)
    priced = [r.cost_usd for r in records if r.cost_usd is not None]
    unpriced = len(records) - len(priced)
    cost = sum(priced)
    assert 0 < unpriced < len(records) and 0 < errors < len(records)
    assert abs(cost * 100 % 1 - 0.5) > 0.01, "the scripted cost must not sit on a rounding edge"

    assert tile(page, "requests")[0] == f"{len(records):,}"
    assert tile(page, "requests")[1] == "3 models, 2 client keys"
    assert tile(page, "tokens")[0] == f"{sum(tokens(r) for r in records):,}"
    assert tile(page, "cost") == (f"${cost:.2f}", f"{unpriced} unpriced")
    assert tile(page, "errors") == (f"{100 * errors / len(records):.1f}%", f"{errors} of {len(records)} requests")


def test_the_tables_show_percentiles_and_error_rates(dashboard: WatchedPage) -> None:
    page = dashboard.page
    records = records_since("24h")
    latency = page.locator('[data-table="latency"] tbody tr')
    rows = {row[0]: row[1:] for row in (r.split("\t") for r in latency.all_inner_texts())}
    for model in MODELS:
        mine = [r for r in records if r.frontend_model == model]
        ttfts = [r.ttft for r in mine if r.ttft is not None]
        durations = [r.duration for r in mine]
        assert rows[model] == [
            str(len(mine)),
            seconds_text(nearest_rank(ttfts, 50)),
            seconds_text(nearest_rank(ttfts, 95)),
            seconds_text(nearest_rank(durations, 50)),
            seconds_text(nearest_rank(durations, 95)),
        ], model
    backends = page.locator('[data-table="backends"] tbody tr')
    rows = {row[0]: row[1:] for row in (r.split("\t") for r in backends.all_inner_texts())}
    assert set(rows) == set(BACKENDS)
    for backend in BACKENDS:
        mine = [r for r in records if r.backend == backend]
        errors = sum(1 for r in mine if r.status >= 400)
        assert rows[backend] == [str(len(mine)), str(errors), f"{100 * errors / len(mine):.1f}%"], backend


def test_a_range_redraws_with_its_own_buckets(dashboard: WatchedPage) -> None:
    page = dashboard.page
    page.get_by_label("7 days").check()
    wait_for_loads(page, 2)
    assert page.url.endswith("#7d")
    assert chart_state(page)["bucket"] == BUCKET_SECONDS["7d"]
    assert drawn_points(page) == expected_points(records_since("7d"), BUCKET_SECONDS["7d"])
    # Reloading keeps the range (it lives in the URL's fragment).
    open_dashboard(page, page.url)
    assert chart_state(page)["range"] == "7d"


def test_an_empty_range_says_so_instead_of_drawing(dashboard: WatchedPage) -> None:
    page = dashboard.page
    assert records_since("1h") == []
    page.get_by_label("1 hour").check()
    wait_for_loads(page, 2)
    assert page.locator("body").get_attribute("data-status") == "empty"
    assert page.locator("#empty").is_visible()
    assert page.locator("#empty").inner_text() == "No requests in this range."
    assert not page.locator("#charts").is_visible()
    assert page.locator("[data-chart] canvas").count() == 0
    assert set(page.locator("[data-chart]").evaluate_all("els => els.map(e => e.dataset.points)")) == {"0"}
    assert tile(page, "requests") == ("0", "")
    assert tile(page, "cost") == ("$0.00", "")
    assert tile(page, "errors") == ("–", "")
    # And back: the charts return.
    page.get_by_label("24 hours").check()
    wait_for_loads(page, 3)
    assert not page.locator("#empty").is_visible()
    assert drawn_points(page) == expected_points(records_since("24h"), BUCKET_SECONDS["24h"])


def test_a_failed_load_is_reported_on_the_page(chromium: Browser, dashboard_server: DashboardServer) -> None:
    with watched_page(chromium, dashboard_server.origin, password=ADMIN_KEY) as watched:
        page = watched.page
        open_dashboard(page, dashboard_server.page_url)
        page.route("**/api/usage/records*", lambda route: route.fulfill(status=500, body="boom"))
        page.get_by_role("button", name="Refresh").click()
        # A locator wait, not wait_for_function: a string predicate polled under load can trip the page's CSP
        # (no 'unsafe-eval'), which the browser reports as a console error of its own.
        page.locator("body[data-status='error']").wait_for(timeout=15000)
        assert page.locator("#status").inner_text() == "Could not load usage records: HTTP 500"
        # The browser's own line about the 500 is the only console error; the page threw nothing.
        assert [e for e in watched.console_errors if "status of 500" not in e] == []
        assert watched.page_errors == [] and watched.foreign_requests == []


def test_auto_refresh_reloads_every_minute(chromium: Browser, dashboard_server: DashboardServer) -> None:
    with watched_page(chromium, dashboard_server.origin, password=ADMIN_KEY) as watched:
        page = watched.page
        page.clock.install()
        open_dashboard(page, dashboard_server.page_url)
        page.get_by_label("Refresh every minute").check()
        page.clock.run_for(59_000)
        assert chart_state(page)["loads"] == 1
        page.clock.run_for(2_000)
        wait_for_loads(page, 2)
        page.get_by_label("Refresh every minute").uncheck()
        page.clock.run_for(120_000)
        assert chart_state(page)["loads"] == 2
        watched.assert_clean()


def test_dark_scheme_draws_the_same_charts(
    chromium: Browser, dashboard_server: DashboardServer, tmp_path: Path
) -> None:
    with watched_page(chromium, dashboard_server.origin, password=ADMIN_KEY, color_scheme="dark") as watched:
        open_dashboard(watched.page, dashboard_server.page_url)
        background = watched.page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(15, 19, 24)"
        assert drawn_points(watched.page) == expected_points(records_since("24h"), BUCKET_SECONDS["24h"])
        watched.page.screenshot(path=str(tmp_path / "dashboard-dark.png"), full_page=True)
        watched.assert_clean()


def test_without_the_admin_key_the_page_is_refused(chromium: Browser, dashboard_server: DashboardServer) -> None:
    before = len(dashboard_server.requests)
    with watched_page(chromium, dashboard_server.origin) as watched:
        # Headless Chromium has no login prompt: the challenge cancels the navigation.
        with pytest.raises(Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
            watched.page.goto(dashboard_server.page_url)
        assert watched.foreign_requests == []
    assert dashboard_server.requests[before:] == [(f"{MOUNT}/dashboard", False)]


def test_a_request_off_the_origin_is_caught(chromium: Browser, dashboard_server: DashboardServer) -> None:
    """The guards themselves: the CSP stops a fetch to another host, the route guard refuses a navigation."""
    with watched_page(chromium, dashboard_server.origin, password=ADMIN_KEY) as watched:
        open_dashboard(watched.page, dashboard_server.page_url)
        watched.page.evaluate("fetch('http://example.invalid/font.woff2').catch(() => null)")
        assert any("Content Security Policy" in error for error in watched.console_errors), watched.console_errors
        with pytest.raises(Error, match="ERR_BLOCKED_BY_CLIENT"):
            watched.page.goto("http://example.invalid/")
        assert watched.foreign_requests == ["http://example.invalid/"]


# ---- the aggregation, unit by unit (dashboard.js's pure functions, called in the browser) ---------------------


@pytest.fixture(scope="module")
def lib(chromium: Browser, dashboard_server: DashboardServer) -> Iterator[Callable[[str, Any], Any]]:
    """``lib(expression, arg)``: evaluate ``expression`` with ``L`` (window.dashboardLib) and ``arg`` bound."""
    with watched_page(chromium, dashboard_server.origin, password=ADMIN_KEY) as watched:
        open_dashboard(watched.page, dashboard_server.page_url)

        def call(expression: str, arg: Any = None) -> Any:
            return watched.page.evaluate(f"(arg) => {{ const L = window.dashboardLib; return {expression}; }}", arg)

        yield call
        watched.assert_clean()


def test_percentiles_are_nearest_rank(lib: Callable[[str, Any], Any]) -> None:
    shuffled = [(i * 37) % 100 + 1 for i in range(100)]  # 1..100, out of order
    assert sorted(shuffled) == list(range(1, 101))
    got = lib("[50, 95, 99, 100, 0, 1].map(p => L.percentile(arg, p))", shuffled)
    assert got == [50, 95, 99, 100, 1, 1]
    assert lib("L.percentile([], 95)", None) is None
    assert lib("L.percentile([7], 95)", None) == 7
    assert lib("L.percentile([3, null, NaN, 1, 2], 50)", None) == 2


def test_bucket_sizes_follow_the_range(lib: Callable[[str, Any], Any]) -> None:
    assert lib("Object.fromEntries(Object.keys(L.RANGES).map(r => [r, L.bucketSize(r)]))", None) == BUCKET_SECONDS


def test_bucket_edges(lib: Callable[[str, Any], Any]) -> None:
    starts = lib("L.buckets(arg[0], arg[1], 60)", [1000, 4600])
    assert starts[0] == 960 and starts[-1] == 4560 and len(starts) == 61  # the partial buckets at both ends
    assert lib("L.buckets(1020, 1020, 60)", None) == [1020]  # a start exactly on an edge
    # A time on an edge opens the next bucket; a hair before it is still in the previous one.
    assert lib("[1019.999, 1020, 1079.999, 1080].map(t => L.bucketIndex(t, 1000, 60))", None) == [0, 1, 1, 2]


def test_time_series_leave_gaps_and_fold_the_long_tail(lib: Callable[[str, Any], Any]) -> None:
    rows = [
        {"time": 1000, "m": "a"},
        {"time": 1010, "m": "a"},
        {"time": 1130, "m": "a"},
        {"time": 1070, "m": "b"},
    ]
    got = lib(
        "L.timeSeries(arg, {since: 1000, now: 1150, size: 60}, L.grouping(arg, r => r.m), L.reducers.count)", rows
    )
    assert got["x"] == [960, 1020, 1080, 1140]
    assert [(s["label"], s["values"], s["points"]) for s in got["series"]] == [
        ("a", [2, None, 1, None], 2),
        ("b", [None, 1, None, None], 1),
    ]
    many = [{"k": f"k{i}"} for i in range(10) for _ in range(10 - i)]  # k0 busiest, k9 quietest
    names = lib("L.grouping(arg, r => r.k).names", many)
    assert names == ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "(other)"]


def test_summary_counts_unpriced_and_errors(lib: Callable[[str, Any], Any]) -> None:
    rows = [
        {"status": 200, "cost_usd": 0.5, "input_tokens": 10, "output_tokens": 5, "cache_read_tokens": 1},
        {"status": 500, "cost_usd": None, "input_tokens": 0, "output_tokens": 0},
        {"status": 429, "cost_usd": 0.25, "input_tokens": 3, "output_tokens": 0, "cache_write_tokens": 2},
        {"status": 200, "cost_usd": None, "input_tokens": 1, "output_tokens": 1, "reasoning_tokens": 1},
    ]
    summary = lib("L.summarize(arg)", rows)
    assert {k: summary[k] for k in ("requests", "tokens", "cost", "priced", "unpriced", "errors", "errorRate")} == {
        "requests": 4,
        "tokens": 23,
        "cost": 0.75,
        "priced": 2,
        "unpriced": 2,
        "errors": 2,
        "errorRate": 50,
    }
    assert lib("[L.formatCost(0), L.formatCost(0.004), L.formatCost(12.345678)]", None) == [
        "$0.00",
        "< $0.01",
        "$12.35",
    ]


def test_the_scripted_records_are_valid_rows() -> None:
    """The records the API serves are UsageRecords (so the page is tested on the shape the ledger writes)."""
    assert {r.frontend_model for r in RECORDS} == set(MODELS)
    assert {r.client for r in RECORDS} == set(CLIENTS)
    assert {r.backend for r in RECORDS} == set(BACKENDS)
    assert any(r.ttft is not None for r in RECORDS) and any(r.cost_usd is None for r in RECORDS)


def test_the_files_ship_in_the_wheel_and_the_page_names_only_them() -> None:
    """A flat directory the package-data rule covers, and every src/href of index.html one of its files."""
    directory = resources.files("llm_proxy.ledger").joinpath("dashboard")
    names = sorted(entry.name for entry in directory.iterdir())
    assert all(directory.joinpath(name).is_file() for name in names), "the directory must stay flat"
    rules = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert all(any(fnmatch(f"dashboard/{name}", rule) for rule in rules["llm_proxy.ledger"]) for name in names)

    class Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.urls: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.urls += [value for key, value in attrs if key in ("src", "href") and value]

    links = Links()
    links.feed(directory.joinpath("index.html").read_text())
    local = [url for url in links.urls if url != "data:,"]
    assert local and all(url.startswith("dashboard/") for url in local), local
    assert {url.removeprefix("dashboard/") for url in local} <= set(names)
    assert {"uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE"} <= set(names)
    assert "v1.6.32" in directory.joinpath("uPlot.iife.min.js").read_text()[:100]
    assert "uPlot v1.6.32" in directory.joinpath("index.html").read_text()
