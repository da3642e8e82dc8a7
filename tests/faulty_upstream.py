"""Upstreams that fail the way networks and servers do, on loopback, for the fault tests.

``FaultyUpstream`` is a raw asyncio TCP server (not an HTTP framework: it must be able to stop mid-message)
in its own thread and event loop. It reads one HTTP/1.1 request per connection, then misbehaves as told:

``silent``        accept and read the request, never answer
``cut_before``    accept and read the request, close the connection before the first byte
``cut_mid``       send the status line, headers and part of the body (a chunked stream, or a body shorter
                  than its Content-Length), then close the connection
``silent_mid``    the same, then stay silent with the connection open
``truncated``     the same beginning as a complete HTTP message (the chunked body properly terminated, or a
                  Content-Length that fits): the transport sees nothing wrong, only the dialect's stream
                  decoder can tell that the terminal event never came
``status``        answer ``status`` with a complete error body in the dialect of the path (``error_body``)

The partial bodies are valid beginnings in the dialect of the request path, so a translating proxy has
decoded events to forward before the failure.

Two more kinds of unreachable upstream need no server: ``closed_port()`` (connection refused) and
``never_accepting()``: a listening socket with a backlog of 0 whose single queue slot is taken by a
connection nobody accepts. Linux then drops further SYNs (``tcp_abort_on_overflow`` is 0 by default), so
a connect neither succeeds nor fails until the client's connect timeout: a blackhole on loopback, with
no firewall rule and no route to a foreign address.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from llm_proxy.framing.eventstream import chunk_frame, event_frame

PARTIAL_TEXT = "partial"
"""The text every partial stream carries before it fails."""


def _sse(event: str | None, data: dict[str, object]) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


def partial_stream(path: str) -> tuple[str, bytes]:
    """(content type, the first events of a stream) in the dialect of ``path``, with no terminal event."""
    path = path.partition("?")[0]
    if path.endswith("/converse-stream"):
        delta = {"contentBlockIndex": 0, "delta": {"text": PARTIAL_TEXT}}
        frames = event_frame("messageStart", b'{"role":"assistant"}') + event_frame(
            "contentBlockDelta", orjson.dumps(delta)
        )
        return "application/vnd.amazon.eventstream", frames
    if path.endswith(":streamGenerateContent"):
        chunk: dict[str, object] = {
            "candidates": [{"content": {"role": "model", "parts": [{"text": PARTIAL_TEXT}]}, "index": 0}]
        }
        return "text/event-stream", _sse(None, chunk)
    if path.endswith("/invoke-with-response-stream"):
        start = {"type": "message_start", "message": _claude_message()}
        return "application/vnd.amazon.eventstream", chunk_frame(orjson.dumps(start))
    if path.endswith("/chat/completions"):
        chunk = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "upstream-model",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": PARTIAL_TEXT}, "finish_reason": None}],
        }
        return "text/event-stream", _sse(None, chunk)
    if path.endswith("/responses"):
        response = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
        created = {"type": "response.created", "sequence_number": 0, "response": response}
        return "text/event-stream", _sse("response.created", created)
    events = [
        _sse("message_start", {"type": "message_start", "message": _claude_message()}),
        _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        _sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": PARTIAL_TEXT}},
        ),
    ]
    return "text/event-stream", b"".join(events)


def _claude_message() -> dict[str, object]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "upstream-model",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 0},
    }


def error_message(status: int) -> str:
    return f"upstream says {status}"


def error_body(path: str, status: int) -> bytes:
    """The error body a real upstream of the path's dialect sends with ``status``."""
    message = error_message(status)
    if "/model/" in path:
        return orjson.dumps({"message": message})
    if "/models/" in path:  # Gemini: google.rpc status names
        name = "INTERNAL" if status == 500 else "UNAVAILABLE"
        return orjson.dumps({"error": {"code": status, "message": message, "status": name}})
    if path.endswith("/messages"):
        kind = "api_error" if status == 500 else "overloaded_error"
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
    return orjson.dumps({"error": {"message": message, "type": "server_error", "param": None, "code": None}})


def _is_stream(path: str, body: bytes) -> bool:
    if path.partition("?")[0].endswith(("/invoke-with-response-stream", "/converse-stream", ":streamGenerateContent")):
        return True
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(doc, dict) and doc.get("stream") is True


class FaultyUpstream:
    def __init__(self, behaviour: str, *, status: int = 500) -> None:
        self.behaviour = behaviour
        self.status = status
        self.requests: list[tuple[str, bytes]] = []
        """(path, body) of every request read."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultyUpstream:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop)
        self._server = started.result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        # Handlers parked in a silent wait are cancelled, so none is left pending when the loop closes.
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while True:
                try:
                    path, body = await _read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append((path, body))
                if not await self._answer(path, body, writer):
                    return
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._handlers.discard(task)
            writer.close()

    async def _answer(self, path: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        """Misbehave for one request; True if the connection may serve another."""
        if self.behaviour == "status":
            error = error_body(path, self.status)
            head = f"HTTP/1.1 {self.status} Error\r\ncontent-type: application/json\r\ncontent-length: {len(error)}"
            writer.write(head.encode() + b"\r\n\r\n" + error)
            await writer.drain()
            return True
        if self.behaviour == "silent":
            await asyncio.Event().wait()  # until the test ends and the server aborts the connection
        if self.behaviour == "truncated":
            writer.write(_partial_response(path, body, complete=True))
            await writer.drain()
            return True
        if self.behaviour in ("cut_mid", "silent_mid"):
            writer.write(_partial_response(path, body))
            await writer.drain()
            if self.behaviour == "silent_mid":
                await asyncio.Event().wait()
            await asyncio.sleep(0.05)  # let the proxy forward what it got before it sees the cut
        return False


def _partial_response(path: str, body: bytes, complete: bool = False) -> bytes:
    """The beginning of an answer; ``complete``: framed as a whole HTTP message (only its content is short)."""
    content_type, events = partial_stream(path)
    if _is_stream(path, body):
        head = f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\n\r\n"
        return head.encode() + f"{len(events):x}\r\n".encode() + events + b"\r\n" + (b"0\r\n\r\n" if complete else b"")
    partial = b'{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"part'
    length = len(partial) + (0 if complete else 500)
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    return head.encode() + partial


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return path, await reader.readexactly(length)


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def never_accepting() -> Iterator[int]:
    """A loopback port whose connects hang until the client gives up (see the module docstring)."""
    listener = socket.socket()
    filler = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port: int = listener.getsockname()[1]
        filler.connect(("127.0.0.1", port))  # takes the only slot of the accept queue
        probe = socket.socket()
        probe.settimeout(0.2)
        try:
            probe.connect(("127.0.0.1", port))
            raise RuntimeError("the kernel accepted a connect on a full backlog: no blackhole on this machine")
        except TimeoutError:
            pass
        finally:
            probe.close()
        yield port
    finally:
        filler.close()
        listener.close()
