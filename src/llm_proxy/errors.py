"""Every failure a request can meet, in one small hierarchy, rendered by one handler in ``server``.

::

    ProxyFailure                 carries a canonical ``ProxyError`` (status, kind, message)
    ├── RequestError             the client sent something we cannot accept (400, 413)
    ├── RouteError               unknown prefix or model (404)
    ├── UpstreamError            the upstream answered with an error status
    ├── UpstreamUnavailable      connect failure (502) or timeout before the first byte (504)
    └── AwsCredentialsMissing    a route must sign but has no AWS credentials or region (500)

    StreamInterrupted            the upstream failed after its response started: translation mode sends
                                 the dialect's in-stream error, proxy mode aborts the client connection
    ConfigError                  a bad config file; raised at start only, never while serving
    ListenError                  the listen address cannot be bound (port in use, no such address); at start only

Messages never contain secrets: they are built from the request shape, the config's model names
and the upstream's own error text.
"""

from __future__ import annotations

from llm_proxy.canonical import ErrorKind, ProxyError


class ProxyFailure(Exception):
    """A failure that becomes an error response in the client's dialect."""

    def __init__(self, error: ProxyError) -> None:
        super().__init__(error.message)
        self.error = error


class RequestError(ProxyFailure):
    def __init__(self, message: str, *, param: str | None = None, status: int = 400) -> None:
        kind = ErrorKind.REQUEST_TOO_LARGE if status == 413 else ErrorKind.INVALID_REQUEST
        super().__init__(ProxyError(status=status, kind=kind, message=message, param=param))


class RouteError(ProxyFailure):
    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(ProxyError(status=404, kind=ErrorKind.NOT_FOUND, message=message, code=code))


class UpstreamError(ProxyFailure):
    pass


class UpstreamUnavailable(ProxyFailure):
    def __init__(self, message: str, *, timeout: bool) -> None:
        kind = ErrorKind.TIMEOUT if timeout else ErrorKind.UPSTREAM_UNREACHABLE
        super().__init__(ProxyError(status=504 if timeout else 502, kind=kind, message=message))


class AwsCredentialsMissing(ProxyFailure):
    """No usable AWS credentials or region for a route that must sign: a 500 in the client's dialect."""

    def __init__(self, message: str) -> None:
        super().__init__(ProxyError(status=500, kind=ErrorKind.API_ERROR, message=message))


class StreamInterrupted(Exception):
    """The upstream failed after its response started (connection reset, read timeout)."""

    def __init__(self, message: str, *, timeout: bool) -> None:
        super().__init__(message)
        self.timeout = timeout


class ConfigError(Exception):
    """The config file is invalid. The message names the file, the entry and the field."""


class ListenError(Exception):
    """The server cannot bind its listen address. The message names the address and the reason."""


# Canonical kind of an HTTP error status, for upstream errors whose body says nothing better.
_KIND_BY_STATUS: dict[int, ErrorKind] = {
    400: ErrorKind.INVALID_REQUEST,
    401: ErrorKind.AUTHENTICATION,
    402: ErrorKind.BILLING,
    403: ErrorKind.PERMISSION,
    404: ErrorKind.NOT_FOUND,
    408: ErrorKind.TIMEOUT,
    409: ErrorKind.CONFLICT,
    413: ErrorKind.REQUEST_TOO_LARGE,
    422: ErrorKind.INVALID_REQUEST,
    424: ErrorKind.API_ERROR,
    429: ErrorKind.RATE_LIMIT,
    500: ErrorKind.API_ERROR,
    502: ErrorKind.UPSTREAM_UNREACHABLE,
    503: ErrorKind.OVERLOADED,
    504: ErrorKind.TIMEOUT,
    529: ErrorKind.OVERLOADED,
}


def stream_cut_short() -> ProxyError:
    """The upstream closed a stream before its terminal event: every stream decoder reports this."""
    return ProxyError(status=502, kind=ErrorKind.API_ERROR, message="upstream closed the stream before it finished")


def kind_for_status(status: int) -> ErrorKind:
    if status in _KIND_BY_STATUS:
        return _KIND_BY_STATUS[status]
    return ErrorKind.INVALID_REQUEST if 400 <= status < 500 else ErrorKind.API_ERROR
