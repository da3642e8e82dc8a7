from __future__ import annotations

import re

import orjson
import pytest

from llm_proxy.errors import RequestError
from llm_proxy.jsonbody import _string_after_colon, _too_deep, parse_body, replace_model
from llm_proxy.modes.plan import plan_passthrough
from llm_proxy.routing import Router
from tests.servers import make_config


def test_only_the_model_bytes_change() -> None:
    body = (
        b'{ "messages" : [{"role":"user","content":"caf\\u00e9 \xe2\x9c\x93"}],'
        b'\n  "model" :  "gpt-x", "temperature": 1.0, "n": 1e0 }'
    )
    out = replace_model(body, "gpt-x", "gpt-4o-2024")
    assert out == body.replace(b'"gpt-x"', b'"gpt-4o-2024"')


def test_nested_and_string_occurrences_are_left_alone() -> None:
    body = b'{"metadata":{"model":"gpt-x"},"messages":[{"content":"\\"model\\": \\"gpt-x\\""}],"model":"gpt-x"}'
    out = replace_model(body, "gpt-x", "new")
    assert out == b'{"metadata":{"model":"gpt-x"},"messages":[{"content":"\\"model\\": \\"gpt-x\\""}],"model":"new"}'


def test_value_containing_the_word_model() -> None:
    body = b'{"messages":[{"content":"model"}],"model":"m\\u0031"}'
    assert replace_model(body, "m1", "x") == b'{"messages":[{"content":"model"}],"model":"x"}'


def test_no_model_leaves_body_unchanged() -> None:
    body = b'{"input":"hi"}'
    assert replace_model(body, "a", "b") is body


def test_new_model_is_json_escaped() -> None:
    assert replace_model(b'{"model":"a"}', "a", 'we"ird') == b'{"model":"we\\"ird"}'


def test_big_integers_survive_proxy_mode_byte_for_byte() -> None:
    body = b'{"model":"a","seed":123456789012345678901234567890}'
    assert replace_model(body, "a", "b") == b'{"model":"b","seed":123456789012345678901234567890}'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # a body spelled like no encoder would, byte for byte: spacing, escapes, key order
        (b'{"x":{"model":"a"},  "model"\t:\n"a" ,"y":[]}', b'{"x":{"model":"a"},  "model"\t:\n"NEW" ,"y":[]}'),
        # the bytes "model" closing a longer key, and as the tail of a string value, are not the key
        (b'{"k\\"model":"a","v":"\\"model","model":"a"}', b'{"k\\"model":"a","v":"\\"model","model":"NEW"}'),
        # escapes elsewhere in the body (not of the letters of "model") leave the splice on
        (b'{"t":"caf\\u00e9 \\u0041","model":"a"}', b'{"t":"caf\\u00e9 \\u0041","model":"NEW"}'),
    ],
)
def test_tricky_bodies_change_only_the_model_bytes(body: bytes, expected: bytes) -> None:
    assert replace_model(body, orjson.loads(body)["model"], "NEW") == expected


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"a","model":"b"}',  # the parser keeps the last; an upstream could read the first
        b'{"model":"b","x":1,"model":"b"}',
        b'{"model":1,"model":"b"}',
        b'{"mod\\u0065l":"a","x":{"model":"a"}}',  # model spelled with an escape, a nested model of that value
        b'{"mod\\u0065l":"gpt-big","model":"b"}',  # two spellings: the literal one is not the only model key
        b'{"\\u006Dodel":"b"}',  # escape in upper-case hex
    ],
)
def test_ambiguous_model_keys_are_not_spliced(body: bytes) -> None:
    assert replace_model(body, orjson.loads(body)["model"], "NEW") is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"client-model","model":"client-model","n":1}',
        b'{"mod\\u0065l":"gpt-4o","model":"client-model"}',
        b'{"mod\\u0065l":"client-model","metadata":{"model":"client-model"}}',
    ],
)
def test_proxy_mode_reserialises_what_it_cannot_splice(body: bytes) -> None:
    """Whatever the spelling, the upstream reads the backend model and only it; nested values stay as they were."""
    route = {"frontend_model_name": "client-model", "frontend_base_url": "/p", "backend_model_name": "upstream-model"}
    config = make_config([{**route, "backend_base_url": "https://up.example"}])
    target = Router(config.routes).match("/p/v1/chat/completions")
    assert target is not None
    doc = orjson.loads(body)
    call = plan_passthrough(config.routes[0], target, "POST", [], b"", body, doc, edited=False)
    assert call.body == orjson.dumps({**doc, "model": "upstream-model"})


def test_parse_body_errors() -> None:
    with pytest.raises(RequestError, match="not valid JSON"):
        parse_body(b'{"model": ')


@pytest.mark.parametrize("depth", [1, 2, 127, 128, 129, 130, 300])
@pytest.mark.parametrize("filler", ["", ',"' + "x" * 1000 + '"'])
@pytest.mark.parametrize("outer", ["array", "object"])
def test_nesting_limit_is_exact_at_every_depth(depth: int, filler: str, outer: str) -> None:
    """The limit holds for arrays and objects, at the boundary too, short bodies and long ones alike."""
    inner = "[" * (depth - 1) + "1" + "]" * (depth - 1)
    text = "[" + inner + filler + "]" if outer == "array" else '{"a":' + inner + filler.replace(",", ',"b":') + "}"
    if depth <= 128:
        parse_body(text.encode())
    else:
        with pytest.raises(RequestError, match="nested deeper than 128"):
            parse_body(text.encode())


def test_a_wide_shallow_body_is_accepted() -> None:
    """Many brackets side by side (more than the limit) are not depth."""
    body = b'{"model":"m","messages":[' + b",".join([b'{"role":"user","content":[[]]}'] * 500) + b"]}"
    assert len(parse_body(body)["messages"]) == 500


_REFERENCE_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]]', re.S)
_REFERENCE_COLON = re.compile(rb"\s*:\s*")


def _reference_string_after_colon(body: bytes, pos: int) -> tuple[int, int] | None:
    """The splice's value reader as two regular expressions: what the hand-written one must agree with."""
    colon = _REFERENCE_COLON.match(body, pos)
    if colon is None:
        return None
    value = _REFERENCE_TOKEN.match(body, colon.end())
    if value is None or not value.group().startswith(b'"'):
        return None
    return value.start(), value.end()


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"gpt-x","n":1}',
        b'{ "model" :  "gpt-x" }',
        b'{"model"\t:\n\r "a\\"b\\\\","x":"model"}',
        b'{"model":"caf\\u00e9","model":"\\\\"}',
        b'{"model":1,"model":null,"model":["a"],"model":{"a":"b"},"model":""}',
        b'{"a":{"model":"x"},"model" : "",  "b":"\\"model\\"" }',
    ],
)
def test_the_model_value_reader_agrees_with_the_tokenizer(body: bytes) -> None:
    """After every ``"model"`` key of a body (and at every offset), the value found is the tokenizer's."""
    orjson.loads(body)  # the reader is only ever given parsed bodies
    for pos in range(len(body) + 1):
        assert _string_after_colon(body, pos) == _reference_string_after_colon(body, pos), pos


@pytest.mark.parametrize("shape", ["wide", "deep", "mixed"])
def test_the_level_walk_agrees_with_a_recursive_one(shape: str) -> None:
    """The depth walk counts levels exactly like a recursion into every container."""

    def depth(value: object) -> int:
        if isinstance(value, dict):
            return 1 + max((depth(v) for v in value.values()), default=0)
        if isinstance(value, list):
            return 1 + max((depth(v) for v in value), default=0)
        return 0

    docs: list[object] = []
    for n in range(1, 12):
        nested: object = "leaf"
        for i in range(n):
            nested = [nested, 1] if (i + len(shape)) % 2 else {"k": nested, "s": "x"}
        docs.append({"wide": [{"a": []}] * n, "deep": nested} if shape == "mixed" else {shape: nested})
    for doc in docs:
        for limit in range(1, 14):
            assert _too_deep(doc, limit) == (depth(doc) > limit), (doc, limit)
