"""``python -m bench.fast_upstream --port N``: an upstream fast enough that no proxy is held back by it.

The Python mock (``llm-proxy mock-upstream``) decodes and encodes every request with the dialect codecs and
caps every contender near 11k req/s; this one answers from bytes built once at start. A raw asyncio
``Protocol`` with the httptools parser, keep-alive, and four fixed replies chosen by path and by a
``"stream": true`` in the body (a plain bytes check):

- ``/v1/chat/completions``: an OpenAI Chat completion, or its SSE stream (role chunk, N content chunks, a
  finish chunk, a usage chunk, ``[DONE]``);
- ``/v1/messages``: a Claude message, or its SSE stream (message_start, content_block_start, N
  content_block_delta, content_block_stop, message_delta, message_stop);
- ``/healthz``: ``OK``. Any other path: 404.

A stream is chunked, one ``transport.write`` per event, all written at once (no delay between events).
The replies are valid in their dialect, so the proxy's translation accepts them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import cast

import httptools
import orjson

MODEL = "fast-model"
STREAM_MARKERS = (b'"stream":true', b'"stream": true')


def _text_pieces(total: int, events: int) -> list[str]:
    size = max(1, -(-total // events))
    text = ("The quick brown fox jumps over the lazy dog. " * (total // 45 + 1))[:total]
    return [text[i : i + size] for i in range(0, total, size)]


def _json_reply(doc: object) -> bytes:
    body = orjson.dumps(doc)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
    return head + body


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
_END = b"0\r\n\r\n"


def chat_replies(total: int, events: int) -> tuple[bytes, list[bytes]]:
    """The OpenAI Chat answer: (whole JSON response, stream as chunked frames, head first)."""
    pieces = _text_pieces(total, events)
    usage = {"prompt_tokens": 1200, "completion_tokens": len(pieces), "total_tokens": 1200 + len(pieces)}
    whole = _json_reply(
        {
            "id": "chatcmpl-fast",
            "object": "chat.completion",
            "created": 1700000000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces)},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
    )
    base = {"id": "chatcmpl-fast", "object": "chat.completion.chunk", "created": 1700000000, "model": MODEL}

    def event(choices: list[object], **extra: object) -> bytes:
        return _chunk(b"data: " + orjson.dumps({**base, "choices": choices, **extra}) + b"\n\n")

    frames = [_SSE_HEAD, event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    frames += [event([{"index": 0, "delta": {"content": p}, "finish_reason": None}]) for p in pieces]
    frames.append(event([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    frames.append(event([], usage=usage))
    frames += [_chunk(b"data: [DONE]\n\n"), _END]
    return whole, frames


def claude_replies(total: int, events: int) -> tuple[bytes, list[bytes]]:
    """The Claude Messages answer: (whole JSON response, stream as chunked frames, head first)."""
    pieces = _text_pieces(total, events)
    whole = _json_reply(
        {
            "id": "msg_fast",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": "".join(pieces)}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 1200, "output_tokens": len(pieces)},
        }
    )

    def event(name: str, doc: dict[str, object]) -> bytes:
        return _chunk(b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **doc}) + b"\n\n")

    start: dict[str, object] = {
        "id": "msg_fast",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1200, "output_tokens": 1},
    }
    frames = [
        _SSE_HEAD,
        event("message_start", {"message": start}),
        event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    frames += [event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}}) for p in pieces]
    frames += [
        event("content_block_stop", {"index": 0}),
        event(
            "message_delta",
            {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": len(pieces)}},
        ),
        event("message_stop", {}),
        _END,
    ]
    return whole, frames


class Replies:
    """Every answer, as the bytes to write, built once."""

    def __init__(self, response_bytes: int, events: int) -> None:
        chat, chat_stream = chat_replies(response_bytes, events)
        claude, claude_stream = claude_replies(response_bytes, events)
        self.plain = {b"/v1/chat/completions": chat, b"/v1/messages": claude}
        self.streams = {b"/v1/chat/completions": chat_stream, b"/v1/messages": claude_stream}
        self.health = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nOK"
        self.missing = b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: 9\r\n\r\nnot found"


class FastProtocol(asyncio.Protocol):
    """One client connection: parse requests with httptools, answer each from ``Replies``."""

    def __init__(self, replies: Replies) -> None:
        self.replies = replies
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport = self.transport
        if transport is None:
            return
        path = self.url.split(b"?", 1)[0]
        if path.endswith(b"/healthz"):
            transport.write(self.replies.health)
        elif path in self.replies.plain:
            body = b"".join(self.body)
            if any(marker in body for marker in STREAM_MARKERS):
                for frame in self.replies.streams[path]:
                    transport.write(frame)
            else:
                transport.write(self.replies.plain[path])
        else:
            transport.write(self.replies.missing)
        if not self.parser.should_keep_alive():
            transport.close()


async def serve(host: str, port: int, replies: Replies) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FastProtocol(replies), host, port, backlog=4096, reuse_address=True)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fast_upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--events", type=int, default=200, help="content events per streamed reply")
    parser.add_argument("--response-bytes", type=int, default=800, help="reply text size")
    options = parser.parse_args(argv)
    replies = Replies(options.response_bytes, options.events)
    try:
        import uvloop

        uvloop.run(serve(options.host, options.port, replies))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
