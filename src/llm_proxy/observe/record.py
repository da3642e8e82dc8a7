"""What one request did, gathered while it runs and reported once at its end: metrics, the span, the access log.

A ``Record`` hangs on the request's ``Exchange`` (``ex.record``). The mode shells tell it about each upstream
attempt (``attempt``, ``headers_in``, ``failed``), hand it the canonical events or the whole answer they already
decode (``observe``, ``answered``), and say when a stream to the client opens (``stream_opened``). Everything
else reads it: ``usage`` is the answer's token usage in both modes, streamed or not; ``client`` is the client
key's name (``-`` until an auth step sets it). Nothing here awaits or touches a socket.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm_proxy.canonical import (
    BlockStart,
    Finish,
    MessageStart,
    Response,
    SignatureDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolArgsDelta,
    Usage,
)

if TYPE_CHECKING:
    from llm_proxy.dialects.base import Summary
    from llm_proxy.observe.metrics import Metrics
    from llm_proxy.observe.tracing import RequestSpan
    from llm_proxy.upstream.client import UpstreamCall

REQUEST_ID_HEADER = "x-request-id"
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:+/=@-]{1,128}")
"""A client's request id is kept when it is this plain (it goes into headers and log lines verbatim)."""
_TOKEN_EVENTS: frozenset[type] = frozenset((TextDelta, ThinkingDelta, ToolArgsDelta, SignatureDelta))
"""Events that carry generated content: the first one is the stream's first token."""


def request_id(headers: dict[str, str]) -> str:
    """The client's ``X-Request-Id`` when it is a plain token, else a new one."""
    given = headers.get(REQUEST_ID_HEADER)
    if given is not None and _ACCEPTED_ID.fullmatch(given):
        return given
    return os.urandom(16).hex()  # as random as uuid4, without building a UUID


@dataclass(slots=True)
class Attempt:
    """One upstream call of the request."""

    backend: str
    model: str
    """The model name sent to this backend."""
    dialect: str | None
    """The backend's dialect (None in proxy mode: the path's)."""
    started: float
    upstream_seconds: float | None = None
    """To the response's headers; None when no answer came."""
    status: int = 0
    failure: str | None = None
    """The error kind when the attempt failed in a way another attempt could fix."""
    outcome: str = ""
    """``ok``, ``retried`` (the next attempt went to the same backend), ``fallback`` (to another), ``failed``."""


class Record:
    """The observable facts of one request (see the module docstring)."""

    __slots__ = (
        "request_id",
        "started",
        "client",
        "usage",
        "response_model",
        "finish_reasons",
        "error_type",
        "ttft",
        "attempts",
        "streaming",
        "span",
        "metrics",
        "dialect",
        "cost",
        "_prefix",
    )

    def __init__(self, rid: str, metrics: Metrics | None = None, span: RequestSpan | None = None) -> None:
        self.request_id = rid
        self.started = time.perf_counter()
        self.client = "-"
        """The client key's name; set by the auth step when client keys are configured."""
        self.usage: Usage | None = None
        """The answer's token usage, once the response ended (both modes, streamed or not)."""
        self.response_model: str | None = None
        self.finish_reasons: list[str] = []
        self.error_type: str | None = None
        self.ttft: float | None = None
        """Seconds from the request's arrival to the stream's first generated token."""
        self.attempts: list[Attempt] = []
        self.streaming = False
        self.span = span
        self.metrics = metrics
        self.cost: float | None = None
        """USD, when priced at the end for a client key's budget (the ledger prices other answers later)."""
        self.dialect = "-"
        """The client's dialect (the route's frontend dialect, else the path's), ``-`` before routing."""
        self._prefix: str | None = None

    # -- attempts ---------------------------------------------------------------------------------

    @property
    def tokens(self) -> int:
        """Input (cache reads and writes included) plus output tokens of the answer; 0 when none were reported."""
        usage = self.usage
        return 0 if usage is None else usage.prompt_tokens + usage.output_tokens

    def attempt(self, backend: str, call: UpstreamCall) -> UpstreamCall:
        """An attempt to ``backend`` begins; the call to send (with ``traceparent`` when tracing)."""
        if self.attempts:
            previous = self.attempts[-1]
            previous.outcome = "retried" if previous.backend == backend else "fallback"
            if self.span is not None:
                self.span.attempt_ended(previous)
        route = call.route
        self.attempts.append(Attempt(backend, route.backend_model_name, route.backend_dialect, time.perf_counter()))
        if self.span is not None:
            return self.span.attempt_started(backend, call)
        return call

    def headers_in(self, status: int) -> None:
        """The current attempt's upstream answered with ``status`` (its headers arrived)."""
        current = self.attempts[-1]
        current.status = status
        current.upstream_seconds = time.perf_counter() - current.started

    def failed(self, kind: str) -> None:
        """The current attempt failed before anything reached the client."""
        if self.attempts:
            self.attempts[-1].failure = kind

    @property
    def backend(self) -> str:
        """The backend of the last attempt (the one that answered the client), ``-`` before any."""
        return self.attempts[-1].backend if self.attempts else "-"

    @property
    def backend_dialect(self) -> str:
        """The dialect the last attempt's backend spoke (in proxy mode: the client's)."""
        dialect = self.attempts[-1].dialect if self.attempts else None
        return dialect or self.dialect

    @property
    def backend_model(self) -> str | None:
        """The model the last attempt asked its backend for (None before any attempt)."""
        return self.attempts[-1].model if self.attempts else None

    # -- the answer ---------------------------------------------------------------------------------

    def stream_opened(self, prefix: str) -> None:
        """A streamed answer starts toward the client (counted in ``active_streams`` until the request ends)."""
        if self.streaming:
            return
        self.streaming = True
        self._prefix = prefix
        if self.metrics is not None:
            self.metrics.stream_opened(prefix)

    def observe(self, events: list[StreamEvent]) -> None:
        """Canonical stream events of the answer, in order (an observer of the stream translator or the tap)."""
        for event in events:
            if type(event) in _TOKEN_EVENTS:  # most events: after the first token, nothing to note
                if self.ttft is None:
                    self.ttft = time.perf_counter() - self.started
            elif isinstance(event, MessageStart):
                self.response_model = event.model or self.response_model
                self.usage = _merged(self.usage, event.usage)
            elif isinstance(event, Finish):
                self.usage = _merged(self.usage, event.usage)
                if event.stop_reason is not None:
                    self.finish_reasons.append(str(event.stop_reason))
            elif isinstance(event, StreamError):
                self.error_type = str(event.error.kind)
            elif self.ttft is None and isinstance(event, BlockStart) and event.kind == "redacted_thinking":
                self.ttft = time.perf_counter() - self.started

    def answered(self, response: Response | Summary) -> None:
        """The whole answer (not streamed), or its summary (proxy mode)."""
        self.response_model = response.model or self.response_model
        self.usage = response.usage
        if response.stop_reason is not None:
            self.finish_reasons.append(str(response.stop_reason))

    def stream_closed(self) -> None:
        if self.streaming and self.metrics is not None and self._prefix is not None:
            self.metrics.stream_closed(self._prefix)
            self._prefix = None

    def settle(self, status: int) -> None:
        """The request ended with ``status``: the last attempt's outcome, from how it failed or what it answered."""
        if not self.attempts:
            return
        last = self.attempts[-1]
        answered = last.status or status
        bad = last.failure is not None or answered >= 500 or answered in (408, 429)
        last.outcome = "failed" if bad else "ok"
        if self.span is not None:
            self.span.attempt_ended(last)


def _merged(old: Usage | None, new: Usage) -> Usage:
    """Usage seen so far and a later report: each count the larger (a stream reports input first, output last)."""
    if old is None:
        return new
    return Usage(
        input_tokens=max(old.input_tokens, new.input_tokens),
        output_tokens=max(old.output_tokens, new.output_tokens),
        cache_read_tokens=max(old.cache_read_tokens, new.cache_read_tokens),
        cache_write_tokens=max(old.cache_write_tokens, new.cache_write_tokens),
        reasoning_tokens=max(old.reasoning_tokens, new.reasoning_tokens),
    )
