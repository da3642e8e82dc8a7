"""A seeded fuzzer over every client endpoint: hostile bodies must get a 4xx in the client's dialect, never a 5xx.

Cases come from ``tests.fuzz_cases`` (mutations of captured and hand-written bodies, rebuilt alone from
``(seed, endpoint, index)``), sent in-process to ``ProxyApp`` over ``mock://`` upstreams: translation from
every client dialect to every backend dialect, with and without prompt edits, and proxy mode with prompt
edits and progress. With mock upstreams and no ``[[mock:...]]`` directives, nothing may answer 5xx: every
5xx is the proxy's own. Per case: no 5xx, an error body in the client's dialect, a complete response in
under 5 s, and nothing logged at ERROR or with a traceback. A smaller sample then goes to a real server
process, which must stay alive with no traceback in its log.

Each endpoint also gets the sweep: every field of every hand-written seed deleted or replaced by each kind of
value. ``FUZZ_CASES`` (random cases per endpoint, default 2000) and ``FUZZ_SEED`` (default 0) change the run;
a failure names each case so that ``python -m tests.fuzz_cases ENDPOINT INDEX [SEED]`` (or ``sweepINDEX``)
prints it.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

import llm_proxy
from llm_proxy.app.server import ProxyApp
from llm_proxy.dialects import names
from llm_proxy.upstream.mock import MockResponse, MockUpstream
from tests.error_shapes import error_shape_problem
from tests.fuzz_cases import (
    DIALECTS,
    ENDPOINTS,
    FRONTEND_MODELS,
    PROXY_PREFIX,
    SECRET,
    Case,
    Endpoint,
    fuzz_models,
    make_case,
    sweep_cases,
)
from tests.fuzz_seeds import seeds
from tests.inprocess import Answer, call
from tests.servers import make_config, write_config
from tests.test_cli import free_port, wait_healthy

SEED = int(os.environ.get("FUZZ_SEED", "0"))
CASES = int(os.environ.get("FUZZ_CASES", "2000"))
PROCESS_CASES = 60
"""Per endpoint, against the real server process (HTTP over loopback costs far more per case)."""
CASE_TIMEOUT = 5.0
SERVER = {"max_body_size": 8 << 20, "read_timeout": 5, "connect_timeout": 2}
"""8 MB keeps the few oversized cases (413) cheap while the 3 MB strings still pass."""


class LogTrap(logging.Handler):
    """Keeps every record at ERROR or above, or carrying a traceback, from the proxy's loggers."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.caught: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info is not None:
            self.caught.append(record)


@pytest.fixture
def log_trap() -> Iterator[LogTrap]:
    trap = LogTrap()
    logger = logging.getLogger("llm_proxy")
    level = logger.level
    logger.setLevel(logging.WARNING)  # whatever an earlier test configured, errors reach the trap
    logger.addHandler(trap)
    try:
        yield trap
    finally:
        logger.removeHandler(trap)
        logger.setLevel(level)


# ---------------------------------------------------------------------------------------------
# What every answer must look like
# ---------------------------------------------------------------------------------------------


# Markers of an in-stream error, per dialect: over a mock upstream, an accepted request never streams one.
_STREAM_ERRORS = {
    "claude": b"event: error",
    "openai-chat": b'data: {"error"',
    "openai-responses": b"event: response.failed",
    "bedrock": b":exception-type",
    "bedrock-converse": b":exception-type",
    "gemini": b'data: {"error"',
}


def answer_problem(endpoint: Endpoint, answer: Answer) -> str | None:
    if not answer.ended:
        return f"status {answer.status}: the response never ended"
    if SECRET.encode() in answer.body or any(SECRET in value for value in answer.headers.values()):
        return f"status {answer.status}: the answer echoes the client's credential"
    if answer.status >= 500:
        return f"status {answer.status}: {answer.body[:300]!r}"
    if answer.status >= 400:
        problem = error_shape_problem(endpoint.dialect, answer)
        return None if problem is None else f"status {answer.status}, {problem}: {answer.body[:300]!r}"
    if answer.status != 200:
        return f"status {answer.status}"
    if answer.headers.get("content-type", "").startswith("application/json"):
        try:
            orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            return "a 200 JSON answer that does not parse"
    elif _STREAM_ERRORS[endpoint.dialect] in answer.body:
        return f"an accepted stream carries an error event: {answer.body[-300:]!r}"
    return None


# ---------------------------------------------------------------------------------------------
# Running cases in-process
# ---------------------------------------------------------------------------------------------


_FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


class WatchedMock(MockUpstream):
    """The embedded mock as the proxy's transport, noting every request it refuses and every header no HTTP
    client could send.

    The mock decodes what it receives with the backend dialect's own codec. In translation mode the proxy
    wrote that request itself from one it accepted, so a refusal means the proxy turned a valid request
    into an invalid one (in proxy mode the client's body passes through, and refusals are expected).
    In-process, headers reach the mock as strings; over HTTP the client library would raise on a field
    holding CR, LF or NUL (or characters outside Latin-1), so those are checked here (RFC 9110, section 5).
    """

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[bytes] = []
        self.bad_headers: list[tuple[str, str]] = []

    async def send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, timeouts: object = None
    ) -> MockResponse:
        # The proxy reaches a ``mock://`` upstream through ``send`` (its transport), not ``respond``: watching
        # ``respond`` alone saw no request at all, and every refusal went unnoticed.
        self.bad_headers += [
            (k, v) for k, v in headers if not _FIELD_NAME.fullmatch(k) or not _FIELD_VALUE.fullmatch(v)
        ]
        response = await super().send(method, url, headers, body, timeouts)
        if response.status >= 400:
            self.refused.append(await response.read(1000))
        return response


@dataclass
class Report:
    endpoint: str
    cases: int = 0
    sweep: int = 0
    """How many of the cases were the systematic sweep (the rest are random)."""
    seconds: float = 0.0
    slowest: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, list[str]] = field(default_factory=dict)
    """Problem (with case-specific details cut) -> the cases that showed it."""

    def fail(self, case: Case, problem: str) -> None:
        self.failures.setdefault(problem[:120], []).append(case.describe()[:600])

    def summary(self) -> str:
        rate = self.cases / self.seconds if self.seconds else 0.0
        top = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.endpoint}: {self.cases} cases ({self.sweep} of the sweep) in {self.seconds:.1f} s ({rate:.0f}/s), "
            f"slowest {self.slowest * 1000:.0f} ms; statuses {top}"
        )

    def failure_text(self) -> str:
        lines = [self.summary()]
        for problem, cases in sorted(self.failures.items(), key=lambda item: -len(item[1])):
            lines.append(f"{len(cases)} x {problem}\n    e.g. {cases[0]}")
        return "\n".join(lines)


async def run_case(app: ProxyApp, mock: WatchedMock, case: Case, trap: LogTrap, report: Report) -> None:
    started = time.perf_counter()
    try:
        answer = await call(app, "POST", case.path, case.headers, case.body, timeout=CASE_TIMEOUT)
    except TimeoutError:
        report.fail(case, f"no complete answer within {CASE_TIMEOUT} s")
        return
    except Exception as exc:  # the app let an exception escape: the server would log it and drop the connection
        report.fail(case, f"the app raised {type(exc).__name__}: {exc}")
        return
    finally:
        elapsed = time.perf_counter() - started
        report.slowest = max(report.slowest, elapsed)
    report.statuses[answer.status] += 1
    problem = answer_problem(case.endpoint, answer)
    if problem is not None:
        report.fail(case, problem)
    if elapsed > CASE_TIMEOUT:
        report.fail(case, f"took {elapsed:.1f} s")
    if mock.refused and not case.path.startswith(PROXY_PREFIX + "/"):
        report.fail(case, f"the mock upstream refused the translated request: {mock.refused[0][:200]!r}")
    mock.refused.clear()
    if mock.bad_headers:
        report.fail(case, f"the proxy sent the upstream a header no HTTP client can send: {mock.bad_headers[0]!r:.200}")
    mock.bad_headers.clear()
    for record in trap.caught:
        raised = record.exc_info[1] if record.exc_info else None
        detail = f" ({type(raised).__name__}: {raised})" if raised is not None else ""
        report.fail(case, f"logged {record.levelname}: {record.getMessage()[:80]}{detail}")
    trap.caught.clear()


def fuzz_app() -> tuple[ProxyApp, WatchedMock]:
    mock = WatchedMock()
    return ProxyApp(make_config(fuzz_models(), SERVER), mock=mock), mock


@pytest.mark.parametrize("name", list(ENDPOINTS))
async def test_fuzz_endpoint(name: str, log_trap: LogTrap, record_property: Callable[[str, object], None]) -> None:
    endpoint = ENDPOINTS[name]
    app, mock = fuzz_app()
    report = Report(name)
    started = time.perf_counter()
    try:
        for index in range(CASES):
            await run_case(app, mock, make_case(SEED, endpoint, index), log_trap, report)
            report.cases += 1
        for case in sweep_cases(endpoint):
            await run_case(app, mock, case, log_trap, report)
            report.cases += 1
            report.sweep += 1
    finally:
        report.seconds = time.perf_counter() - started
        await app.upstream.close()
        await app.sessions.shutdown()
    record_property("fuzz", report.summary())  # listed at the end of the run by conftest's terminal summary
    assert report.cases == CASES + report.sweep
    assert report.sweep > 500
    assert not report.failures, report.failure_text()


# ---------------------------------------------------------------------------------------------
# A sample against a real server process
# ---------------------------------------------------------------------------------------------


def _post(port: int, case: Case) -> tuple[int, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CASE_TIMEOUT + 5)
    started = time.perf_counter()
    try:
        conn.putrequest("POST", case.path, skip_accept_encoding=True)
        for key, value in case.headers:
            conn.putheader(key, value)
        conn.putheader("content-length", str(len(case.body)))
        conn.endheaders(case.body)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


def test_fuzz_sample_against_server_process(tmp_path: Path) -> None:
    """The same cases over real HTTP: the process survives them all and logs no traceback."""
    port = free_port()
    config = write_config(tmp_path, fuzz_models(), {**SERVER, "host": "127.0.0.1", "port": port})
    log_path = tmp_path / "proxy.log"
    src = str(Path(llm_proxy.__file__).resolve().parents[1])  # run the code under test, not an installed copy
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llm_proxy", "--config", str(config)], stdout=log, stderr=log, env=env
        )
        try:
            wait_healthy(port, proc)
            statuses: Counter[int] = Counter()
            slow: list[str] = []
            for endpoint in ENDPOINTS.values():
                for index in range(PROCESS_CASES):
                    case = make_case(SEED, endpoint, index)
                    status, elapsed = _post(port, case)
                    statuses[status] += 1
                    if elapsed > CASE_TIMEOUT:
                        slow.append(case.describe()[:200])
            assert proc.poll() is None, "the proxy process died"
        finally:
            proc.terminate()
            proc.wait(15)
    text = log_path.read_text("utf-8", "replace")
    first = text.find("Traceback")
    assert first < 0, text[max(0, first - 400) : first + 2500]
    assert sum(statuses.values()) == PROCESS_CASES * len(ENDPOINTS)
    assert all(status < 500 for status in statuses), statuses
    assert not slow


def test_every_registered_dialect_is_fuzzed() -> None:
    """Clients and backends come from the registry; every client dialect has endpoints, seeds and a recogniser."""
    assert DIALECTS == names()
    assert {endpoint.dialect for endpoint in ENDPOINTS.values()} == set(names())
    assert set(FRONTEND_MODELS) == set(_STREAM_ERRORS) == set(names())
    for dialect in names():
        assert seeds(dialect)[0], dialect
        assert error_shape_problem(dialect, _json_answer(b"{}")) is not None, dialect
    routes = {(m.get("frontend_dialect"), m.get("backend_dialect")) for m in fuzz_models()}
    assert {(c, b) for c in names() for b in names()} <= routes


def test_cases_are_reproducible() -> None:
    """A case depends only on (seed, endpoint, index), so a failure can be rebuilt alone."""
    endpoint = ENDPOINTS["messages"]

    def key(case: Case) -> tuple[object, ...]:
        return case.path, case.headers, case.body, case.steps

    first = [key(make_case(SEED, endpoint, i)) for i in (0, 7, 1999)]
    again = [key(make_case(SEED, endpoint, i)) for i in (1999, 7, 0)][::-1]
    assert first == again
    assert [key(make_case(SEED + 1, endpoint, i)) for i in (0, 7, 1999)] != first


def _json_answer(body: bytes, **headers: str) -> Answer:
    return Answer(400, {"content-type": "application/json", **headers}, body, True)


def test_error_shapes_are_recognised() -> None:
    """The shape check itself: each dialect's error body passes, the others' do not."""
    claude = _json_answer(b'{"type":"error","error":{"type":"x","message":"m"}}')
    openai = _json_answer(b'{"error":{"message":"m","type":"t","param":null,"code":null}}')
    bedrock = _json_answer(b'{"message":"m"}', **{"x-amzn-errortype": "ValidationException"})
    gemini = _json_answer(b'{"error":{"code":400,"message":"m","status":"INVALID_ARGUMENT"}}')
    assert error_shape_problem("claude", claude) is None
    assert error_shape_problem("openai-chat", openai) is None
    assert error_shape_problem("openai-responses", openai) is None
    assert error_shape_problem("bedrock", bedrock) is None
    assert error_shape_problem("bedrock-converse", bedrock) is None
    assert error_shape_problem("gemini", gemini) is None
    assert error_shape_problem("gemini", openai) == "not a Google error body"
    assert error_shape_problem("gemini", _json_answer(gemini.body.replace(b"400", b"500"))) == (
        "Google error code 500 is not the HTTP status"
    )
    assert error_shape_problem("gemini", _json_answer(gemini.body.replace(b"INVALID_", b"NOT_"))) == (
        "Google error fields mistyped"
    )
    assert error_shape_problem("bedrock-converse", gemini) == "not a Bedrock error body"
    assert error_shape_problem("openai-chat", gemini) == "not an OpenAI error body"
    with pytest.raises(KeyError):
        error_shape_problem("a-seventh-dialect", openai)
    assert error_shape_problem("claude", openai) == "not an Anthropic error body"
    assert error_shape_problem("openai-chat", claude) == "not an OpenAI error body"
    assert error_shape_problem("bedrock", openai) == "not a Bedrock error body"
    assert error_shape_problem("bedrock", _json_answer(b'{"message":"m"}')) == "Bedrock error without x-amzn-errortype"
