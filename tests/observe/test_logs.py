"""The access line's short path gives exactly the lines the standard logging path gives.

The references are the standard pieces: ``LogRecord`` made by ``Logger.makeRecord`` (the access fields as
attributes, as before), ``logging.Formatter(TEXT_FORMAT)`` and python-json-logger's ``OrjsonFormatter`` with
its own attribute walk. Records are compared attribute by attribute and lines byte for byte.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Iterator

import orjson
import pytest
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from llm_proxy.app.serve import configure_logging
from llm_proxy.observe.logs import (
    ACCESS_FIELDS,
    JSON_FIELDS,
    TEXT_FORMAT,
    AccessLine,
    AccessRecord,
    RequestIdFilter,
    TextFormatter,
    formatter,
)
from llm_proxy.observe.redact import Redactor
from llm_proxy.observe.time_of_day import time_at

MESSAGE = "%s %s %s -> %s %s %.1fms %dB%s"
ARGS = ("POST", "/openai", "bench-model", "upstream-model", "200", 12.345, 1234, " key=alice")
FIELDS: dict[str, object] = {
    "method": "POST",
    "prefix": "/openai",
    "model": "bench-model",
    "backend_model": "upstream-model",
    "backend": "pool-a",
    "status": 200,
    "duration_ms": 12.3,
    "ttft_ms": None,
    "input_tokens": 10,
    "output_tokens": 20,
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "reasoning_tokens": 1,
    "client": "alice",
    "attempts": 2,
    "bytes": 1234,
    "note": None,
}
SWITCHES = ("logThreads", "logProcesses", "logMultiprocessing")


@pytest.fixture
def quiet_switches() -> Iterator[None]:
    """The thread and process lookups off, as ``configure_logging`` sets them (restored afterwards)."""
    saved = {name: getattr(logging, name) for name in SWITCHES}
    for name in SWITCHES:
        setattr(logging, name, False)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(logging, name, value)


def _reference(logger: logging.Logger, created: float, fields: dict[str, object] | None = None) -> logging.LogRecord:
    extra: dict[str, object] = {"request_id": "rid-1"}
    if fields is not None:
        extra.update(fields)
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, MESSAGE, ARGS, None, "log", extra)
    record.created, record.msecs = created, (created - int(created)) * 1000 // 1 + 0.0
    return record


def _at(record: logging.LogRecord, created: float) -> logging.LogRecord:
    record.created, record.msecs = created, (created - int(created)) * 1000 // 1 + 0.0
    return record


def test_an_access_record_has_the_standard_records_attributes(quiet_switches: None) -> None:
    logger = logging.getLogger("llm_proxy.test.access")
    before = time.time()
    made = AccessLine(logger, MESSAGE, __file__).record(ARGS, "rid-1", None)
    after = time.time()
    reference = _reference(logger, made.created)
    assert type(made) is AccessRecord and isinstance(made, logging.LogRecord)
    assert before <= made.created <= after
    assert abs(made.msecs - int((made.created - int(made.created)) * 1000)) <= 1 and made.msecs == int(made.msecs)
    assert abs(made.relativeCreated - reference.relativeCreated) < 2000 * (after - before) + 1
    varying = {"created", "msecs", "relativeCreated"}
    expected = {k: v for k, v in reference.__dict__.items() if k not in varying}
    got = {k: v for k, v in made.__dict__.items() if k not in varying}
    # The keys a later step sets are there from the start (so no line grows the record's dict).
    assert got == {**expected, "request_tag": "", ACCESS_FIELDS: None}
    assert made.getMessage() == "POST /openai bench-model -> upstream-model 200 12.3ms 1234B key=alice"
    assert (made.thread, made.threadName, made.process, made.processName) == (None, None, None, None)


def test_with_thread_lookups_on_the_record_is_the_standard_one() -> None:
    logger = logging.getLogger("llm_proxy.test.access")
    made = AccessLine(logger, MESSAGE, __file__).record(ARGS, "rid-1", FIELDS)
    assert type(made) is logging.LogRecord
    assert made.threadName == "MainThread" and made.process is not None
    assert made.__dict__["request_id"] == "rid-1" and getattr(made, ACCESS_FIELDS) == FIELDS


@pytest.mark.parametrize("second", [0.999, 0.0, 59.5])
def test_text_lines_are_the_standard_formatters_across_seconds(quiet_switches: None, second: float) -> None:
    logger = logging.getLogger("llm_proxy.test.access")
    line = AccessLine(logger, MESSAGE, __file__)
    ours = TextFormatter(TEXT_FORMAT, defaults={"request_tag": "", "request_id": "-"})
    standard = logging.Formatter(TEXT_FORMAT, defaults={"request_tag": "", "request_id": "-"})
    tag = RequestIdFilter()
    base = 1_764_000_000 + second
    for step in (0.0, 0.0004, 0.3, 0.7, 1.0, 1.2, 3600.0):  # the same second, the next ones, an hour on
        record = _at(line.record(ARGS, "rid-1", None), base + step)
        tag.filter(record)
        expected = standard.format(record)
        assert ours.format(record) == expected
        assert expected.endswith(
            " INFO llm_proxy.test.access: POST /openai bench-model -> upstream-model 200 "
            "12.3ms 1234B key=alice [request rid-1]"
        )


def test_text_formatter_time_of_day_follows_the_clock(quiet_switches: None) -> None:
    """The cached second is replaced when the second changes (a stale cache would repeat the first time)."""
    ours = TextFormatter(TEXT_FORMAT, defaults={"request_tag": "", "request_id": "-"})
    standard = logging.Formatter(TEXT_FORMAT)
    record = logging.LogRecord("x", logging.INFO, __file__, 0, "m", (), None)
    for created in (1_764_000_000.25, 1_764_000_001.5, 1_764_000_001.75, 1_764_086_400.0, 1_764_000_000.25):
        _at(record, created)
        assert ours.formatTime(record) == standard.formatTime(record)
        assert ours.formatTime(record, "%H:%M:%S") == standard.formatTime(record, "%H:%M:%S")


@pytest.mark.parametrize("msec_format", ["%s,%03d", "%s.%03d", None])
def test_the_milliseconds_are_the_standard_formatters(msec_format: str | None) -> None:
    """The usual ``%s,%03d`` milliseconds come from a table: every millisecond, fractional ones (a record's own
    ``msecs``) and a formatter with another ``default_msec_format``, changed on the same formatter, all give
    ``logging.Formatter``'s text."""
    ours = TextFormatter(TEXT_FORMAT, defaults={"request_tag": "", "request_id": "-"})
    standard = logging.Formatter(TEXT_FORMAT)
    record = logging.LogRecord("x", logging.INFO, __file__, 0, "m", (), None)
    _at(record, 1_764_000_000.5)
    assert ours.formatTime(record) == standard.formatTime(record)  # the usual format first, cached
    ours.default_msec_format = standard.default_msec_format = msec_format
    for msecs in [*range(1000), 0.4, 123.7, 999.9999]:
        record.msecs = float(msecs)
        assert ours.formatTime(record) == standard.formatTime(record)


def test_an_access_lines_time_is_its_records_around_the_turn_of_a_second() -> None:
    """``time_at`` at instants near a second's turn, where a record's float ``created`` (``ns / 1e9``) and its
    whole-second ``msecs`` part ways (a record made just before the turn can show the next second with 999 ms):
    the standard formatter's time for a record made at that instant (as ``LogRecord`` makes it from
    ``time.time_ns()`` since Python 3.13, and ``AccessLine.record`` always), with the clock holding the second
    before or the one after."""
    standard = logging.Formatter(TEXT_FORMAT)
    ours = TextFormatter(TEXT_FORMAT, defaults={"request_tag": "", "request_id": "-"})
    turn = 1_790_000_001_000_000_000
    instants = [*range(turn - 3_000, turn + 3_000, 7), turn - 1_000_000, turn + 999_999, turn + 1_000_000]
    shown: set[str] = set()
    record = logging.LogRecord("x", logging.INFO, __file__, 0, "m", (), None)
    for instant in instants:
        record.created, record.msecs = instant / 1e9, (instant % 1_000_000_000) // 1_000_000 + 0.0
        expected = standard.formatTime(record)
        for primed in (turn - 500_000_000, turn + 500_000_000):  # the clock in the second before, the one after
            time_at(ours, ours._clock, primed, None)
            assert time_at(ours, ours._clock, instant, None) == expected, instant
        shown.add(expected[-6:])
    # the second before's last millisecond, the turn's first two and, just before the turn, the next second
    # with 999 ms (the two ways of counting parting)
    assert shown == {"20,999", "21,000", "21,001", "21,999"}


def test_other_text_records_format_as_before() -> None:
    """Records without the filter's tag, with a traceback or a stack: the standard formatter's lines."""
    ours = TextFormatter(TEXT_FORMAT, defaults={"request_tag": "", "request_id": "-"})
    standard = logging.Formatter(TEXT_FORMAT, defaults={"request_tag": "", "request_id": "-"})
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    plain = logging.LogRecord("x", logging.WARNING, __file__, 3, "a %s", ("b",), None)
    failed = logging.LogRecord("x", logging.ERROR, __file__, 3, "a %s", ("b",), exc_info)
    stacked = logging.LogRecord("x", logging.ERROR, __file__, 3, "a %s", ("b",), None, sinfo="Stack (most recent)")
    tagged = logging.LogRecord("x", logging.ERROR, __file__, 3, "a %s", ("b",), exc_info)
    RequestIdFilter().filter(tagged)
    for record in (plain, failed, stacked, tagged):
        assert ours.format(record) == standard.format(record)
    assert "ValueError: boom" in ours.format(failed)


def _library_json() -> logging.Formatter:
    """The JSON formatter as it was configured before: python-json-logger's own attribute walk."""
    return OrjsonFormatter(
        JSON_FIELDS,
        rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
        reserved_attrs=[*RESERVED_ATTRS, "request_tag"],
        defaults={"request_id": "-"},
    )


def test_json_access_line_is_the_librarys_line_key_for_key(quiet_switches: None) -> None:
    logger = logging.getLogger("llm_proxy.access")
    ours = formatter("json", Redactor(["sk-secret-value-123"]))
    tag = RequestIdFilter()
    record = AccessLine(logger, MESSAGE, __file__).record(ARGS, "rid-1", FIELDS)
    tag.filter(record)
    reference = _reference(logger, record.created, FIELDS)
    tag.filter(reference)
    line = ours.format(record)
    assert line == _library_json().format(reference)  # the same bytes: keys, order and values
    doc = orjson.loads(line)
    assert list(doc) == ["request_id", "time", "level", "logger", "message", *FIELDS]
    assert doc["request_id"] == "rid-1" and doc["level"] == "INFO" and doc["logger"] == "llm_proxy.access"
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = reference.exc_info = sys.exc_info()
    assert ours.format(record) == _library_json().format(reference)  # the library's path, the fields kept
    assert orjson.loads(ours.format(record))["attempts"] == 2


def test_other_json_lines_are_the_librarys(quiet_switches: None) -> None:
    ours = formatter("json", None)
    record = logging.LogRecord("llm_proxy.x", logging.WARNING, __file__, 3, "a %s", ("b",), None)
    record.custom = 5  # an extra attribute is a key, as python-json-logger does it
    RequestIdFilter().filter(record)
    assert ours.format(record) == _library_json().format(record)
    assert orjson.loads(ours.format(record))["custom"] == 5
    numbered = logging.LogRecord("llm_proxy.x", logging.INFO, __file__, 3, {7: "seven", "k": 1}, (), None)
    RequestIdFilter().filter(numbered)
    assert ours.format(numbered) == _library_json().format(numbered)  # a key that is not a string: the library's way
    assert orjson.loads(ours.format(numbered))["7"] == "seven"


def test_configure_logging_turns_off_the_lookups_no_format_shows() -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved = {name: getattr(logging, name) for name in SWITCHES}
    access = logging.getLogger("llm_proxy.access")
    access_level = access.level
    stream = io.StringIO()
    for handler in saved_handlers:
        root.removeHandler(handler)
    root.addHandler(logging.StreamHandler(stream))
    try:
        configure_logging("info", True, None, "text")
        root.setLevel(logging.INFO)  # basicConfig leaves a root that has handlers alone
        assert not any(getattr(logging, name) for name in SWITCHES)
        logging.getLogger("llm_proxy.test").info("hello")
        assert stream.getvalue().endswith(" INFO llm_proxy.test: hello\n")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        access.setLevel(access_level)
        for name, value in saved.items():
            setattr(logging, name, value)
