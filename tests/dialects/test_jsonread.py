"""Tests of the codecs' shared JSON reader: wording per dialect, the one exception and its two faces, extra."""

from __future__ import annotations

from typing import Any

import pytest

from llm_proxy.canonical import JSON, ErrorKind
from llm_proxy.dialects import jsonread
from llm_proxy.dialects.jsonread import Invalid, Reader
from llm_proxy.errors import RequestError

CHAT = Reader(quote_paths=True)
CLAUDE = Reader(array_word="a list")
RESPONSES = Reader()


@pytest.mark.parametrize(
    ("reader", "expected"),
    [
        (CHAT, "`messages` must be an array"),
        (CLAUDE, "messages must be a list"),
        (RESPONSES, "messages must be an array"),
    ],
)
def test_each_dialect_keeps_its_wording(reader: Reader, expected: str) -> None:
    with pytest.raises(Invalid) as caught:
        reader.array({}, "messages")
    assert (caught.value.message, caught.value.path) == (expected, "messages")


@pytest.mark.parametrize(
    ("read", "value", "problem"),
    [
        (RESPONSES.obj, [], "must be an object"),
        (RESPONSES.string, 1, "must be a string"),
        (RESPONSES.opt_string, 1, "must be a string"),
        (RESPONSES.boolean, 0, "must be a boolean"),
        (RESPONSES.opt_boolean, "yes", "must be a boolean"),
        (RESPONSES.integer, True, "must be an integer"),
        (RESPONSES.opt_integer, 1.5, "must be an integer"),
        (RESPONSES.number, False, "must be a number"),
        (RESPONSES.opt_number, "1", "must be a number"),
    ],
)
def test_typed_readers_refuse_other_types(read: Any, value: JSON, problem: str) -> None:
    with pytest.raises(Invalid, match=f"^x {problem}$"):
        read(value, "x")


def test_optional_readers_read_null_as_absent_and_numbers_take_ints() -> None:
    assert RESPONSES.opt_string(None, "x") is None
    assert RESPONSES.opt_boolean(None, "x") is None
    assert RESPONSES.opt_integer(None, "x") is None
    assert RESPONSES.opt_number(None, "x") is None
    assert RESPONSES.number(2, "x") == 2


def test_invalid_becomes_a_client_or_an_upstream_error() -> None:
    error = CHAT.fail("tool_choice", "must be none, auto, required or an object").request_error()
    assert isinstance(error, RequestError)
    assert (error.error.status, error.error.message, error.error.param) == (
        400,
        "`tool_choice` must be none, auto, required or an object",
        "tool_choice",
    )
    upstream = jsonread.bad_upstream("unreadable").error
    assert (upstream.status, upstream.kind, upstream.message) == (502, ErrorKind.API_ERROR, "unreadable")


def test_rest_keeps_unknown_fields_and_known_nulls_unless_told() -> None:
    obj: dict[str, JSON] = {"type": None, "text": "t", "cache": None, "x": 1}
    assert jsonread.rest(obj, ("type", "text", "cache")) == {"type": None, "cache": None, "x": 1}
    assert jsonread.rest(obj, ("type", "text", "cache"), drop_null=("type",)) == {"cache": None, "x": 1}


def test_merge_extra_lets_encoded_values_win_and_merges_objects_only_when_nested() -> None:
    kept: dict[str, JSON] = {"a": 1, "meta": {"x": 1, "y": 2}}
    shallow = jsonread.merge_extra({"a": 0, "meta": {"x": 0}}, kept)
    assert shallow == {"a": 0, "meta": {"x": 0}}
    encoded_meta: dict[str, JSON] = {"x": 0}
    nested = jsonread.merge_extra({"meta": encoded_meta}, kept, nested=True)
    assert nested == {"a": 1, "meta": {"x": 0, "y": 2}}
    assert encoded_meta == {"x": 0}, "a dict shared with the canonical object is never mutated"


def test_lenient_readers_and_header() -> None:
    assert (jsonread.string_or(1), jsonread.string_or("s")) == ("", "s")
    assert (jsonread.integer_or(True, -1), jsonread.integer_or(3, -1)) == (-1, 3)
    assert (jsonread.obj_or_empty([]), jsonread.list_or_empty({})) == ({}, [])
    assert jsonread.header({"Retry-After": "3"}, "retry-after") == "3"
    assert jsonread.header({}, "retry-after") is None


def test_a_value_too_deep_to_write_is_invalid() -> None:
    deep: JSON = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(Invalid, match="cannot be represented as JSON"):
        CLAUDE.dumps(deep, "input")
