"""The HTTP client toward upstreams: one pooled aiohttp session, timeouts, and the embedded mock.

aiohttp is used rather than httpx: httpx's pool slows down and times out under the concurrency of
many long LLM streams (see the project's HTTP stack notes). The session never decompresses
(``auto_decompress=False``) and adds no headers of its own, so in proxy mode bytes and
``Content-Encoding`` pass through exactly as the upstream sent them.

``mock://`` URLs are answered in-process by ``llm_proxy.upstream.mock`` through the same interface, so the
rest of the proxy does not know the difference.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from llm_proxy.config import MOCK_SCHEME, Route, ServerConfig, Timeouts
from llm_proxy.errors import RequestError, StreamInterrupted, UpstreamUnavailable
from llm_proxy.upstream.auth import UpstreamSigner
from llm_proxy.upstream.headers import RawHeaders

MAX_CACHED_URLS = 1024
"""Parsed URLs the transport keeps (yarl's parse is a tenth of a proxied request's own cost)."""


class UpstreamResponse(Protocol):
    status: int
    raw_headers: RawHeaders

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        ...

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives. Raises ``StreamInterrupted`` if the upstream fails mid-way."""
        ...

    async def read(self, limit: int) -> bytes:
        """The whole body, at most ``limit`` bytes (more is an error)."""
        ...

    def close(self) -> None: ...


class _Request(aiohttp.ClientRequest):
    """aiohttp's request without the headers aiohttp adds of its own (``Accept``, ``Accept-Encoding``, ``User-Agent``,
    a default ``Content-Type``): the upstream gets the planned headers and nothing else. The same as naming them in
    the session's ``skip_auto_headers``, without aiohttp rebuilding and merging that set for every request (a few
    percent of the proxy's CPU per request)."""

    _skip_auto_headers = CIMultiDict(
        (name, None) for name in ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")
    )

    def update_auto_headers(self, skip_auto_headers: object) -> None:
        """Nothing to add: every automatic header is skipped (``_skip_auto_headers`` also keeps the body's
        ``Content-Type`` out)."""


class _AiohttpResponse:
    __slots__ = ("_resp", "status", "raw_headers", "_complete")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.raw_headers: RawHeaders = list(resp.raw_headers)
        self._complete = False

    def header(self, name: str) -> str | None:
        return self._resp.headers.get(name)

    def chunks(self) -> AsyncIterator[bytes]:
        # An iterator object rather than an async generator: the event loop registers every async generator in a
        # weak set when it first runs and drops it when it dies (a few thousand instructions per request).
        return _Chunks(self)

    async def read(self, limit: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in _Chunks(self):
            size += len(chunk)
            if size > limit:
                raise StreamInterrupted(f"the upstream response is larger than {limit} bytes", timeout=False)
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        # A connection whose body was not read to the end cannot be reused: close it, which also
        # tells the upstream to stop generating (client disconnects, errors).
        if self._complete:
            self._resp.release()
        else:
            self._resp.close()


class _Chunks:
    """The body of an upstream response as it arrives; ``StreamInterrupted`` if the upstream fails mid-way."""

    __slots__ = ("_response", "_readany")

    def __init__(self, response: _AiohttpResponse) -> None:
        self._response = response
        self._readany = response._resp.content.readany

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._readany()
        except aiohttp.EofStream:
            chunk = b""
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise StreamInterrupted("the upstream stopped sending (read timeout)", timeout=True) from exc
        except aiohttp.ClientError as exc:
            raise StreamInterrupted(
                f"the upstream connection failed mid-response ({type(exc).__name__})", timeout=False
            ) from exc
        if not chunk:  # aiohttp's ``iter_any`` ends on the same empty read
            self._response._complete = True
            raise StopAsyncIteration
        return chunk


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One request to send upstream, exactly as planned (``modes.plan``).

    The client adds only the route's SigV4 signature, when ``sign`` says so: credentials are applied
    inside ``send``, per route (httpx's auth flow is the model), never by the callers.
    """

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    route: Route
    sign: bool = False

    @property
    def timeouts(self) -> Timeouts:
        return self.route.timeouts


class Transport(Protocol):
    """Where a call goes once planned and signed: the network, or the embedded mock (``mock://``)."""

    async def send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, timeouts: Timeouts | None = None
    ) -> UpstreamResponse:
        """Send one request; the response's status and headers have arrived when this returns."""
        ...

    async def close(self) -> None: ...


class AiohttpTransport:
    """HTTP(S) upstreams through one pooled aiohttp session. Create inside the running event loop."""

    def __init__(self, server: ServerConfig) -> None:
        self._server = server
        self._session: aiohttp.ClientSession | None = None
        self._deadlines: dict[Timeouts | None, tuple[aiohttp.ClientTimeout, float, float]] = {}
        """Per route timeouts (a frozen value), what ``send`` applies: made once, not per request."""
        self._urls: dict[str, URL] = {}
        """Parsed upstream URLs by text (a route's few endpoints), bounded by ``MAX_CACHED_URLS``."""

    def _deadlines_for(self, timeouts: Timeouts | None) -> tuple[aiohttp.ClientTimeout, float, float]:
        """aiohttp's limits (total, connect, idle), the connect timeout and the first byte's deadline."""
        server = self._server
        connect, first_byte, idle, total = server.connect_timeout, server.read_timeout, server.read_timeout, 0.0
        if timeouts is not None:
            connect = _pick(timeouts.connect, connect)
            first_byte = _pick(timeouts.first_byte, first_byte)
            idle = _pick(timeouts.idle, idle)
            total = _pick(timeouts.total, total)
        limits = aiohttp.ClientTimeout(total=total or None, connect=connect or None, sock_read=idle or None)
        return limits, connect, first_byte

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._server.max_connections,
                limit_per_host=0,
                keepalive_timeout=30,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=self._server.connect_timeout, sock_read=self._server.read_timeout
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                request_class=_Request,
            )
        return self._session

    @property
    def opened(self) -> bool:
        return self._session is not None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, timeouts: Timeouts | None = None
    ) -> UpstreamResponse:
        target = self._urls.get(url)
        if target is None:
            try:
                target = URL(url, encoded=True)
            except ValueError as exc:
                raise RequestError("the request path cannot be joined to the upstream URL") from exc
            if len(self._urls) >= MAX_CACHED_URLS:  # model-in-path URLs and queries vary: start over
                self._urls.clear()
            self._urls[url] = target
        deadlines = self._deadlines.get(timeouts)
        if deadlines is None:
            deadlines = self._deadlines[timeouts] = self._deadlines_for(timeouts)
        limits, connect, first_byte = deadlines
        # The first byte has its own deadline; between chunks, aiohttp's sock_read (idle) applies.
        task = asyncio.current_task() if first_byte else None
        deadline = None if task is None else _Deadline(task, first_byte)
        try:
            try:
                resp = await self.session.request(
                    method, target, headers=headers, data=body or None, allow_redirects=False, timeout=limits
                )
            finally:
                timed_out = deadline is not None and deadline.close()
        except aiohttp.ConnectionTimeoutError as exc:  # before TimeoutError: it is one, but a connect failure
            raise UpstreamUnavailable(
                f"the upstream at {target.host} cannot be reached (no connection within {connect:g} s)",
                timeout=False,
            ) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamUnavailable(f"the upstream at {target.host} did not answer in time", timeout=True) from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(
                f"the upstream at {target.host} cannot be reached ({type(exc).__name__})", timeout=False
            ) from exc
        except asyncio.CancelledError as exc:
            if timed_out:
                raise UpstreamUnavailable(
                    f"the upstream at {target.host} did not answer in time", timeout=True
                ) from exc
            raise
        return _AiohttpResponse(resp)


class _Deadline:
    """Cancels ``task`` after ``delay`` seconds unless closed first: what ``asyncio.timeout`` does, with one timer
    handle and none of its context manager's Python (a tenth of the upstream call's cost in aiohttp's hands)."""

    __slots__ = ("_task", "_cancelling", "_handle", "_expired")

    def __init__(self, task: asyncio.Task[object], delay: float) -> None:
        self._task = task
        self._cancelling = task.cancelling()
        self._expired = False
        self._handle = task.get_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        self._expired = True
        self._task.cancel()

    def close(self) -> bool:
        """Stop the timer; True when it fired and its cancellation is the only one the task received since (the
        caller's ``CancelledError`` is then this deadline's: a timeout). As ``asyncio.timeout`` does, a fired
        deadline takes its cancellation back (``Task.uncancel``)."""
        self._handle.cancel()
        return self._expired and self._task.uncancel() <= self._cancelling


class Upstream:
    """Sends planned calls: signs those that need it, then hands them to the transport for their URL."""

    def __init__(self, server: ServerConfig, *, mock: Transport | None = None) -> None:
        self._http = AiohttpTransport(server)
        self._mock = mock
        self.signer = UpstreamSigner()

    def open(self) -> None:
        """Create the network transport's connection pool now (inside the running loop) rather than on first use."""
        _ = self._http.session

    @property
    def opened(self) -> bool:
        return self._http.opened

    async def close(self) -> None:
        await self._http.close()
        if self._mock is not None:
            await self._mock.close()

    async def send(self, call: UpstreamCall) -> UpstreamResponse:
        """Send one call; the response's status and headers have arrived when this returns."""
        headers = call.headers
        if call.sign:
            headers = self.signer.sign(call.route, call.method, call.url, headers, call.body)
        if call.url.startswith(MOCK_SCHEME):
            if self._mock is None:
                raise UpstreamUnavailable("no mock upstream is plugged in for mock:// routes", timeout=False)
            return await self._mock.send(call.method, call.url, headers, call.body)
        return await self._http.send(call.method, call.url, headers, call.body, call.timeouts)


def _pick(value: float | None, default: float) -> float:
    return default if value is None else value


_FORBIDDEN_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def check_header_values(headers: list[tuple[str, str]]) -> None:
    """Refuse header values with line breaks or control characters (a 400, never a failed send).

    Some values come from request bodies (a Bedrock body's ``anthropic_beta`` becomes ``anthropic-beta``);
    a CR/LF there would otherwise split the header block or make the HTTP client raise. The translation
    planners call it; proxy mode forwards only what the HTTP server parsed as headers (no line breaks can be in
    those) and the route's key (checked when the config is loaded).
    """
    if _FORBIDDEN_IN_HEADER.search("".join([name + value for name, value in headers])) is None:
        return
    for name, value in headers:
        if _FORBIDDEN_IN_HEADER.search(name + value):
            raise RequestError(f"a value sent as header {name!r} contains line breaks or control characters")
