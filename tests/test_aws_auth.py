"""SigV4 for Bedrock: known answers, parity with boto3's own signing, verification, hosts, credential loading.

No test touches the network: boto3's HTTP send is replaced by a ``before-send`` hook, and the instance metadata
service is disabled (and booby-trapped) by the autouse fixture.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.auth
import botocore.httpsession
import pytest
import urllib3
from botocore.awsrequest import AWSResponse
from botocore.credentials import Credentials

from llm_proxy.upstream.sigv4 import (
    AwsSigner,
    load_credentials,
    quote_model_id,
    region_from_host,
    verify_sigv4,
)
from tests.aws_env import isolate_aws_env

FROZEN = datetime.datetime(2024, 5, 6, 7, 8, 9)
AMZ_DATE = "20240506T070809Z"
AKID, SECRET = "AKIDTEST", "test/secret+key"

MODEL_COLON = "anthropic.claude-3-5-sonnet-20241022-v2:0"
MODEL_PROFILE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
MODEL_ARN = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
ARN_ENCODED = (
    "arn%3Aaws%3Abedrock%3Aus-west-2%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-3-5-haiku-20241022-v1%3A0"
)


@pytest.fixture(autouse=True)
def isolated_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No real AWS config, no IMDS, no container credentials; a fixed signing clock."""
    isolate_aws_env(monkeypatch, tmp_path)

    def no_network(*_: Any, **__: Any) -> Any:
        raise AssertionError("botocore tried to send an HTTP request (IMDS or an unhooked client call)")

    # The send every botocore HTTP request goes through, IMDS included: any attempt fails the test loudly.
    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", no_network)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: FROZEN)
    yield tmp_path


def _fake_response(request: Any) -> AWSResponse:
    headers = {"content-type": "application/json"}
    raw = urllib3.response.HTTPResponse(body=io.BytesIO(b"{}"), headers=headers, status=200, preload_content=False)
    return AWSResponse(request.url, 200, headers, raw)


def _boto3_request(
    model_id: str,
    *,
    stream: bool = False,
    endpoint: str = "http://127.0.0.1:9",
    token: str | None = None,
) -> tuple[str, str, dict[str, str], bytes]:
    """(method, url, headers, body) exactly as boto3 would send them; nothing leaves the process."""
    captured: list[Any] = []

    def capture(request: Any, **_: Any) -> AWSResponse:
        captured.append(request)
        return _fake_response(request)

    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-west-2",
        aws_access_key_id=AKID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
    )
    client.meta.events.register("before-send", capture)
    body = b'{"anthropic_version":"bedrock-2023-05-31","max_tokens":5,"messages":[]}'
    if stream:
        client.invoke_model_with_response_stream(
            modelId=model_id, body=body, contentType="application/json", accept="application/json"
        )
    else:
        client.invoke_model(modelId=model_id, body=body, contentType="application/json", accept="application/json")
    [prepared] = captured
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in prepared.headers.items()}
    return prepared.method, prepared.url, headers, prepared.body


def _signed_names(authorization: str) -> list[str]:
    return authorization.split("SignedHeaders=")[1].split(",")[0].split(";")


def _payload_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers boto3 signed, minus host and the ones the signer itself adds."""
    signed = set(_signed_names(headers["Authorization"])) - {"host", "x-amz-date", "x-amz-security-token"}
    return {k: v for k, v in headers.items() if k.lower() in signed}


def _target(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _secrets(key: str) -> str | None:
    return {AKID: SECRET}.get(key)


# --- known answers --------------------------------------------------------------------------------------------

VANILLA_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def test_aws_sigv4_suite_get_vanilla(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: datetime.datetime(2015, 8, 30, 12, 36))
    signer = AwsSigner("us-east-1", Credentials("AKIDEXAMPLE", VANILLA_SECRET), service="service")
    assert signer.sign("GET", "https://example.amazonaws.com/", {}, b"") == {
        "X-Amz-Date": "20150830T123600Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    }


# Signatures produced by an independent SigV4 implementation (the aws4 npm package) for the same requests.
@pytest.mark.parametrize(
    ("model_id", "body", "token", "signature"),
    [
        (
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            b'{"messages":[]}',
            None,
            "3b3ad0963b8aa83027514b5dd095005807bd4c8078e625bb558c1f579705eaf5",
        ),
        (
            "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.meta.llama3-1-8b-instruct-v1:0",
            b"{}",
            None,
            "3ed1e14ae6b58297f46dc342c189be4e292beaeeedd71da31cea054d5c93f5e0",
        ),
        ("x", b"hello world", "TOKEN/abc+=", "f5ac48303ef94d723a2fc89f89520384483b22147d4c4cf687c90eb188a1675f"),
    ],
)
def test_bedrock_known_answers(
    monkeypatch: pytest.MonkeyPatch, model_id: str, body: bytes, token: str | None, signature: str
) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: datetime.datetime(2015, 8, 30, 12, 36))
    signer = AwsSigner("us-west-2", Credentials("AKIDEXAMPLE", VANILLA_SECRET, token))
    url = f"https://bedrock-runtime.us-west-2.amazonaws.com/model/{quote_model_id(model_id)}/converse-stream"
    headers = {"content-type": "application/json", "content-length": str(len(body))}
    out = signer.sign("POST", url, headers, body)
    signed = "content-length;content-type;host;x-amz-date" + (";x-amz-security-token" if token else "")
    assert out["Authorization"] == (
        f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-west-2/bedrock/aws4_request, "
        f"SignedHeaders={signed}, Signature={signature}"
    )
    assert out.get("X-Amz-Security-Token") == token
    assert "X-Amz-Content-Sha256" not in out


def test_canonical_uri_is_the_wire_path_encoded_again() -> None:
    # The SigV4 spec computed by hand: non-S3 canonical URI = wire path percent-encoded once more.
    url = f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{quote_model_id(MODEL_ARN)}/invoke"
    assert urlsplit(url).path == f"/model/{ARN_ENCODED}/invoke"
    body = b"{}"
    out = AwsSigner("us-east-1", Credentials(AKID, SECRET)).sign(
        "POST", url, {"Content-Type": "application/json"}, body
    )
    canonical = "\n".join(
        [
            "POST",
            "/model/" + ARN_ENCODED.replace("%", "%25") + "/invoke",
            "",
            "content-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date:"
            + AMZ_DATE
            + "\n",
            "content-type;host;x-amz-date",
            hashlib.sha256(body).hexdigest(),
        ]
    )
    assert "%253A" in canonical and "%252F" in canonical
    scope = "20240506/us-east-1/bedrock/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{AMZ_DATE}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"AWS4{SECRET}".encode()
    for part in ("20240506", "us-east-1", "bedrock", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert out["Authorization"].endswith(f"Signature={signature}")

    # Signing the decoded path instead (what yarl would send without encoded=True) gives another signature.
    decoded = AwsSigner("us-east-1", Credentials(AKID, SECRET)).sign(
        "POST", url.replace(ARN_ENCODED, MODEL_ARN), {"Content-Type": "application/json"}, body
    )
    assert decoded["Authorization"] != out["Authorization"]


# --- parity with boto3 ----------------------------------------------------------------------------------------


def test_quote_model_id() -> None:
    assert quote_model_id(MODEL_COLON) == "anthropic.claude-3-5-sonnet-20241022-v2%3A0"
    assert quote_model_id(MODEL_ARN) == ARN_ENCODED
    assert quote_model_id("a b~_.-") == "a%20b~_.-"


@pytest.mark.parametrize("model_id", [MODEL_COLON, MODEL_PROFILE, MODEL_ARN])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("token", [None, "session/token=="])
def test_signer_matches_boto3(model_id: str, stream: bool, token: str | None) -> None:
    method, url, headers, body = _boto3_request(model_id, stream=stream, token=token)
    operation = "invoke-with-response-stream" if stream else "invoke"
    assert url == f"http://127.0.0.1:9/model/{quote_model_id(model_id)}/{operation}"
    assert f"Credential={AKID}/20240506/us-west-2/bedrock/aws4_request," in headers["Authorization"]

    to_sign = _payload_headers(headers)
    assert {k.lower() for k in to_sign} == (
        {"content-type", "x-amzn-bedrock-accept"} if stream else {"content-type", "accept"}
    )
    ours = AwsSigner("us-west-2", Credentials(AKID, SECRET, token)).sign(method, url, to_sign, body)
    expected = {**to_sign, "X-Amz-Date": AMZ_DATE, "Authorization": headers["Authorization"]}
    if token:
        expected["X-Amz-Security-Token"] = token
    assert ours == expected


def test_sign_drops_a_client_signature() -> None:
    client_headers = {
        "Content-Type": "application/json",
        "authorization": "AWS4-HMAC-SHA256 Credential=CLIENT/…",
        "x-amz-date": "20000101T000000Z",
        "X-Amz-Security-Token": "client-token",
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
    }
    out = AwsSigner("us-east-1", Credentials(AKID, SECRET)).sign(
        "POST", "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/invoke", client_headers, b"{}"
    )
    assert set(out) == {"Content-Type", "X-Amz-Date", "Authorization"}
    assert out["X-Amz-Date"] == AMZ_DATE
    assert "SignedHeaders=content-type;host;x-amz-date," in out["Authorization"]


def test_signer_follows_credential_refresh() -> None:
    credentials = Credentials(AKID, SECRET)
    signer = AwsSigner("us-east-1", credentials)
    url, path = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/invoke", "/model/m/invoke"
    first = signer.sign("POST", url, {}, b"{}")
    assert verify_sigv4("POST", path, {**first, "Host": urlsplit(url).netloc}, b"{}", _secrets) is None
    credentials.secret_key = "rotated"  # what a RefreshableCredentials refresh amounts to
    second = signer.sign("POST", url, {}, b"{}")
    assert second["Authorization"] != first["Authorization"]
    rotated = {AKID: "rotated"}.get
    assert verify_sigv4("POST", path, {**second, "Host": urlsplit(url).netloc}, b"{}", rotated) is None


# --- verification ---------------------------------------------------------------------------------------------


@pytest.fixture
def boto3_signed() -> tuple[str, str, dict[str, str], bytes]:
    method, url, headers, body = _boto3_request(MODEL_ARN, endpoint="http://127.0.0.1:9/bedrock")
    headers["Host"] = urlsplit(url).netloc  # added by the HTTP client on the wire
    return method, _target(url), headers, body


def test_verify_accepts_boto3(boto3_signed: tuple[str, str, dict[str, str], bytes]) -> None:
    method, target, headers, body = boto3_signed
    assert target == f"/bedrock/model/{ARN_ENCODED}/invoke"
    assert verify_sigv4(method, target, headers, body, _secrets) is None
    lowered = {k.lower(): v for k, v in headers.items()}
    assert verify_sigv4(method, target, lowered, body, _secrets) is None


def test_verify_accepts_our_signer_with_session_token() -> None:
    url = f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{ARN_ENCODED}/invoke-with-response-stream"
    signer = AwsSigner("us-east-1", Credentials(AKID, SECRET, "tok"))
    headers = signer.sign("POST", url, {"X-Amzn-Bedrock-Accept": "*/*"}, b"{}")
    headers["host"] = "bedrock-runtime.us-east-1.amazonaws.com"
    assert verify_sigv4("POST", _target(url), headers, b"{}", _secrets) is None


def _tamper(
    signed: tuple[str, str, dict[str, str], bytes], change: str
) -> tuple[str, str, dict[str, str], bytes, str | None]:
    method, target, headers, body = signed
    headers = dict(headers)
    lookup: Any = _secrets
    if change == "body":
        body = body.replace(b"5", b"6")
    elif change == "path":
        target = target.replace("haiku", "sonnet")
    elif change == "decoded path":
        target = target.replace("%3A", ":")
    elif change == "method":
        method = "PUT"
    elif change == "header":
        headers["Content-Type"] = "text/plain"
    elif change == "host":
        headers["Host"] = "127.0.0.1:10"
    elif change == "secret":
        lookup = {AKID: "wrong"}.get
    elif change == "unknown key":
        lookup = {"OTHER": SECRET}.get
    elif change == "no auth":
        del headers["Authorization"]
    elif change == "garbled auth":
        headers["Authorization"] = "Bearer abc"
    elif change == "missing header":
        del headers["Accept"]
    elif change == "date":
        headers["X-Amz-Date"] = "20240507T070809Z"
    elif change == "body hash":
        headers["X-Amz-Content-SHA256"] = hashlib.sha256(b"other").hexdigest()
    return method, target, headers, body, verify_sigv4(method, target, headers, body, lookup)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("body", "signature mismatch"),
        ("path", "signature mismatch"),
        ("decoded path", "signature mismatch"),
        ("method", "signature mismatch"),
        ("header", "signature mismatch"),
        ("host", "signature mismatch"),
        ("secret", "signature mismatch"),
        ("unknown key", "unknown access key"),
        ("no auth", "missing signature"),
        ("garbled auth", "malformed authorization header"),
        ("missing header", "signed header missing: accept"),
        ("date", "x-amz-date missing or not matching the credential scope"),
        ("body hash", "x-amz-content-sha256 does not match the body"),
    ],
)
def test_verify_rejects_tampering(
    boto3_signed: tuple[str, str, dict[str, str], bytes], change: str, reason: str
) -> None:
    assert _tamper(boto3_signed, change)[4] == reason


def test_verify_rejects_wrong_service() -> None:
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/invoke"
    headers = AwsSigner("us-east-1", Credentials(AKID, SECRET), service="bedrock-runtime").sign("POST", url, {}, b"")
    headers["Host"] = "bedrock-runtime.us-east-1.amazonaws.com"
    assert verify_sigv4("POST", "/model/m/invoke", headers, b"", _secrets) == (
        "wrong service in credential scope: bedrock-runtime"
    )
    assert verify_sigv4("POST", "/model/m/invoke", headers, b"", _secrets, service="bedrock-runtime") is None


# --- hosts ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("bedrock-runtime.us-east-1.amazonaws.com", "us-east-1"),
        ("bedrock-runtime.eu-central-2.amazonaws.com:443", "eu-central-2"),
        ("BEDROCK-RUNTIME.AP-NORTHEAST-1.AMAZONAWS.COM", "ap-northeast-1"),
        ("bedrock-runtime-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
        ("bedrock-runtime-fips.us-east-2.amazonaws.com", "us-east-2"),
        ("bedrock-runtime.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("vpce-0abc-123.bedrock-runtime.us-west-2.vpce.amazonaws.com", "us-west-2"),
        ("bedrock-runtime.us-east-1.amazonaws.com.", "us-east-1"),
        ("bedrock.us-east-1.amazonaws.com", None),
        ("bedrock-runtime.amazonaws.com", None),
        ("runtime.sagemaker.us-east-1.amazonaws.com", None),
        ("bedrock-runtime.us-east-1.example.com", None),
        ("127.0.0.1:8080", None),
        ("[::1]:8080", None),
        ("", None),
    ],
)
def test_region_from_host(host: str, region: str | None) -> None:
    assert region_from_host(host) == region


# --- credentials ----------------------------------------------------------------------------------------------


def _frozen(credentials: Credentials) -> tuple[str, str, str | None]:
    frozen = credentials.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token


def test_load_explicit_keys() -> None:
    assert _frozen(load_credentials("AK", "SK")) == ("AK", "SK", None)
    assert _frozen(load_credentials("AK", "SK", "TOK")) == ("AK", "SK", "TOK")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("AK", None, None, None), "both an access key id and a secret"),
        ((None, "SK", None, None), "both an access key id and a secret"),
        ((None, None, "TOK", None), "session token was given without"),
        ((None, None, None, None), "no AWS credentials found in the environment"),
        ((None, None, None, "absent"), "cannot load AWS credentials: .*absent"),
    ],
)
def test_load_errors(args: tuple[str | None, str | None, str | None, str | None], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_credentials(*args)


def test_load_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENVAK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ENVSK")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "ENVTOK")
    assert _frozen(load_credentials()) == ("ENVAK", "ENVSK", "ENVTOK")
    # Explicit keys win over the environment.
    assert _frozen(load_credentials("AK", "SK")) == ("AK", "SK", None)


def test_load_from_profile(isolated_aws: Path) -> None:
    (isolated_aws / "credentials").write_text(
        "[default]\naws_access_key_id = DEFAK\naws_secret_access_key = DEFSK\n"
        "[work]\naws_access_key_id = WORKAK\naws_secret_access_key = WORKSK\n"
    )
    assert _frozen(load_credentials()) == ("DEFAK", "DEFSK", None)
    assert _frozen(load_credentials(profile="work")) == ("WORKAK", "WORKSK", None)
