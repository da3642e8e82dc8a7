"""Translating an upstream answer into the client's dialect: bytes in, bytes out. Pure (sans-IO).

``StreamTranslator`` is the streamed form: ``feed(bytes) -> bytes`` for each upstream chunk, then
``close() -> bytes`` at a clean end or ``interrupted(...) -> bytes`` when the upstream failed mid-way
(the client gets its dialect's in-stream error, never a clean end). Between the backend's decoder and
the client's encoder the canonical events are stamped with the proxy's own response id (when it mints
one), scrubbed of configured secrets (in-stream errors carry upstream text), and shown to the
observers (the session turn). ``translate_response`` is the same for a whole JSON answer.

Tested by feeding upstream bytes split at every offset, with no server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llm_proxy.canonical import ErrorKind, MessageStart, ProxyError, Request, Response, StreamError, StreamEvent
from llm_proxy.dialects.base import Dialect
from llm_proxy.observe.redact import Redactor

Observer = Callable[[list[StreamEvent]], None]


class StreamTranslator:
    __slots__ = ("_decoder", "_encoder", "_message_id", "_redactor", "_observers", "content_type", "headers")

    def __init__(
        self,
        backend: Dialect,
        client: Dialect,
        request: Request,
        upstream_request: Request,
        *,
        message_id: str | None = None,
        redactor: Redactor | None = None,
        observers: tuple[Observer, ...] = (),
    ) -> None:
        self._decoder = backend.stream_decoder(upstream_request)
        self._encoder = client.stream_encoder(request)
        self._message_id = message_id
        self._redactor = redactor if redactor is not None and redactor.active else None
        self._observers = observers
        self.content_type = self._encoder.content_type
        self.headers: list[tuple[str, str]] = [("content-type", self.content_type), ("cache-control", "no-cache")]
        """The client response's headers (sent before the first byte)."""
        self.headers += list(client.response_headers(None).items())

    def feed(self, data: bytes) -> bytes:
        events = self.decode(data)
        return self.encode(events) if events else b""

    def decode(self, data: bytes) -> list[StreamEvent]:
        """The canonical events in ``data`` (stamped and scrubbed), not yet shown to anyone: the shell peeks at
        the first ones to see whether the upstream answered with an error it may retry elsewhere."""
        events = self._decoder.feed(data)
        for event in events:  # most chunks hold neither a message start nor an error: the list as it is
            if type(event) is MessageStart or type(event) is StreamError:
                return self._prepared(events)
        return events

    def encode(self, events: list[StreamEvent]) -> bytes:
        """Client bytes for ``events``, which the observers see now."""
        for observe in self._observers:
            observe(events)
        encoder = self._encoder
        if len(events) == 1:
            return encoder.encode(events[0])
        return b"".join([encoder.encode(event) for event in events])

    def close(self) -> bytes:
        """The upstream closed the stream: the decoder's last events (an error if it was cut short), the end."""
        return self.encode(self._prepared(self._decoder.close())) + self._encoder.close()

    def interrupted(self, message: str, *, timeout: bool) -> bytes:
        """The upstream failed after the stream started: the dialect's in-stream error, then the end."""
        kind = ErrorKind.TIMEOUT if timeout else ErrorKind.API_ERROR
        error = ProxyError(status=504 if timeout else 502, kind=kind, message=message)
        return self.encode(self._prepared([StreamError(error=error)])) + self._encoder.close()

    def _prepared(self, events: list[StreamEvent]) -> list[StreamEvent]:
        """``events`` under the proxy's own message id (when it mints one), in-stream errors scrubbed of secrets."""
        if self._message_id is not None:
            events = [dataclasses.replace(e, id=self._message_id) if isinstance(e, MessageStart) else e for e in events]
        if self._redactor is not None:
            events = _redacted(events, self._redactor)
        return events


def _redacted(events: list[StreamEvent], redactor: Redactor) -> list[StreamEvent]:
    return [
        dataclasses.replace(e, error=dataclasses.replace(e.error, message=redactor.text(e.error.message)))
        if isinstance(e, StreamError)
        else e
        for e in events
    ]


@dataclass(frozen=True, slots=True)
class Translated:
    """A whole answer in the client's dialect, and its canonical form (for the session)."""

    body: bytes
    headers: list[tuple[str, str]]
    response: Response


def translate_response(
    backend: Dialect,
    client: Dialect,
    doc: Any,
    request: Request,
    upstream_request: Request,
    *,
    message_id: str | None = None,
) -> Translated:
    response = backend.decode_response(doc, upstream_request)
    if message_id is not None:
        response = dataclasses.replace(response, id=message_id)
    headers = [("content-type", "application/json"), *client.response_headers(response).items()]
    return Translated(client.encode_response(response, request), headers, response)
