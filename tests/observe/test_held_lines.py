"""Access lines held by the proxy's own handler: the same bytes as the logging path, written in order and in
time, and never lost at a normal exit or a SIGTERM; any other handler on the way means the logging path.

In-process tests use a private logger whose only handler is a ``HoldingStreamHandler`` (``private_logger``: pytest's
own handlers sit on the root logger); the end-to-end ones run ``llm-proxy`` with its stderr in a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import importlib.util
import io
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from llm_proxy.app.serve import configure_logging
from llm_proxy.observe.held_lines import FLUSH_AFTER, FLUSH_SIZE, WRITE_SIZE, HoldingStreamHandler, holder
from llm_proxy.observe.logs import AccessLine, RequestIdFilter, formatter
from llm_proxy.observe.redact import Redactor
from tests.observe.test_logs import ARGS, FIELDS, MESSAGE, quiet_switches
from tests.servers import ends_on_sigterm, write_config
from tests.test_cli import free_port, wait_healthy

REPO = Path(__file__).resolve().parents[2]
SECRET = "sk-held-secret-0123456789"
SECRET_ARGS = (*ARGS[:-1], f" upstream said {SECRET}")
SECRET_FIELDS = {**FIELDS, "note": f"upstream said {SECRET}"}


class Writes(io.StringIO):
    """A stream that remembers each write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def private_logger() -> logging.Logger:
    """A logger of its own: no parent (its records reach its own handlers only) and not in the logging module's
    registry. pytest (9.1 and later) adds its capture handler to every registered logger that does not propagate,
    at the start of each test; a registered logger with ``propagate = False`` would have it too."""
    logger = logging.Logger("llm_proxy.test.held.access", logging.INFO)
    assert logger.parent is None
    return logger


@pytest.fixture
def held() -> Iterator[tuple[logging.Logger, HoldingStreamHandler, Writes]]:
    """A logger whose records reach one ``HoldingStreamHandler`` only, formatted as the proxy's text lines."""
    logger = private_logger()
    stream = Writes()
    handler = HoldingStreamHandler(stream)
    handler.setFormatter(formatter("text", Redactor([SECRET])))
    handler.addFilter(RequestIdFilter())
    logger.addHandler(handler)
    try:
        yield logger, handler, stream
    finally:
        handler.close()


class HeldThenPlain:
    """One logger, and two handlers with the proxy's filter and formatter for ``log_format``: first the holding
    handler alone (``holding``), then, after ``switch``, a plain ``StreamHandler`` alone (``plain``)."""

    def __init__(self, log_format: str) -> None:
        self.logger = private_logger()
        redactor = Redactor([SECRET])
        self.held_stream, self.plain_stream = io.StringIO(), io.StringIO()
        self.holding = HoldingStreamHandler(self.held_stream)
        self.plain = logging.StreamHandler(self.plain_stream)
        for handler in (self.holding, self.plain):
            handler.setFormatter(formatter(log_format, redactor))
            handler.addFilter(RequestIdFilter())

    def switch(self) -> None:
        """What the holding handler holds is written; from now on the plain handler alone gets the records."""
        self.holding.flush()
        self.logger.removeHandler(self.holding)
        self.logger.addHandler(self.plain)


@contextlib.contextmanager
def held_then_plain(log_format: str) -> Iterator[HeldThenPlain]:
    pair = HeldThenPlain(log_format)
    pair.logger.addHandler(pair.holding)
    yield pair


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_held_line_is_the_logging_paths_line(log_format: str) -> None:
    """Same record, same formatter: the held line equals the line ``Logger.handle`` writes, secret masked."""
    fields = SECRET_FIELDS if log_format == "json" else None
    with held_then_plain(log_format) as pair:
        logger, holding, held_stream = pair.logger, pair.holding, pair.held_stream
        assert holder(logger) is holding
        record = AccessLine(logger, MESSAGE, __file__).record(SECRET_ARGS, "rid-held", fields)

        async def hold() -> str:
            holding.hold(record)
            return held_stream.getvalue()

        assert asyncio.run(hold()) == ""  # held, not written
        pair.switch()
        assert holder(logger) is None
        logger.handle(record)
    text = pair.held_stream.getvalue()
    assert text == pair.plain_stream.getvalue() and text.endswith("\n") and text.count("\n") == 1
    assert SECRET not in text and "[redacted]" in text
    if log_format == "json":
        doc = orjson.loads(text)
        assert doc["request_id"] == "rid-held" and doc["note"] == "upstream said [redacted]"
    else:
        assert text.endswith(" upstream said [redacted] [request rid-held]\n")


@pytest.mark.usefixtures(quiet_switches.__name__)  # as configure_logging sets them
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_lines_written_one_after_another_are_the_logging_paths_lines(log_format: str) -> None:
    """Lines made by ``AccessLine.write`` one after another and held are the logging path's lines (but for the
    time, which moves on)."""
    fields = SECRET_FIELDS if log_format == "json" else None

    def write(line: AccessLine, n: int) -> None:
        line.write((*SECRET_ARGS[:5], 1.5 * n, n, SECRET_ARGS[7]), f"rid-{n}", fields and {**fields, "bytes": n})

    async def run(line: AccessLine) -> None:
        for n in range(3):
            write(line, n)
            await asyncio.sleep(0.002)  # another millisecond, another time

    with held_then_plain(log_format) as pair:
        line = AccessLine(pair.logger, MESSAGE, __file__)
        asyncio.run(run(line))
        pair.switch()
        for n in range(3):
            write(line, n)
    held_lines, plain_lines = pair.held_stream.getvalue().splitlines(), pair.plain_stream.getvalue().splitlines()
    assert len(held_lines) == 3
    if log_format == "json":
        held_docs = [orjson.loads(text) for text in held_lines]
        plain_docs = [orjson.loads(text) for text in plain_lines]
        for doc in (*held_docs, *plain_docs):
            doc.pop("time")
        assert held_docs == plain_docs and [d["request_id"] for d in held_docs] == ["rid-0", "rid-1", "rid-2"]
        assert [d["bytes"] for d in held_docs] == [0, 1, 2]
    else:
        assert [text.split(" INFO ", 1)[1] for text in held_lines] == [
            text.split(" INFO ", 1)[1] for text in plain_lines
        ]
        assert held_lines[2].endswith(" 3.0ms 2B upstream said [redacted] [request rid-2]")
    assert SECRET not in pair.held_stream.getvalue()


@pytest.mark.usefixtures(quiet_switches.__name__)  # as configure_logging sets them
@pytest.mark.parametrize(
    ("log_format", "fields"),
    [
        ("text", None),
        ("json", SECRET_FIELDS),
        ("json", {**SECRET_FIELDS, "level": "custom"}),  # a key of the line's head: the merged object's bytes
        ("json", {"note": SECRET}),
        ("json", {}),
    ],
    ids=["text", "json", "json-head-key", "json-one-field", "json-no-field"],
)
@pytest.mark.parametrize("rid", ["rid-direct", "-"])
def test_a_line_made_without_a_record_is_the_records_line_byte_for_byte(
    log_format: str, fields: dict[str, object] | None, rid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the proxy's own filter and formatter, ``AccessLine.write`` makes the line from its values (no record):
    at the same instant, the same bytes as the record's line through the logging path, secret masked."""
    # the third line in the second line's second: only its milliseconds are new (the formatter's short way)
    instants = iter([1_790_000_000_123_456_789, 1_790_000_001_987_654_321, 1_790_000_001_999_000_000] * 2)
    monkeypatch.setattr(time, "time_ns", lambda: next(instants))
    made: list[logging.LogRecord] = []
    monkeypatch.setattr(AccessLine, "record", _counting(AccessLine.record, made))

    def write_three(line: AccessLine) -> None:
        line.write(SECRET_ARGS, rid, fields)
        line.write((*SECRET_ARGS[:5], 0.05, 7, ""), rid, fields)
        line.write((*SECRET_ARGS[:5], 0.25, 8, ""), rid, fields)

    async def on_a_loop(line: AccessLine) -> None:
        write_three(line)

    with held_then_plain(log_format) as pair:
        line = AccessLine(pair.logger, MESSAGE, __file__)
        asyncio.run(on_a_loop(line))
        pair.switch()
        assert made == []  # no record on the held path
        write_three(line)
        assert len(made) == 3
    text = pair.held_stream.getvalue()
    assert text == pair.plain_stream.getvalue() and text.count("\n") == 3
    assert SECRET not in text and "[redacted]" in text
    if fields is not SECRET_FIELDS and fields is not None:
        assert [orjson.loads(doc).get("level") for doc in text.splitlines()] == [fields.get("level", "INFO")] * 3
        return
    if log_format == "text":
        first, second, third = text.splitlines()
        assert [line.split(" ", 2)[1][-4:] for line in (first, second, third)] == [",123", ",987", ",999"]
        assert second.endswith(" 0.1ms 7B" + ("" if rid == "-" else f" [request {rid}]"))
        assert third.split(" ", 2)[1][:-4] == second.split(" ", 2)[1][:-4]
        assert third.endswith(" 0.2ms 8B" + ("" if rid == "-" else f" [request {rid}]"))
    else:
        docs = [orjson.loads(doc) for doc in text.splitlines()]
        assert [d["time"][-4:] for d in docs] == [",123", ",987", ",999"] and {d["request_id"] for d in docs} == {rid}
        assert list(docs[0])[:5] == ["request_id", "time", "level", "logger", "message"]


def test_a_handler_with_another_filter_or_formatter_gets_a_record(
    held: tuple[logging.Logger, HoldingStreamHandler, Writes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filter or formatter other than the proxy's own on the holding handler: each line is a record again, seen
    by that filter or formatted by that formatter."""
    logger, handler, stream = held
    made: list[logging.LogRecord] = []
    monkeypatch.setattr(AccessLine, "record", _counting(AccessLine.record, made))
    line = AccessLine(logger, MESSAGE, __file__)
    seen: list[str] = []

    def extra(record: logging.LogRecord) -> bool:
        seen.append(record.getMessage())
        return True

    handler.addFilter(extra)
    line.write(ARGS, "rid-1", None)
    assert len(made) == 1 and len(seen) == 1
    handler.removeFilter(extra)
    line.write(ARGS, "rid-2", None)
    assert len(made) == 1  # the proxy's own filter and formatter again: no record
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    line.write(ARGS, "rid-3", None)
    assert len(made) == 2 and stream.getvalue().splitlines()[-1] == "INFO " + MESSAGE % ARGS


def _counting(
    record: Callable[..., logging.LogRecord], made: list[logging.LogRecord]
) -> Callable[..., logging.LogRecord]:
    def counted(self: AccessLine, *args: Any) -> logging.LogRecord:
        made.append(made_record := record(self, *args))
        return made_record

    return counted


def test_access_line_write_holds_when_the_handler_is_the_only_one(
    held: tuple[logging.Logger, HoldingStreamHandler, Writes],
) -> None:
    logger, handler, stream = held
    line = AccessLine(logger, MESSAGE, __file__)
    line.write(ARGS, "rid-1", None)  # no running loop: written at once
    assert stream.writes and stream.writes[-1].endswith(" [request rid-1]\n")

    async def two() -> str:
        line.write(ARGS, "rid-2", None)
        line.write(ARGS, "rid-3", None)
        return stream.getvalue()

    before = stream.getvalue()
    assert asyncio.run(two()) == before  # held on a loop
    handler.flush()
    assert stream.getvalue().count("\n") == 3 and stream.writes[-1].count("\n") == 2  # one write for both


def test_held_lines_go_before_a_later_record_in_the_same_write(
    held: tuple[logging.Logger, HoldingStreamHandler, Writes],
) -> None:
    logger, handler, stream = held
    line = AccessLine(logger, MESSAGE, __file__)

    async def run() -> None:
        line.write(ARGS, "rid-1", None)
        line.write(ARGS, "rid-2", None)
        logger.warning("upstream %s is slow", "b")

    asyncio.run(run())
    written = stream.getvalue().splitlines()
    assert [text.rsplit(" ", 1)[-1] for text in written] == ["rid-1]", "rid-2]", "slow"]
    assert " WARNING " in written[2]
    assert len(stream.writes) == 1


def test_the_timer_writes_the_lines_without_more_traffic(
    held: tuple[logging.Logger, HoldingStreamHandler, Writes],
) -> None:
    logger, handler, stream = held
    line = AccessLine(logger, MESSAGE, __file__)
    timers: list[float] = []

    async def run() -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        call_later = loop.call_later

        def counted(delay: float, callback: object, *args: object) -> asyncio.TimerHandle:
            if getattr(callback, "__self__", None) is handler:  # asyncio.sleep's own timers aside
                timers.append(delay)
            return call_later(delay, callback, *args)  # type: ignore[arg-type]

        loop.call_later = counted  # type: ignore[method-assign,assignment]
        for n in range(20):  # fewer bytes than one write takes
            line.write(ARGS, f"rid-{n}", None)
        early = stream.getvalue()
        await asyncio.sleep(FLUSH_AFTER + 0.1)
        line.write(ARGS, "rid-late", None)  # the buffer was emptied: a new timer
        await asyncio.sleep(FLUSH_AFTER + 0.1)
        return early, stream.getvalue()

    early, late = asyncio.run(run())
    assert early == ""
    assert late.count("\n") == 21 and late.endswith("[request rid-late]\n")
    assert timers == [FLUSH_AFTER, FLUSH_AFTER]  # one per batch, not one per line
    assert len(stream.writes) == 2


def test_a_line_held_during_a_write_goes_out_with_the_next_write() -> None:
    """``hold_line`` takes no lock: a line held while a write is under way (from another thread, here from
    inside the stream's ``write``) is neither lost nor written twice: it stays for the next write."""

    class Intruding(Writes):
        def write(self, text: str) -> int:
            if len(self.writes) == 0:
                handler.hold_line("held during the write\n")
            return super().write(text)

    stream = Intruding()
    handler = HoldingStreamHandler(stream)

    async def run() -> None:
        handler.hold_line("first\n")
        handler.hold_line("second\n")
        handler.flush()

    try:
        asyncio.run(run())
        assert stream.writes == ["first\nsecond\n"]
        handler.flush()
        assert stream.writes == ["first\nsecond\n", "held during the write\n"]
    finally:
        handler.close()


def test_lines_held_in_one_thread_while_another_writes_are_each_written_once_in_order(
    held: tuple[logging.Logger, HoldingStreamHandler, Writes],
) -> None:
    """Lines held by one thread while another flushes (a record emitted, the timer) are all written, once
    each, in the order they were held."""
    _, handler, stream = held
    count = 20_000
    done = threading.Event()

    def hold() -> None:
        for n in range(count):
            handler.hold_line(f"line {n}\n")
        done.set()

    holder_thread = threading.Thread(target=hold)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the threads take turns as often as they can
    try:
        holder_thread.start()
        flushes = 0
        while not done.is_set():
            handler.flush()
            flushes += 1
        holder_thread.join()
    finally:
        sys.setswitchinterval(interval)
    handler.flush()
    assert stream.getvalue().splitlines() == [f"line {n}" for n in range(count)]
    assert flushes > 1


def test_a_full_buffer_is_written_in_whole_lines_of_at_most_a_pipes_atomic_write(
    held: tuple[logging.Logger, HoldingStreamHandler, Writes],
) -> None:
    logger, handler, stream = held
    line = AccessLine(logger, MESSAGE, __file__)
    long_args = (*ARGS[:-1], " " + "x" * (WRITE_SIZE + 100))

    async def run() -> int:
        count = 0
        while not stream.writes and count < 10_000:
            line.write(ARGS if count != 3 else long_args, f"rid-{count}", None)
            count += 1
        return count

    count = asyncio.run(run())
    text = stream.getvalue()
    assert text.count("\n") == count and FLUSH_SIZE <= len(text) < FLUSH_SIZE + 200  # at the size, not the timer
    assert all(write.endswith("\n") for write in stream.writes)
    long_line = [write for write in stream.writes if len(write) > WRITE_SIZE]
    assert len(long_line) == 1 and long_line[0].count("\n") == 1  # a longer line goes alone
    assert all(len(write.encode()) <= WRITE_SIZE for write in stream.writes if write not in long_line)
    assert len(stream.writes) <= FLUSH_SIZE // (WRITE_SIZE - 200) + 3
    handler.flush()


def test_non_ascii_lines_are_cut_by_their_worst_case_size(
    held: tuple[logging.Logger, HoldingStreamHandler, Writes],
) -> None:
    logger, handler, stream = held
    line = AccessLine(logger, MESSAGE, __file__)

    async def run() -> None:
        for n in range(40):
            line.write((*ARGS[:-1], " 日本語" * 20), f"rid-{n}", None)

    asyncio.run(run())
    handler.flush()
    assert stream.getvalue().count("\n") == 40
    assert all(write.endswith("\n") and len(write.encode()) <= WRITE_SIZE for write in stream.writes)


@pytest.mark.parametrize("other", ["caplog", "extra handler", "logger filter", "disabled"])
def test_any_other_handler_or_filter_means_the_logging_path(
    held: tuple[logging.Logger, HoldingStreamHandler, Writes], other: str, caplog: pytest.LogCaptureFixture
) -> None:
    logger, _, stream = held
    line = AccessLine(logger, MESSAGE, __file__)
    sink = io.StringIO()
    extra = logging.StreamHandler(sink)
    if other == "caplog":
        logger.parent = logging.getLogger()  # up to the root, where pytest's handlers are
    elif other == "extra handler":
        logger.addHandler(extra)
    elif other == "logger filter":
        logger.addFilter(_not_dropped)
    else:
        logger.disabled = True
    try:
        assert holder(logger) is None

        async def run() -> str:
            line.write(ARGS, "rid-1", None)
            line.write(("DROP", *ARGS[1:]), "rid-2", None)
            return stream.getvalue()

        written = asyncio.run(run())
    finally:
        logger.removeHandler(extra)
        logger.filters.clear()
        logger.disabled = False
    if other == "disabled":
        assert written == ""
        return
    assert written.count("\n") == (1 if other == "logger filter" else 2)  # at once, not held
    if other == "caplog":
        assert [r.request_id for r in caplog.records if r.name == logger.name] == ["rid-1", "rid-2"]  # type: ignore[attr-defined]
    if other == "extra handler":
        assert sink.getvalue().count("\n") == 2


@pytest.mark.parametrize("depth", [2, 3])
def test_the_holder_is_the_one_handler_the_records_reach(depth: int) -> None:
    """``holder`` over every small chain of loggers (its short way for a logger right under a root and its walk
    for others): the holding handler exactly when it is the only handler ``Logger.callHandlers`` would call and
    the logger neither filters nor drops its records."""
    holding, plain = HoldingStreamHandler(io.StringIO()), logging.StreamHandler(io.StringIO())
    handler_sets: list[list[logging.Handler]] = [[], [holding], [plain], [holding, plain]]
    node_choices = list(itertools.product(handler_sets, [True, False]))
    loggers = [logging.Logger(f"llm_proxy.test.chain{n}") for n in range(depth)]  # loggers[-1]: the root
    for child, parent in itertools.pairwise(loggers):
        child.parent = parent
    held = 0
    for nodes in itertools.product(node_choices, repeat=depth):
        for filtered, disabled in itertools.product([False, True], repeat=2):
            for each, (handlers, propagate) in zip(loggers, nodes, strict=True):
                each.handlers, each.propagate = list(handlers), propagate
            first = loggers[0]
            first.filters, first.disabled = ([_not_dropped] if filtered else []), disabled
            reached: list[logging.Handler] = []
            node: logging.Logger | None = first
            while node is not None:  # as Logger.callHandlers
                reached.extend(node.handlers)
                node = node.parent if node.propagate else None
            expected = holding if reached == [holding] and not (filtered or disabled) else None
            assert holder(first) is expected, (nodes, filtered, disabled)
            held += expected is not None
    assert held == {2: 12, 3: 86}[depth]  # the chains that hold (counted by hand): none left out
    holding.close()
    plain.close()


def _not_dropped(record: logging.LogRecord) -> bool:
    return isinstance(record.args, tuple) and record.args[0] != "DROP"


def test_a_handler_above_warning_holds_nothing(held: tuple[logging.Logger, HoldingStreamHandler, Writes]) -> None:
    logger, handler, stream = held
    handler.setLevel(logging.WARNING)
    asyncio.run(_write_one(AccessLine(logger, MESSAGE, __file__)))
    handler.flush()
    assert stream.getvalue() == ""


async def _write_one(line: AccessLine) -> None:
    line.write(ARGS, "rid-1", None)


def test_configuring_again_and_a_new_stream_write_what_is_held() -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    switches = {name: getattr(logging, name) for name in ("logThreads", "logProcesses", "logMultiprocessing")}
    for handler in saved:
        root.removeHandler(handler)
    first, second = io.StringIO(), io.StringIO()
    access = logging.getLogger("llm_proxy.access")
    line = AccessLine(access, MESSAGE, __file__)
    try:
        configure_logging("info", True, None, "text", first)
        (own,) = root.handlers
        assert type(own) is HoldingStreamHandler and holder(access) is own
        asyncio.run(_write_one(line))
        assert first.getvalue() == ""
        configure_logging("info", True, None, "json")  # a reload of the logging config
        assert first.getvalue().endswith(" [request rid-1]\n") and root.handlers == [own]
        asyncio.run(_write_one(line))
        own.setStream(second)
        assert orjson.loads(first.getvalue().splitlines()[-1])["request_id"] == "rid-1" and second.getvalue() == ""
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)
        access.setLevel(logging.NOTSET)
        for name, value in switches.items():
            setattr(logging, name, value)


def test_held_lines_are_written_at_exit() -> None:
    """No shutdown, no flush: the process ends with lines held, and they are in its stderr. granian configures
    its own loggers after ours (``dictConfig``), which drops every handler from ``logging.shutdown``'s list."""
    code = (
        "import asyncio, logging, logging.config\n"
        "from llm_proxy.app.serve import configure_logging\n"
        "from llm_proxy.app.exchange import _ACCESS\n"
        "configure_logging('info', True, None, 'text')\n"
        "logging.config.dictConfig({'version': 1, 'disable_existing_loggers': False})\n"
        "async def main():\n"
        "    for n in range(5):\n"
        "        _ACCESS.write(('GET', '/', 'm', 'm', '200', 1.0, 2, ''), f'rid-{n}', None)\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env())
    assert result.returncode == 0, result.stderr
    assert [line.rsplit(" ", 1)[-1] for line in result.stderr.splitlines()] == [f"rid-{n}]" for n in range(5)]


# the proxy, end to end ------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src")}


def _request(port: int, rid: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    conn.request(
        "POST", "/o/v1/chat/completions", body=body, headers={"x-request-id": rid, "authorization": "Bearer x"}
    )
    assert conn.getresponse().read() and True
    conn.close()


def _proxy(tmp_path: Path, server: dict[str, object]) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    entry = {"frontend_model_name": "m", "frontend_base_url": "/o", "backend_base_url": "mock://"}
    entry["backend_api_key"] = SECRET
    path = write_config(tmp_path, [entry], {"usage_store": "none", **server})
    log = tmp_path / "stderr.log"
    with log.open("wb") as err:
        args = [sys.executable, "-m", "llm_proxy", "--config", str(path), "--port", str(port)]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=_env())
    return proc, port, log


def _access(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if "llm_proxy.access" in line]


GRANIAN = importlib.util.find_spec("granian") is not None
SERVERS = [
    pytest.param({}, id="uvicorn"),
    pytest.param({"interface": "rsgi"}, id="granian", marks=pytest.mark.skipif(not GRANIAN, reason="no granian")),
]


@pytest.mark.parametrize("server", SERVERS)
def test_a_running_proxy_writes_the_line_within_the_timer(tmp_path: Path, server: dict[str, object]) -> None:
    proc, port, log = _proxy(tmp_path, {"log_level": "info", **server})
    try:
        wait_healthy(port, proc)
        _request(port, "rid-timer")
        sent = time.monotonic()
        while not _access(log) and time.monotonic() - sent < 2:
            time.sleep(0.02)
        waited = time.monotonic() - sent
        lines = _access(log)
        assert len(lines) == 1 and lines[0].endswith(" [request rid-timer]") and waited < 0.5 + FLUSH_AFTER
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.parametrize(
    "server",
    [
        *SERVERS,
        pytest.param({"workers": 2}, id="uvicorn-2-workers"),
        pytest.param({"log_format": "json"}, id="uvicorn-json"),
    ],
)
def test_every_line_is_written_before_a_sigterm_exit(tmp_path: Path, server: dict[str, object]) -> None:
    count = 40
    proc, port, log = _proxy(tmp_path, {"log_level": "info", **server})
    with ends_on_sigterm(proc):
        wait_healthy(port, proc)
        for n in range(count):
            _request(port, f"rid-{n}")
    text = log.read_text()
    assert SECRET not in text
    lines = _access(log)
    if server.get("log_format") == "json":
        ids = [orjson.loads(line)["request_id"] for line in lines]
    else:
        ids = [line.rsplit(" ", 1)[-1].removesuffix("]") for line in lines]
    assert sorted(ids) == sorted(f"rid-{n}" for n in range(count))  # every line, whole
    if not server.get("workers"):
        assert ids == [f"rid-{n}" for n in range(count)]  # in order


def test_log_level_warning_writes_no_access_line(tmp_path: Path) -> None:
    proc, port, log = _proxy(tmp_path, {"log_level": "warning", "access_log": True})
    with ends_on_sigterm(proc):
        wait_healthy(port, proc)
        _request(port, "rid-quiet")
    assert _access(log) == [] and "rid-quiet" not in log.read_text()
