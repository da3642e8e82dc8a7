"""AWS Signature Version 4 for Bedrock upstreams: signing, credential loading, and verification (for the mock).

All cryptography is botocore's (``SigV4Auth``); this module only decides what goes into it.

Facts that shape it:

- Bedrock runtime signs with the service name ``bedrock``, not ``bedrock-runtime`` (the host's prefix).
- The model id sits percent-encoded in the path (``:`` -> ``%3A``, ``/`` -> ``%2F``), exactly as boto3 serialises it
  (:func:`quote_model_id`). For non-S3 services the canonical URI is that path encoded once more (``%3A`` ->
  ``%253A``). ``SigV4Auth`` quotes the path it finds in the URL, so it does the right thing when given the path
  *as sent on the wire* (already encoded) and the wrong thing when given a decoded path. Hence: the URL passed to
  :meth:`AwsSigner.sign` must be byte-for-byte the URL the HTTP client sends. aiohttp/yarl decode ``%3A`` back to
  ``:`` unless the URL is built with ``yarl.URL(url, encoded=True)``.
- The signature covers the host, so a client's signature can never be forwarded: the proxy signs anew.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.exceptions import BotoCoreError
from botocore.session import Session
from botocore.utils import percent_encode

SIGNING_NAME = "bedrock"

# Headers that carry a previous signature (typically the client's); never sign or forward them.
_AUTH_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"})

_HOST_RE = re.compile(
    r"^(?:[a-z0-9-]+\.)?"  # a VPC endpoint's own prefix (vpce-…)
    r"bedrock-runtime(?:-fips)?\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)"
    r"(?:\.vpce)?\.amazonaws\.com(?:\.cn)?\.?$"
)
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


def quote_model_id(model_id: str) -> str:
    """The model id as a path segment, encoded exactly as boto3's bedrock-runtime client does."""
    return str(percent_encode(model_id))


def region_from_host(host: str) -> str | None:
    """``us-east-1`` for ``bedrock-runtime.us-east-1.amazonaws.com`` (also FIPS, VPC-endpoint, China hosts)."""
    name = host.strip().lower()
    if name.startswith("["):
        return None  # an IPv6 literal is never a Bedrock host
    name = name.rsplit(":", 1)[0] if ":" in name else name
    match = _HOST_RE.match(name)
    return match.group("region") if match else None


def load_credentials(
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    profile: str | None = None,
) -> Credentials:
    """Explicit keys when given, else botocore's standard chain (env, profile files, SSO, container, IMDS)."""
    if access_key or secret_key:
        if not (access_key and secret_key):
            raise ValueError("AWS credentials need both an access key id and a secret access key")
        return Credentials(access_key, secret_key, session_token or None)
    if session_token:
        raise ValueError("an AWS session token was given without an access key id and secret access key")
    try:
        found = Session(profile=profile).get_credentials()
    except BotoCoreError as exc:  # e.g. ProfileNotFound, a broken credential_process
        raise ValueError(f"cannot load AWS credentials: {exc}") from exc
    if found is None:
        where = f"profile {profile!r}" if profile else "the environment, config files or instance role"
        raise ValueError(f"no AWS credentials found in {where}")
    return found


class AwsSigner:
    """Signs upstream requests for one region and one set of credentials.

    Refreshable credentials (SSO, assumed roles) are snapshotted once per request with
    ``get_frozen_credentials`` so a refresh can never mix an old key with a new secret; the ``SigV4Auth`` object is
    rebuilt only when that snapshot changes, so static credentials reuse one.
    """

    __slots__ = ("region", "service", "_credentials", "_frozen", "_auth")

    def __init__(self, region: str, credentials: Credentials, *, service: str = SIGNING_NAME) -> None:
        self.region = region
        self.service = service
        self._credentials = credentials
        self._frozen: ReadOnlyCredentials | None = None
        self._auth: SigV4Auth | None = None

    def _current_auth(self) -> SigV4Auth:
        frozen = self._credentials.get_frozen_credentials()
        if self._auth is None or frozen != self._frozen:
            self._frozen = frozen
            self._auth = SigV4Auth(frozen, self.service, self.region)
        return self._auth

    def sign(self, method: str, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        """The headers to send: ``headers`` minus any earlier signature, plus ``Authorization``, ``X-Amz-Date``
        and ``X-Amz-Security-Token`` (with a session token).

        ``url`` must be exactly what goes on the wire (percent-encoded path). Every header passed in is signed
        except botocore's hop-by-hop list (user-agent, connection, …), so pass only headers that will be sent
        unchanged. ``Host`` is signed from the URL unless given.
        """
        clean = {k: v for k, v in headers.items() if k.lower() not in _AUTH_HEADERS}
        request = AWSRequest(method=method, url=url, headers=clean, data=body)
        self._current_auth().add_auth(request)
        return dict(request.headers.items())


def _parse_authorization(value: str) -> tuple[list[str], list[str], str] | None:
    match = _AUTH_RE.match(value.strip())
    if match is None:
        return None
    return match["credential"].split("/"), match["signed"].split(";"), match["signature"]


def signing_key_id(authorization: str) -> str | None:
    """The access key id a SigV4 ``Authorization`` header names, or None when it is not one."""
    parsed = _parse_authorization(authorization)
    return parsed[0][0] if parsed is not None and parsed[0] else None


def verify_sigv4(
    method: str,
    url_path_and_query: str,
    headers: Mapping[str, str],
    body: bytes,
    secret_lookup: Callable[[str], str | None],
    *,
    service: str = SIGNING_NAME,
) -> str | None:
    """Check a SigV4 ``Authorization`` header as AWS would; ``None`` if valid, else a short reason.

    ``url_path_and_query`` is the raw request target as received (still percent-encoded). For the mock upstream
    and tests: clock skew and session tokens are not checked.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    auth = lowered.get("authorization")
    if not auth:
        return "missing signature"
    parsed = _parse_authorization(auth)
    if parsed is None:
        return "malformed authorization header"
    credential, signed, signature = parsed
    if len(credential) != 5 or credential[4] != "aws4_request":
        return "malformed credential scope"
    access_key, date, region, scope_service, _ = credential
    if scope_service != service:
        return f"wrong service in credential scope: {scope_service}"
    timestamp = lowered.get("x-amz-date", "")
    if not timestamp.startswith(date) or len(timestamp) != 16:
        return "x-amz-date missing or not matching the credential scope"
    if "host" not in signed or "x-amz-date" not in signed:
        return "host and x-amz-date must be signed"
    missing = [name for name in signed if name not in lowered]
    if missing:
        return f"signed header missing: {missing[0]}"
    body_hash = lowered.get("x-amz-content-sha256")
    if body_hash is not None and body_hash != hashlib.sha256(body).hexdigest():
        return "x-amz-content-sha256 does not match the body"
    secret = secret_lookup(access_key)
    if secret is None:
        return "unknown access key"
    expected = _expected_signature(
        method,
        url_path_and_query,
        lowered,
        signed,
        body,
        timestamp,
        service,
        region,
        ReadOnlyCredentials(access_key, secret, None),
    )
    if not hmac.compare_digest(expected, signature):
        return "signature mismatch"
    return None


def _expected_signature(
    method: str,
    target: str,
    lowered: Mapping[str, str],
    signed: list[str],
    body: bytes,
    timestamp: str,
    service: str,
    region: str,
    credentials: ReadOnlyCredentials,
) -> str:
    # Rebuild the request with only the headers the client signed; the URL's host is unused because the
    # host header is among them. https keeps botocore hashing the body (it does so for http too).
    # partition, not urlsplit: a target starting with "//" is a path here, not a network location.
    path, sep, query = target.partition("?")
    url = f"https://{lowered['host']}{path}{sep}{query}"
    request = AWSRequest(method=method, url=url, headers={name: lowered[name] for name in signed}, data=body)
    request.context["timestamp"] = timestamp
    signer = SigV4Auth(credentials, service, region)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))
