from __future__ import annotations

from llm_proxy.framing.sse import SSEEvent, SSEParser, encode_event

STREAM = (
    b": keepalive comment\r\n"
    b'event: message_start\r\ndata: {"a":1}\r\n\r\n'
    b"data: line one\ndata:line two\n\n"
    b"event: x\rdata: caf\xc3\xa9\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    SSEEvent("message_start", b'{"a":1}'),
    SSEEvent(None, b"line one\nline two"),
    SSEEvent("x", "café".encode()),
    SSEEvent(None, b"[DONE]"),
]


def parse_in_pieces(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    out: list[SSEEvent] = []
    last = 0
    for cut in [*cuts, len(data)]:
        out += parser.feed(data[last:cut])
        last = cut
    return out + parser.close()


def test_every_split_point_gives_the_same_events() -> None:
    for i in range(len(STREAM) + 1):
        assert parse_in_pieces(STREAM, [i]) == EXPECTED, i
        for j in range(i, len(STREAM) + 1, 7):
            assert parse_in_pieces(STREAM, [i, j]) == EXPECTED, (i, j)


def test_one_byte_at_a_time() -> None:
    assert parse_in_pieces(STREAM, list(range(1, len(STREAM)))) == EXPECTED


def test_unterminated_event_is_not_dispatched_and_is_reported() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"partial":') == []
    assert parser.has_partial
    assert parser.close() == []


def test_encode_event() -> None:
    assert encode_event(b'{"x":1}') == b'data: {"x":1}\n\n'
    assert encode_event(b"{}", "ping") == b"event: ping\ndata: {}\n\n"
