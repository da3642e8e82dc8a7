"""The light answer summary (``Dialect.summarize``) against each dialect's full response decoder.

Proxy mode reads a relayed, non-streamed answer only for what the request's record keeps: the model, the
usage and the stop reason. For every recorded answer (``tests/transcripts/<dialect>/response_*.json``) and
every answer the mock upstream gives, the record fed the summary must hold exactly what it holds when fed
the fully decoded ``Response``.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from llm_proxy.canonical import Message, Request, Response, Text
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import EncodeOptions, Summary
from llm_proxy.observe.record import Record
from llm_proxy.upstream.mock import MockOptions, MockUpstream
from tests.dialects.test_stream_watch import DIALECTS, PROMPTS
from tests.transcripts.common import HERE

UNREAD = Request(model="", messages=())
"""The request proxy mode summarizes with: it reads nothing of the request."""


def recorded() -> list[tuple[str, str, bytes]]:
    out: list[tuple[str, str, bytes]] = []
    for dialect in DIALECTS:
        for path in sorted((HERE / dialect.replace("-", "_")).glob("response_*.json")):
            out.append((dialect, path.name, path.read_bytes()))
    return out


def mock_answer(dialect: str, prompt: str) -> bytes:
    codec = get_dialect(dialect)
    request = Request(model="mock-model", messages=(Message(role="user", content=(Text(text=prompt),)),))
    body = codec.encode_request(request, EncodeOptions())
    reply = MockUpstream(MockOptions()).answer("POST", codec.upstream_path(request), [], orjson.dumps(body))

    async def read() -> bytes:
        return b"".join([chunk async for chunk in reply.chunks()])

    return asyncio.run(read())


def kept(answer: Response | Summary) -> tuple[object, ...]:
    record = Record("r")
    record.answered(answer)
    return record.response_model, record.usage, record.finish_reasons, record.tokens


def assert_summarized(dialect: str, data: bytes) -> None:
    doc = orjson.loads(data)
    codec = get_dialect(dialect)
    summary = codec.summarize(doc)
    assert summary is not None
    assert kept(summary) == kept(codec.decode_response(doc, UNREAD))


@pytest.mark.parametrize(("dialect", "name", "data"), recorded(), ids=lambda v: v if isinstance(v, str) else "")
def test_recorded_answer_is_summarized_exactly(dialect: str, name: str, data: bytes) -> None:
    assert_summarized(dialect, data)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("prompt", sorted(p for p in PROMPTS if p not in ("fail", "cut")))
def test_mock_answer_is_summarized_exactly(dialect: str, prompt: str) -> None:
    assert_summarized(dialect, mock_answer(dialect, PROMPTS[prompt]))
