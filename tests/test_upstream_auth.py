"""Which upstream requests are SigV4-signed, with which credentials and region, and what a missing credential does.

No network: credentials are injected, or the AWS environment is emptied and instance metadata disabled.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.credentials import Credentials

from llm_proxy.config import Route
from llm_proxy.dialects import get_spec
from llm_proxy.errors import AwsCredentialsMissing
from llm_proxy.routing import Target
from llm_proxy.upstream.auth import RETRY_AFTER, UpstreamSigner, route_region, signs
from llm_proxy.upstream.sigv4 import verify_sigv4

AKID, SECRET = "AKIDUNIT", "unit/secret"
URL = "https://bedrock-runtime.eu-central-1.amazonaws.com/model/us.anthropic.claude-v1%3A0/invoke"
INVOKE = Target("/b", "/model/x/invoke", get_spec("bedrock").endpoints[0], "bedrock", "x")
CHAT = Target("/b", "/v1/chat/completions", get_spec("openai-chat").endpoints[0], "openai-chat")


def route(**fields: object) -> Route:
    base: dict[str, object] = {
        "index": 3,
        "frontend_model_name": "m",
        "frontend_base_url": "/b",
        "backend_model_name": "us.anthropic.claude-v1:0",
        "backend_base_url": "https://bedrock-runtime.eu-central-1.amazonaws.com",
    }
    base.update(fields)
    return Route(**base)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.mark.parametrize(
    ("fields", "target", "expected"),
    [
        ({"frontend_dialect": "claude", "backend_dialect": "bedrock"}, CHAT, True),
        ({"frontend_dialect": "bedrock", "backend_dialect": "claude"}, INVOKE, False),
        ({"frontend_dialect": "claude", "backend_dialect": "bedrock", "backend_api_key": "k"}, CHAT, False),
        ({"frontend_dialect": "claude", "backend_dialect": "bedrock", "backend_base_url": "mock://"}, CHAT, False),
        ({}, INVOKE, True),
        ({}, CHAT, False),
        ({"backend_api_key": "k"}, INVOKE, False),
    ],
)
def test_which_requests_are_signed(fields: dict[str, object], target: Target, expected: bool) -> None:
    assert signs(route(**fields), target) is expected


def test_region_from_config_host_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert route_region(route(aws_region="ap-south-1")) == "ap-south-1"
    assert route_region(route()) == "eu-central-1"
    assert route_region(route(backend_base_url="http://127.0.0.1:9")) is None
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    assert route_region(route(backend_base_url="http://127.0.0.1:9")) == "sa-east-1"
    monkeypatch.setenv("AWS_REGION", "ca-central-1")
    assert route_region(route(backend_base_url="http://127.0.0.1:9")) == "ca-central-1"
    assert route_region(route()) == "eu-central-1"


def test_sign_replaces_client_credentials_and_verifies() -> None:
    signer = UpstreamSigner()
    r = route(aws_access_key_id=AKID, aws_secret_access_key=SECRET)
    client = [
        ("Authorization", "AWS4-HMAC-SHA256 Credential=CLIENT/..."),
        ("X-Amz-Date", "20200101T000000Z"),
        ("x-amz-security-token", "client-token"),
        ("x-api-key", "client-key"),
        ("content-type", "application/json"),
        ("accept", "a"),
        ("Accept", "b"),
    ]
    body = b'{"messages":[]}'
    assert signs(r, INVOKE)
    headers = dict(signer.sign(r, "POST", URL, client, body))
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "a, b"  # repeated names joined: what is signed is what is sent
    assert "x-api-key" not in headers and "x-amz-security-token" not in headers
    assert headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    assert "/eu-central-1/bedrock/aws4_request" in headers["Authorization"]
    headers["host"] = "bedrock-runtime.eu-central-1.amazonaws.com"
    target = "/model/us.anthropic.claude-v1%3A0/invoke"
    assert verify_sigv4("POST", target, headers, body, {AKID: SECRET}.get) is None
    assert verify_sigv4("POST", target, headers, body + b" ", {AKID: SECRET}.get) == "signature mismatch"


def test_routes_with_an_api_key_are_not_signed() -> None:
    assert not signs(route(backend_api_key="k"), INVOKE)


def test_credentials_are_loaded_once_per_route() -> None:
    calls: list[tuple[str | None, ...]] = []

    def load(key: str | None, secret: str | None, token: str | None, profile: str | None) -> Credentials:
        calls.append((key, secret, token, profile))
        return Credentials(AKID, SECRET, "session")

    signer = UpstreamSigner(load=load)
    r = route(aws_profile="dev", aws_region="us-west-2")
    for _ in range(3):
        headers = dict(signer.sign(r, "POST", URL, [], b"{}"))
    assert calls == [(None, None, None, "dev")]
    assert headers["X-Amz-Security-Token"] == "session"
    assert "/us-west-2/bedrock/" in headers["Authorization"]
    signer.sign(route(index=4), "POST", URL, [], b"{}")
    assert len(calls) == 2


def test_missing_credentials_are_a_500_and_retried_later() -> None:
    with pytest.raises(AwsCredentialsMissing) as info:
        UpstreamSigner().sign(route(frontend_dialect="claude", backend_dialect="bedrock"), "POST", URL, [], b"")
    assert info.value.error.status == 500
    assert info.value.error.message == (
        "no AWS credentials for route models[3] (m): no AWS credentials found in "
        "the environment, config files or instance role"
    )


def test_a_failed_lookup_is_retried_after_a_while() -> None:
    now = [100.0]
    available = [False]
    calls: list[float] = []

    def load(key: str | None, secret: str | None, token: str | None, profile: str | None) -> Credentials:
        calls.append(now[0])
        if not available[0]:
            raise ValueError("none yet")
        return Credentials(AKID, SECRET)

    signer = UpstreamSigner(load=load, clock=lambda: now[0])
    with pytest.raises(AwsCredentialsMissing, match="none yet"):
        signer.sign(route(), "POST", URL, [], b"")
    available[0] = True  # e.g. an SSO login happened
    now[0] += RETRY_AFTER - 1
    with pytest.raises(AwsCredentialsMissing, match="none yet"):
        signer.sign(route(), "POST", URL, [], b"")
    assert calls == [100.0]
    now[0] += 2
    assert dict(signer.sign(route(), "POST", URL, [], b""))["Authorization"].startswith("AWS4-HMAC-SHA256")
    assert calls == [100.0, 100.0 + RETRY_AFTER + 1]


def test_no_region_is_a_clear_500() -> None:
    r = route(backend_base_url="http://127.0.0.1:9", aws_access_key_id=AKID, aws_secret_access_key=SECRET)
    with pytest.raises(AwsCredentialsMissing, match=r"no AWS region for route models\[3\] \(m\): set aws_region"):
        UpstreamSigner().sign(r, "POST", "http://127.0.0.1:9/model/x/invoke", [], b"")
