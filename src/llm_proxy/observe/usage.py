"""The token usage of one response, as the proxy saw it go by (for token limits, and later for metrics).

``UsageMeter`` watches canonical stream events (input counted at ``MessageStart``, the cumulative total at
``Finish``) or a whole ``Response``. ``ProxyModeMeter`` does the same for proxy mode, where the answer
passes through as bytes: it reads them with the path dialect's own decoder, as they go by, never
buffering a stream (a JSON body up to ``MAX_BODY``).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from llm_proxy.canonical import Finish, MessageStart, Response, StreamEvent, Usage
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import StreamDecoder
from llm_proxy.errors import ProxyFailure

log = logging.getLogger("llm_proxy.observe.usage")

MAX_BODY = 8 << 20


class UsageMeter:
    __slots__ = ("usage",)

    def __init__(self) -> None:
        self.usage: Usage | None = None

    def observe(self, events: list[StreamEvent]) -> None:
        for event in events:
            if isinstance(event, Finish):
                self.usage = event.usage
            elif isinstance(event, MessageStart) and self.usage is None:
                self.usage = event.usage

    def answered(self, response: Response) -> None:
        self.usage = response.usage

    @property
    def tokens(self) -> int:
        """Input (cache reads and writes included) plus output tokens; 0 when nothing was reported."""
        usage = self.usage
        return 0 if usage is None else usage.prompt_tokens + usage.output_tokens


class ProxyModeMeter(UsageMeter):
    """Usage from proxy-mode response bytes of ``dialect``; silent (0 tokens) when they cannot be read."""

    __slots__ = ("_dialect", "_request", "_decoder", "_body", "_size")

    def __init__(self, dialect: str, doc: Any, path_model: str | None, content_type: str) -> None:
        super().__init__()
        codec = get_dialect(dialect)
        self._dialect = dialect
        self._decoder: StreamDecoder | None = None
        self._body: list[bytes] | None = None
        self._size = 0
        try:
            self._request = codec.decode_request(doc, path_model=path_model)
        except ProxyFailure:
            return
        if "event-stream" in content_type or "eventstream" in content_type:
            self._decoder = codec.stream_decoder(self._request)
        elif "json" in content_type:
            self._body = []

    def feed(self, chunk: bytes) -> None:
        if self._decoder is not None:
            self.observe(self._decoder.feed(chunk))
        elif self._body is not None:
            self._body.append(chunk)
            self._size += len(chunk)
            if self._size > MAX_BODY:
                self._body = None

    def close(self) -> None:
        if self._decoder is not None:
            self.observe(self._decoder.close())
        elif self._body is not None:
            try:
                doc = orjson.loads(b"".join(self._body))
                self.answered(get_dialect(self._dialect).decode_response(doc, self._request))
            except (ProxyFailure, orjson.JSONDecodeError, ValueError) as exc:
                log.debug("response usage not readable: %s", exc)
