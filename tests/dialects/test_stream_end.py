"""Tests of the one end-of-stream state machine, alone and as every stream codec uses it."""

from __future__ import annotations

import pytest

from llm_proxy.canonical import (
    BlockStart,
    ErrorKind,
    Finish,
    MessageStart,
    ProxyError,
    Request,
    StopReason,
    StreamError,
    TextDelta,
)
from llm_proxy.dialects import get_dialect, names
from llm_proxy.dialects.stream_end import StreamEnd
from llm_proxy.errors import stream_cut_short

ERROR = ProxyError(status=429, kind=ErrorKind.RATE_LIMIT, message="slow down")
REQUEST = Request(model="m", messages=(), stream=True)


def test_lifecycle() -> None:
    end = StreamEnd(terminator=b"END")
    assert not end.started and not end.open and not end.ended
    assert end.start() and not end.start()
    assert end.started and end.open
    end.finish()
    assert end.ended and not end.open
    assert end.close() == b"", "a finished stream has nothing more to write"


def test_close_writes_the_terminator_once_and_never_after_an_error() -> None:
    end = StreamEnd(terminator=b"END")
    end.start()
    assert (end.close(), end.close()) == (b"END", b"")
    failed = StreamEnd(terminator=b"END")
    failed.fail()
    assert failed.close() == b""


def test_a_decoder_ends_a_stream_with_one_error() -> None:
    end = StreamEnd()
    assert end.error(ERROR) == [StreamError(error=ERROR)]
    assert end.error(ERROR) == [] and end.cut_short() == []
    cut = StreamEnd()
    cut.start()
    assert cut.cut_short() == [StreamError(error=stream_cut_short())]
    finished = StreamEnd()
    finished.finish()
    assert finished.cut_short() == []


@pytest.mark.parametrize("dialect", names())
def test_no_encoder_writes_after_an_error(dialect: str) -> None:
    encoder = get_dialect(dialect).stream_encoder(REQUEST)
    encoder.encode(MessageStart(id="msg_1", model="m"))
    assert encoder.encode(StreamError(error=ERROR))
    assert encoder.encode(BlockStart(index=0, kind="text")) == b""
    assert encoder.encode(Finish(stop_reason=StopReason.END_TURN)) == b""
    assert encoder.close() == b""


@pytest.mark.parametrize("dialect", names())
def test_every_decoder_reports_a_cut_stream_once(dialect: str) -> None:
    decoder = get_dialect(dialect).stream_decoder(REQUEST)
    assert decoder.close() == [StreamError(error=stream_cut_short())]
    assert decoder.close() == []


def test_a_chat_finish_chunk_does_not_end_the_stream_done_does() -> None:
    encoder = get_dialect("openai-chat").stream_encoder(REQUEST)
    encoder.encode(BlockStart(index=0, kind="text"))
    encoder.encode(TextDelta(index=0, text="hi"))
    assert encoder.encode(Finish(stop_reason=StopReason.END_TURN))
    assert b'"error"' in encoder.encode(StreamError(error=ERROR)), "a failure after the finish chunk is still told"
    assert encoder.close() == b"", "and no [DONE] follows it"
    clean = get_dialect("openai-chat").stream_encoder(REQUEST)
    clean.encode(Finish(stop_reason=StopReason.END_TURN))
    assert (clean.close(), clean.close()) == (b"data: [DONE]\n\n", b"")
