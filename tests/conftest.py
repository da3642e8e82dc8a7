"""Fixtures shared by the whole test suite."""

from collections.abc import Iterator

import pytest

from tests.browser import chromium
from tests.postgres_server import postgres
from tests.redis_server import disposable_redis, redis_server, redis_url
from tests.servers import RecordingUpstream, ServerThread, close_sdk_clients, running_upstream

__all__ = ["chromium", "disposable_redis", "postgres", "redis_server", "redis_url"]


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    """SDK clients made by the tests close their connections, so no socket is left to the garbage collector."""
    yield
    close_sdk_clients()


@pytest.fixture
def recording() -> Iterator[tuple[RecordingUpstream, ServerThread]]:
    """A recording upstream on an ephemeral port (set ``.handler`` to script its answers)."""
    fake = RecordingUpstream()
    with running_upstream(fake) as server:
        yield fake, server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The fuzzer's case counts and rates (``record_property("fuzz", ...)``), shown after every run."""
    reports = terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
    properties = [prop for report in reports for prop in getattr(report, "user_properties", [])]
    lines = [str(value) for name, value in properties if name == "fuzz"]
    if lines:
        terminalreporter.write_sep("-", "fuzzer")
        for line in lines:
            terminalreporter.write_line(line)
