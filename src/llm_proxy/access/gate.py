"""The access check: which client key a request presents, whether it may use this route and model now.

With ``client_keys`` configured, every route that spends a credential of the proxy's own (a
``backend_api_key``, AWS keys or the AWS default chain, for any backend of its pool or fallbacks)
requires a valid key; a route that forwards the client's own credential requires one only with
``require_client_key: true``, and then reads it from ``x-llm-proxy-key`` (the client's own credential
goes upstream as before). Clients present keys the way they already send credentials: ``Authorization:
Bearer``, ``x-api-key``, ``api-key``, ``x-goog-api-key``; Bedrock clients sign with SigV4, access key id =
the key's name and secret = the key, and the signature is verified as AWS would (clock skew 5 minutes).

Keys are looked up by their SHA-256 (a timing of the lookup says nothing about a configured key); they never reach
an upstream (credential headers of the client are replaced on routes that hold keys; ``x-llm-proxy-key``
is never forwarded) and are never logged. Failures are ``ProxyFailure``s in the client's dialect: 401
(missing, unknown, expired; Bedrock: 403 ``UnrecognizedClientException`` or ``InvalidSignatureException``),
403 for a prefix or model the key may not use, 429 with ``Retry-After`` when a limit is reached.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm_proxy.canonical import ErrorKind, ProxyError
from llm_proxy.config import ClientKey, Route
from llm_proxy.errors import ProxyFailure
from llm_proxy.routing import Target
from llm_proxy.upstream.auth import signs

if TYPE_CHECKING:  # the limits library is loaded only where client keys are configured
    from llm_proxy.access.quota import Quota

PROXY_KEY_HEADER = "x-llm-proxy-key"
MAX_CLOCK_SKEW = 300.0
"""Seconds a SigV4 ``X-Amz-Date`` may differ from the proxy's clock (AWS allows 5 minutes)."""
_KEY_HEADERS = ("x-api-key", "api-key", "x-goog-api-key", PROXY_KEY_HEADER)
MAX_CACHED_DIGESTS = 4096
"""Presented keys whose SHA-256 the gate remembers (a client sends the same key on every request)."""


@dataclass(frozen=True, slots=True)
class Signed:
    """What a SigV4 check needs besides the headers: the raw request target and the body."""

    method: str
    target: str
    body: bytes


def _fail(status: int, kind: ErrorKind, message: str, code: str, retry_after: float | None = None) -> ProxyFailure:
    after = None if retry_after is None else str(max(1, round(retry_after)))
    return ProxyFailure(ProxyError(status=status, kind=kind, message=message, code=code, retry_after=after))


class Gate:
    """The configured client keys and their quota; ``admit`` is the check made before each request."""

    def __init__(
        self, keys: tuple[ClientKey, ...], quota: Quota | None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.keys = keys
        self._by_name = {k.name: k for k in keys}
        self._by_digest = {k.key_sha256: k for k in keys}
        self._quota = quota
        self._clock = clock
        self._digests: dict[str, str] = {}
        """The SHA-256 of keys presented lately, by key: hashing costs more than the rest of the check."""
        self._spends: dict[tuple[int, str | None], bool] = {}
        """Whether a route spends the proxy's own credential, per route index and path dialect (a reload builds a
        new Gate, so an index always names a route of this Gate's config)."""

    @property
    def active(self) -> bool:
        return bool(self.keys)

    def required(self, route: Route, target: Target) -> bool:
        if not self.keys:
            return False
        return route.require_client_key or self._spends_own(route, target)

    def _spends_own(self, route: Route, target: Target) -> bool:
        cache_key = (route.index, target.dialect)
        spends = self._spends.get(cache_key)
        if spends is None:
            spends = self._spends[cache_key] = spends_own_credential(route, target)
        return spends

    def identify(self, route: Route, target: Target, headers: Mapping[str, str], signed: Signed) -> ClientKey:
        """The key the request presents (raises 401/403 when it presents none or a bad one)."""
        own = not self._spends_own(route, target)
        presented = headers.get(PROXY_KEY_HEADER) if own else _presented(headers)
        if presented is None and not own and _is_sigv4(headers.get("authorization", "")):
            return self._sigv4(headers, signed)
        if not presented:
            where = PROXY_KEY_HEADER if own else "the API key header"
            raise _fail(401, ErrorKind.AUTHENTICATION, f"a client key is required ({where})", "invalid_api_key")
        key = self._match(presented)
        if key is None:
            raise _fail(401, ErrorKind.AUTHENTICATION, "the client key is not valid", "invalid_api_key")
        return key

    def allowed(self, key: ClientKey, route: Route, model: str) -> None:
        """Raise 401 for an expired key, 403 for a prefix or model it may not use."""
        if key.expires is not None and dt.datetime.fromtimestamp(self._clock(), dt.UTC).date() > key.expires:
            raise _fail(401, ErrorKind.AUTHENTICATION, f"the client key {key.name!r} has expired", "invalid_api_key")
        if key.prefixes and route.frontend_base_url not in key.prefixes:
            raise _fail(
                403,
                ErrorKind.PERMISSION,
                f"the client key {key.name!r} may not use {route.frontend_base_url or '/'}",
                "permission_denied",
            )
        if not self.may_use(key, model):
            raise _fail(
                403,
                ErrorKind.PERMISSION,
                f"the client key {key.name!r} may not use model {model!r}",
                "permission_denied",
            )

    @staticmethod
    def may_use(key: ClientKey, model: str) -> bool:
        return not key.models or any(fnmatch.fnmatchcase(model, pattern) for pattern in key.models)

    async def admit(self, key: ClientKey) -> None:
        """Count the request against the key's limits; 429 with ``Retry-After`` when one is reached."""
        quota = self._quota
        if quota is None:  # no keys, no counters (never reached: admit follows identify)
            return
        wait = None if key.requests_per_minute is None else await quota.take_request(key)
        if wait is not None:
            limit = key.requests_per_minute
            message = f"the client key {key.name!r} is over its {limit} requests per minute"
            raise _fail(429, ErrorKind.RATE_LIMIT, message, "rate_limit_exceeded", wait)
        wait = None if key.tokens_per_minute is None else await quota.tokens_left(key)
        if wait is not None:
            limit = key.tokens_per_minute
            message = f"the client key {key.name!r} is over its {limit} tokens per minute"
            raise _fail(429, ErrorKind.RATE_LIMIT, message, "rate_limit_exceeded", wait)

    async def debit(self, key: ClientKey, tokens: int) -> None:
        if self._quota is not None:
            await self._quota.debit_tokens(key, tokens)

    def _match(self, presented: str) -> ClientKey | None:
        digest = self._digests.get(presented)
        if digest is None:
            digest = hashlib.sha256(presented.encode()).hexdigest()
            if len(self._digests) >= MAX_CACHED_DIGESTS:  # unknown keys sent at random: never more than the bound
                self._digests.clear()
            self._digests[presented] = digest
        # Looked up by digest: the time a lookup takes depends on the presented key's SHA-256 only, which tells
        # nothing about any configured key (a digest leads back to no key), and stays the same with 10 keys or
        # 10,000 (a comparison with every key, in constant time each, grew with their number).
        return self._by_digest.get(digest)

    def _sigv4(self, headers: Mapping[str, str], signed: Signed) -> ClientKey:
        from llm_proxy.upstream.sigv4 import signing_key_id, verify_sigv4  # botocore only for Bedrock clients

        name = signing_key_id(headers.get("authorization", ""))
        key = self._by_name.get(name or "")
        if key is None or key.key is None:
            raise _fail(
                403,
                ErrorKind.AUTHENTICATION,
                "The security token included in the request is invalid.",
                "UnrecognizedClientException",
            )
        stamp = headers.get("x-amz-date", "")
        try:
            when = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC).timestamp()
        except ValueError:
            when = None
        if when is None or abs(self._clock() - when) > MAX_CLOCK_SKEW:
            raise _fail(
                403,
                ErrorKind.AUTHENTICATION,
                "Signature expired: the request time is more than 5 minutes from the proxy's time.",
                "InvalidSignatureException",
            )
        secret = key.key
        problem = verify_sigv4(
            signed.method, signed.target, headers, signed.body, lambda n: secret if n == name else None
        )
        if problem is not None:
            raise _fail(
                403,
                ErrorKind.AUTHENTICATION,
                "The request signature we calculated does not match the signature you provided.",
                "InvalidSignatureException",
            )
        return key


def spends_own_credential(route: Route, target: Target) -> bool:
    """Whether a request of ``route`` may spend a credential of the proxy's (any backend of pool or fallbacks)."""
    for backend in (*route.pool, *route.fallbacks):
        attempt = route.using(backend)
        if attempt.is_mock:
            continue
        if attempt.backend_api_key or signs(attempt, target):
            return True
    return False


def _presented(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for name in _KEY_HEADERS:
        value = headers.get(name)
        if value:
            return value.strip()
    return None


def _is_sigv4(auth: str) -> bool:
    return auth.startswith("AWS4-HMAC-SHA256 ")
