"""Credentials toward Bedrock upstreams: SigV4 signing per route, with credentials loaded once, lazily.

A request goes to Bedrock when the route translates into a dialect whose spec says ``sigv4`` (InvokeModel's
``bedrock``, Converse's ``bedrock-converse``), or when a proxy-mode route receives a path of one
(``/model/{id}/invoke…``, ``/model/{id}/converse…``). Such a request is authenticated in one of two ways:

- the route has ``backend_api_key``: a Bedrock API key, sent as ``Authorization: Bearer <key>`` by
  ``llm_proxy.upstream.headers`` like any other route key; nothing to do here;
- otherwise it is SigV4-signed (service ``bedrock``) with the route's ``aws_access_key_id`` /
  ``aws_secret_access_key`` / ``aws_session_token``, or its ``aws_profile``, or botocore's default credential
  chain (environment, config files, SSO, container and instance roles). The region is ``aws_region``, else the
  one in a ``bedrock-runtime.<region>.amazonaws.com`` host, else ``AWS_REGION``, else the profile's or
  ``AWS_DEFAULT_REGION``.

A client's own credentials never go upstream on this path: a client SigV4 signature covers the proxy's host and
cannot be valid elsewhere, and an ``x-api-key`` or bearer key meant for the proxy is not an AWS credential.

Routes to the embedded ``mock://`` upstream are never signed (the demo needs no AWS setup). Credentials are
looked up on a route's first Bedrock request, kept for the life of the process (botocore refreshes temporary
ones itself), and never logged. A failed lookup is retried after ``RETRY_AFTER`` seconds, not on every request,
because the default chain may wait on the instance metadata service.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from llm_proxy.config import Route
from llm_proxy.dialects import get_spec
from llm_proxy.errors import AwsCredentialsMissing
from llm_proxy.routing import Target
from llm_proxy.upstream.headers import is_credential

if TYPE_CHECKING:  # botocore is imported on first use: most deployments never sign anything
    from botocore.credentials import Credentials

    from llm_proxy.upstream.sigv4 import AwsSigner

RETRY_AFTER = 30.0
"""Seconds before a route whose credentials could not be found is looked up again."""

CredentialLoader = Callable[[str | None, str | None, str | None, str | None], "Credentials"]


def signs(route: Route, target: Target) -> bool:
    """Whether requests of ``route`` for ``target`` are SigV4-signed by the proxy."""
    if route.backend_api_key or route.is_mock:
        return False
    if route.translating:
        return get_spec(route.backend_dialect or "").sigv4
    return target.dialect is not None and get_spec(target.dialect).sigv4


def _profile_region(profile: str | None) -> str | None:
    # AWS_REGION is what the newer AWS SDKs and CLI v2 read first; botocore itself knows only AWS_DEFAULT_REGION.
    if os.environ.get("AWS_REGION"):
        return os.environ["AWS_REGION"]
    from botocore.exceptions import BotoCoreError
    from botocore.session import Session

    try:
        region = Session(profile=profile).get_config_variable("region")
    except BotoCoreError:  # e.g. ProfileNotFound: the credential lookup reports it better
        return None
    return region if isinstance(region, str) and region else None


def route_region(route: Route) -> str | None:
    """The signing region of ``route``: configured, else from the host, else from the AWS config/environment."""
    if route.aws_region:
        return route.aws_region
    from llm_proxy.upstream.sigv4 import region_from_host

    host = urlsplit(route.backend_base_url).hostname or ""
    return region_from_host(host) or _profile_region(route.aws_profile)


class UpstreamSigner:
    """One ``AwsSigner`` per set of credentials and region source, built on its first signed request.

    Keyed by what the signer is made from (not by route position), so a reloaded config or a pool member
    with other keys never signs with a stale signer."""

    __slots__ = ("_load", "_clock", "_signers", "_failures")

    def __init__(self, *, load: CredentialLoader | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._load = load
        self._clock = clock
        self._signers: dict[tuple[str | None, ...], AwsSigner] = {}
        self._failures: dict[tuple[str | None, ...], tuple[float, str]] = {}

    def sign(
        self, route: Route, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> list[tuple[str, str]]:
        """``headers`` without any client credential or ``x-amz-*`` header, plus a SigV4 signature for ``url``.

        ``url`` must be exactly the URL sent (percent-encoded path; ``upstream`` sends it with ``encoded=True``).
        Repeated header names are joined with ", " so that what is signed is what is sent.
        """
        signer = self._signer(route)
        kept: dict[str, str] = {}
        for name, value in headers:
            lowered = name.lower()
            if is_credential(lowered):
                continue
            kept[lowered] = f"{kept[lowered]}, {value}" if lowered in kept else value
        return list(signer.sign(method, url, kept, body).items())

    def _signer(self, route: Route) -> AwsSigner:
        key = _credentials_key(route)
        signer = self._signers.get(key)
        if signer is not None:
            return signer
        failed = self._failures.get(key)
        if failed is not None and self._clock() < failed[0]:
            raise AwsCredentialsMissing(failed[1])
        try:
            signer = self._build(route)
        except AwsCredentialsMissing as exc:
            self._failures[key] = (self._clock() + RETRY_AFTER, exc.error.message)
            raise
        self._failures.pop(key, None)
        self._signers[key] = signer
        return signer

    def _build(self, route: Route) -> AwsSigner:
        from llm_proxy.upstream.sigv4 import AwsSigner, load_credentials

        region = route_region(route)
        if region is None:
            raise AwsCredentialsMissing(f"no AWS region for route {route.label}: set aws_region")
        load = self._load or load_credentials
        try:
            credentials = load(
                route.aws_access_key_id, route.aws_secret_access_key, route.aws_session_token, route.aws_profile
            )
        except ValueError as exc:
            raise AwsCredentialsMissing(f"no AWS credentials for route {route.label}: {exc}") from None
        return AwsSigner(region, credentials)


def _credentials_key(route: Route) -> tuple[str | None, ...]:
    return (
        route.aws_access_key_id,
        route.aws_secret_access_key,
        route.aws_session_token,
        route.aws_profile,
        route.aws_region,
        route.backend_base_url,
    )
