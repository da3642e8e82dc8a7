"""Which headers cross the proxy, in each direction, and how credentials are rewritten.

Hop-by-hop headers and ``Host`` never cross. When a route holds its own key (``backend_api_key``),
every credential the client sent is removed, so a client's key never reaches an upstream it was not
meant for, and the route's key is sent in ``backend_auth_header``. Without a route key, proxy mode
forwards the client's headers as they are; translation mode sends the client's key in the backend's
auth header (an Anthropic ``x-api-key`` becomes an OpenAI ``Authorization: Bearer`` and back).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from llm_proxy.config import Route

RawHeaders = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "x-llm-proxy-key"}
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})


def is_credential(name: str) -> bool:
    """Client credentials, including AWS SigV4 headers (a signature covers the host: never valid upstream)."""
    return name in CREDENTIAL_HEADERS or name.startswith("x-amz-")


def _connection_tokens(raw: Iterable[tuple[bytes, bytes]]) -> set[str]:
    """Headers named in ``Connection`` are hop-by-hop too (RFC 9110 section 7.6.1)."""
    tokens: set[str] = set()
    for key, value in raw:
        if key.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.decode("latin-1").split(","))
    return tokens


_NOT_FORWARDED_BYTES = frozenset(name.encode() for name in _NOT_FORWARDED)
_CREDENTIAL_BYTES = frozenset(name.encode() for name in CREDENTIAL_HEADERS)


def proxy_request_headers(raw: RawHeaders, route: Route) -> list[tuple[str, str]]:
    """Headers for a proxy-mode upstream request."""
    strip_credentials = bool(route.backend_api_key)
    out: list[tuple[str, str]] = []
    connection = False
    for key, value in raw:
        name = key.lower()  # names compared as bytes: only the forwarded ones are decoded
        if name in _NOT_FORWARDED_BYTES:
            connection = connection or name == b"connection"
            continue
        if strip_credentials and (name in _CREDENTIAL_BYTES or name.startswith(b"x-amz-")):
            continue
        out.append((name.decode("latin-1"), value.decode("latin-1")))
    if connection:
        tokens = _connection_tokens(raw)
        out = [(name, value) for name, value in out if name not in tokens]
    if strip_credentials:
        out.append((route.backend_auth_header, route.auth_value(route.backend_api_key)))
    return out


def client_key(headers: Mapping[str, str]) -> str | None:
    """The API key a client sent, whichever header it used."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token:
            return token.strip()
        if scheme.lower().startswith("aws4-"):
            return None
        return auth.strip()
    for name in ("x-api-key", "api-key", "x-goog-api-key"):
        if headers.get(name):
            return headers[name].strip()
    return None


def translated_request_headers(
    headers: Mapping[str, str], route: Route, vendor: Mapping[str, str]
) -> list[tuple[str, str]]:
    """Headers for a translation-mode upstream request: JSON, the backend's auth, the backend's vendor headers."""
    out = [("content-type", "application/json"), ("accept-encoding", "identity")]
    key = route.backend_api_key or client_key(headers)
    if key:
        out.append((route.backend_auth_header, route.auth_value(key)))
    out.extend(vendor.items())
    return out


_HOP_BY_HOP_BYTES = frozenset(name.encode() for name in HOP_BY_HOP)
UPSTREAM_REQUEST_ID = b"x-upstream-request-id"
"""Where an upstream's own ``X-Request-Id`` goes: the client's ``X-Request-Id`` is the proxy's."""


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """Upstream response headers to pass to the client: hop-by-hop removed, ``X-Request-Id`` renamed
    ``UPSTREAM_REQUEST_ID`` (in the same pass: ``Exchange.start`` need not look for it again)."""
    out: RawHeaders = []
    for key, value in raw:
        name = key.lower()
        if name not in _HOP_BY_HOP_BYTES:
            out.append((UPSTREAM_REQUEST_ID if name == b"x-request-id" else key, value))
    return out
