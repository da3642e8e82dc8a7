"""One client request/response exchange over ASGI: what was asked, what was answered, and the access log.

Handlers write through an ``Exchange`` rather than calling ASGI ``send`` directly, so that status,
byte counts and timing are recorded in one place and the access log line is always written once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from llm_proxy.config import ClientKey
from llm_proxy.errors import RequestError
from llm_proxy.observe.logs import FIELDS, AccessLine
from llm_proxy.observe.record import Record, request_id
from llm_proxy.upstream.headers import UPSTREAM_REQUEST_ID, RawHeaders

access_log = logging.getLogger("llm_proxy.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Exchange:
    __slots__ = (
        "_send",
        "method",
        "path",
        "query",
        "headers",
        "raw_headers",
        "status",
        "sent",
        "started",
        "finished",
        "prefix",
        "model",
        "backend_model",
        "note",
        "aborted",
        "record",
        "key",
        "charged",
    )

    def __init__(self, scope: Scope, send: Send) -> None:
        self._send = send
        self.method: str = scope["method"]
        raw_path = scope.get("raw_path")
        self.path: str = raw_path.decode("latin-1") if raw_path else scope["path"]
        self.query: bytes = scope.get("query_string", b"")
        self.raw_headers: RawHeaders = scope["headers"]
        headers: dict[str, str] = {}
        for key, value in self.raw_headers:
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            # Repeated headers are joined as RFC 9110 allows for list-valued fields.
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        self.headers = headers
        self.status = 0
        self.sent = 0
        self.started = False
        self.finished = False
        self.prefix = ""
        self.model = "-"
        self.backend_model = "-"
        self.note = ""
        self.aborted = False
        self.record = Record(request_id(self.headers))
        """What the request did, for metrics, the span and the access log (``observe.record``)."""
        self.key: ClientKey | None = None
        """The client key the request presented, once checked (its budgets are charged at the end)."""
        self.charged = False
        """The answer's cost was counted against the key's budgets."""

    async def start(self, status: int, headers: RawHeaders) -> None:
        if any(k.lower() == b"x-request-id" for k, _ in headers):
            # A relayed upstream id (OpenAI sends one) stays readable under its own name; ours is the one.
            headers = [(UPSTREAM_REQUEST_ID if k.lower() == b"x-request-id" else k, v) for k, v in headers]
        else:
            headers = list(headers)
        await self.start_relayed(status, headers)

    async def start_relayed(self, status: int, headers: RawHeaders) -> None:
        """``start`` with ``headers`` of ``upstream.headers.response_headers`` (no ``X-Request-Id`` left in them),
        a list of the caller's that this takes over."""
        self.status = status
        self.started = True
        headers.append((b"x-request-id", self.record.request_id.encode()))
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, chunk: bytes) -> None:
        self.sent += len(chunk)
        await self._send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def end(self, chunk: bytes = b"") -> None:
        self.sent += len(chunk)
        self.finished = True
        await self._send({"type": "http.response.body", "body": chunk, "more_body": False})

    def lift_query_key(self, param: str, header: str) -> None:
        """Move an API key sent as query parameter ``param`` into ``header``, where every credential is read.

        From here on the key is a header like any other: checked by the gate, replaced or forwarded as the
        route says, and never part of the query that proxy mode forwards or that anything logs.
        """
        if not self.query:
            return
        kept: list[bytes] = []
        key: bytes | None = None
        for pair in self.query.split(b"&"):
            name, _, value = pair.partition(b"=")
            if unquote_to_bytes(name) == param.encode():
                key = unquote_to_bytes(value.replace(b"+", b" "))
            else:
                kept.append(pair)
        if key is None:
            return
        self.query = b"&".join(kept)
        if header not in self.headers:
            self.headers[header] = key.decode("latin-1")
            self.raw_headers = [*self.raw_headers, (header.encode("latin-1"), key)]

    @property
    def target(self) -> str:
        """The raw request target as received (what a SigV4 signature covers)."""
        return self.path + ("?" + self.query.decode("latin-1") if self.query else "")

    def abort(self) -> None:
        """Give up on a response already started: the server closes the connection without ending the body.

        The handler returns without the final body message; the ASGI server then closes the connection,
        so a client reading a chunked body or a stream sees it cut (an error), never a clean end. A
        response not yet finished is all this applies to.
        """
        if self.started and not self.finished:
            self.aborted = True

    async def respond(self, status: int, content_type: str, body: bytes, extra: RawHeaders | None = None) -> None:
        headers: RawHeaders = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
        if extra:
            headers.extend(extra)
        await self.start(status, headers)
        await self.end(body)

    def log(self, status: str, code: int, seconds: float) -> None:
        """The access record of a request that ended with status ``code`` (``499``: the client left first; ``0``: no
        answer began), ``status`` its text, after ``seconds`` (the request's ``ex.record.started`` on): one line;
        with a JSON formatter, its fields as one mapping. No body, no key. ``ProxyApp`` has the three at hand for
        the metrics."""
        if not access_log.isEnabledFor(logging.INFO):
            return
        if not code:
            status = "-"
        elapsed = seconds * 1000
        note = f" {self.note}" if self.note else ""
        record = self.record
        backend_model = record.backend_model or self.backend_model
        if record.client != "-":
            note = f" key={record.client}{note}"  # the key's name, never the key
        prefix = self.prefix or "/"
        args = (self.method, prefix, self.model, backend_model, status, elapsed, self.sent, note)
        if not FIELDS.structured:
            _ACCESS.write(args, record.request_id, None)
            return
        usage = record.usage
        ttft = record.ttft
        # The template's copy and a store per value: ~2k instructions fewer than a 17-key literal, which
        # grows its table twice.
        fields = _FIELDS.copy()
        fields["method"] = self.method
        fields["prefix"] = prefix
        fields["model"] = self.model
        fields["backend_model"] = backend_model
        fields["backend"] = record.backend
        fields["status"] = code or None
        fields["duration_ms"] = round(elapsed, 1)
        if ttft is not None:
            fields["ttft_ms"] = round(ttft * 1000, 1)
        if usage is not None:
            fields["input_tokens"] = usage.input_tokens
            fields["output_tokens"] = usage.output_tokens
            fields["cache_read_tokens"] = usage.cache_read_tokens
            fields["cache_write_tokens"] = usage.cache_write_tokens
            fields["reasoning_tokens"] = usage.reasoning_tokens
        fields["client"] = record.client
        fields["attempts"] = len(record.attempts)
        fields["bytes"] = self.sent
        if self.note:
            fields["note"] = self.note
        _ACCESS.write(args, record.request_id, fields)


_FIELDS: dict[str, object] = dict.fromkeys(
    (
        "method", "prefix", "model", "backend_model", "backend", "status", "duration_ms", "ttft_ms",
        "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
        "client", "attempts", "bytes", "note",
    )
)  # fmt: skip
"""The JSON access line's fields, in their order, each None until ``Exchange.log`` sets it."""
_ACCESS = AccessLine(access_log, "%s %s %s -> %s %s %.1fms %dB%s", __file__)
"""The access line's records, made without ``Logger.info``'s search of the stack for the caller's file and line
(no log format of the proxy shows them) and without most of ``LogRecord.__init__`` (``observe.logs``)."""


class RequestBody:
    """The request's bytes and their parse, handed down the request path in one object so that they can be let go
    of (``release``) once the answer is being relayed: a stream can last minutes, and while it runs nothing reads
    the request again. Held in the frames of every step instead, 1,000 streams of a 5 KB request kept ~17 MB
    (the bytes, the parsed body and the upstream's copy) for as long as they lasted."""

    __slots__ = ("data", "doc")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.doc: Any = None
        """The parsed body, once parsed (None when it is not JSON and need not be)."""

    def release(self) -> None:
        """Nothing reads the request any more (the last upstream attempt has answered, or it was translated)."""
        self.data = b""
        self.doc = None


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None if the client went away before sending it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise RequestError(f"the request body is larger than {limit} bytes", status=413)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
