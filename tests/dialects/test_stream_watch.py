"""The light stream watcher (``Dialect.stream_watcher``) against each dialect's full stream decoder.

Recorded streams (``tests/transcripts/<dialect>/``) and streams the mock upstream produces are fed to both,
whole, split into two pieces at every byte offset, and one byte at a time. Chunk by chunk, the watcher must emit
exactly the full decoder's ``MessageStart``, ``Finish`` and ``StreamError`` events and, at the chunk where the
full decoder emitted its first token-bearing event, that event and no other token event ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest

from llm_proxy.canonical import (
    BlockStart,
    Finish,
    Message,
    MessageStart,
    Request,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
)
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import EncodeOptions
from llm_proxy.upstream.mock import MockOptions, MockUpstream
from tests.transcripts import (
    test_bedrock,
    test_bedrock_converse,
    test_claude,
    test_gemini,
    test_openai_chat,
    test_openai_responses,
)
from tests.transcripts.common import HERE, read_bytes

DIALECTS = ["openai-chat", "openai-responses", "claude", "bedrock", "bedrock-converse", "gemini"]
REQUESTS = {
    "openai-chat": test_openai_chat.REQUEST,
    "openai-responses": test_openai_responses.REQUEST,
    "claude": test_claude.REQUEST,
    "bedrock": test_bedrock.REQUEST,
    "bedrock-converse": test_bedrock_converse.REQUEST,
    "gemini": test_gemini.REQUEST,
}
FRAMED: dict[str, Callable[[str], bytes]] = {
    "bedrock": test_bedrock.frames,
    "bedrock-converse": test_bedrock_converse.frames,
}


def recorded() -> list[tuple[str, str, bytes]]:
    out: list[tuple[str, str, bytes]] = []
    for dialect in DIALECTS:
        folder = dialect.replace("-", "_")
        for path in sorted((HERE / folder).glob("stream_*")):
            framed = FRAMED.get(dialect)
            out.append((dialect, path.name, framed(path.name) if framed else read_bytes(folder, path.name)))
    return out


PROMPTS = {
    "text": "hello there",
    "think": "[[mock:think]] why",
    "tool": '[[mock:tool get_weather {"city": "Paris"}]]',
    "think_tool_length": '[[mock:think]] [[mock:tool lookup {"q": "x"}]] [[mock:length]]',
    "fail": "[[mock:fail]] oops",
    "cut": "[[mock:cut]] gone",
}


def mock_stream(dialect: str, prompt: str) -> tuple[Request, list[bytes]]:
    """The request and the chunks the mock upstream streams for ``prompt`` (one encoded event a chunk)."""
    codec = get_dialect(dialect)
    request = Request(model="mock-model", messages=(Message(role="user", content=(Text(text=prompt),)),), stream=True)
    body = codec.encode_request(request, EncodeOptions())
    path = codec.upstream_path(request)
    reply = MockUpstream(MockOptions(events=3)).answer("POST", path, [], orjson.dumps(body))
    assert reply.status == 200

    async def read() -> list[bytes]:
        return [chunk async for chunk in reply.chunks()]

    return request, asyncio.run(read())


def token(event: StreamEvent) -> bool:
    return isinstance(event, TextDelta | ThinkingDelta | ToolArgsDelta) or (
        isinstance(event, BlockStart) and event.kind == "redacted_thinking"
    )


def assert_watched(dialect: str, request: Request, chunks: list[bytes]) -> None:
    """Chunk by chunk (then at close), the watcher emits the full decoder's observed events."""
    codec = get_dialect(dialect)
    full, watcher = codec.stream_decoder(request), codec.stream_watcher(request)
    seen = False
    for i in range(len(chunks) + 1):
        events = full.feed(chunks[i]) if i < len(chunks) else full.close()
        watched = watcher.feed(chunks[i]) if i < len(chunks) else watcher.close()
        expected: list[StreamEvent] = []
        for event in events:
            if isinstance(event, MessageStart | Finish | StreamError):
                expected.append(event)
            elif not seen and token(event):
                seen = True
                expected.append(event)
        assert watched == expected, (i, events)


def splits(data: bytes) -> list[list[bytes]]:
    return [[data[:cut], data[cut:]] for cut in range(len(data) + 1)] + [[data[i : i + 1] for i in range(len(data))]]


@pytest.mark.parametrize(("dialect", "name", "data"), recorded(), ids=lambda v: v if isinstance(v, str) else "")
def test_recorded_stream_is_watched_exactly(dialect: str, name: str, data: bytes) -> None:
    for chunks in splits(data):
        assert_watched(dialect, REQUESTS[dialect], chunks)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("prompt", sorted(PROMPTS))
def test_mock_stream_is_watched_exactly(dialect: str, prompt: str) -> None:
    request, sent = mock_stream(dialect, PROMPTS[prompt])
    for chunks in [sent, *splits(b"".join(sent))]:
        assert_watched(dialect, request, chunks)


@pytest.mark.parametrize(("dialect", "name", "data"), recorded(), ids=lambda v: v if isinstance(v, str) else "")
def test_cut_stream_reports_the_same_error_at_close(dialect: str, name: str, data: bytes) -> None:
    for cut in (len(data) // 3, len(data) // 2, len(data) - 1):
        assert_watched(dialect, REQUESTS[dialect], [data[:cut]])
