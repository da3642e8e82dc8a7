"""Client keys end to end: the official SDKs and boto3 with good, wrong, expired and not-allowed keys raise their
own error classes; limits hold across two proxies sharing a real redis-server; keys never reach an upstream or a log."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import boto3
import botocore.exceptions
import openai
import orjson
import pytest
import yaml
from botocore.config import Config as BotoConfig

from llm_proxy.app.cli import key_warnings, new_client_key
from llm_proxy.config import Config, parse_config
from tests.aws_env import isolate_aws_env
from tests.servers import (
    Recorded,
    RecordingUpstream,
    Reply,
    ServerThread,
    running_proxy,
    running_upstream,
    sdk_anthropic,
    sdk_openai,
)

ROUTE_KEY = "sk-ant-route-key-000000000001"
ALICE = "lpk-alice-0123456789abcdefghijklmnop"
BOB = "lpk-bob-expired-0123456789abcdefghij"
CAROL = "lpk-carol-haiku-only-0123456789abcd"
DAVE = "lpk-dave-three-per-minute-012345678"
ERIN = "lpk-erin-fifty-tokens-0123456789abc"
YESTERDAY = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()

CLAUDE_OK = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "up",
    "content": [{"type": "text", "text": "hello"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 20, "output_tokens": 10},
}


def _keys() -> list[dict[str, Any]]:
    return [
        {"name": "alice", "key": ALICE},
        {"name": "bob", "key_sha256": hashlib.sha256(BOB.encode()).hexdigest(), "expires": YESTERDAY},
        {"name": "carol", "key": CAROL, "models": ["claude-haiku-*"], "prefixes": ["/claude"]},
        {"name": "dave", "key": DAVE, "requests_per_minute": 3},
        {"name": "erin", "key": ERIN, "tokens_per_minute": 50},
    ]


def _config(upstream: ServerThread, server: dict[str, Any] | None = None) -> Config:
    spend = {
        "backend_base_url": upstream.url,
        "backend_api_key": ROUTE_KEY,
        "backend_auth_header": "x-api-key",
        "backend_auth_schema": "",
    }
    models = [
        {"frontend_model_name": "claude-sonnet-x", "frontend_base_url": "/claude", **spend},
        {"frontend_model_name": "claude-haiku-x", "frontend_base_url": "/claude", **spend},
        {
            "frontend_model_name": "gpt-x",
            "frontend_base_url": "/openai",
            "frontend_dialect": "openai-chat",
            "backend_dialect": "claude",
            **spend,
        },
        {
            "frontend_model_name": "bedrock-x",
            "frontend_base_url": "/bedrock",
            "frontend_dialect": "bedrock",
            "backend_dialect": "claude",
            **spend,
        },
        {"frontend_model_name": "open-x", "frontend_base_url": "/open", "backend_base_url": upstream.url},
        {
            "frontend_model_name": "own-x",
            "frontend_base_url": "/own",
            "backend_base_url": upstream.url,
            "require_client_key": True,
        },
    ]
    return parse_config({"server": server or {}, "models": models, "client_keys": _keys()}, "keys.yaml", {})


@pytest.fixture
def upstream() -> Iterator[tuple[RecordingUpstream, ServerThread]]:
    async def ok(recorded: Recorded, reply: Reply) -> None:
        await reply.json(200, orjson.dumps(CLAUDE_OK))

    fake = RecordingUpstream(ok)
    with running_upstream(fake) as server:
        yield fake, server


@pytest.fixture
def proxy(upstream: tuple[RecordingUpstream, ServerThread]) -> Iterator[ServerThread]:
    with running_proxy(_config(upstream[1])) as server:
        yield server


def _claude(proxy: ServerThread, key: str, model: str = "claude-sonnet-x") -> Any:
    client = sdk_anthropic(base_url=proxy.url + "/claude", api_key=key, max_retries=0)
    return client.messages.create(model=model, max_tokens=5, messages=[{"role": "user", "content": "hi"}])


def test_the_anthropic_sdk_raises_its_own_classes(
    proxy: ServerThread, upstream: tuple[RecordingUpstream, ServerThread], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        assert _claude(proxy, ALICE).content[0].text == "hello"
        for key in ("lpk-unknown-0000000000000000000000", BOB):
            with pytest.raises(anthropic.AuthenticationError) as auth:
                _claude(proxy, key)
            assert auth.value.status_code == 401 and auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
        with pytest.raises(anthropic.PermissionDeniedError):
            _claude(proxy, CAROL, "claude-sonnet-x")  # carol may use haiku only
        assert _claude(proxy, CAROL, "claude-haiku-x").content[0].text == "hello"
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request(
            "POST",
            "/claude/v1/messages",
            body=b'{"model":"claude-sonnet-x","max_tokens":5,"messages":[]}',
            headers={"content-type": "application/json"},
        )
        missing = conn.getresponse()
        assert missing.status == 401 and json.loads(missing.read())["error"]["message"].startswith("a client key is")
        conn.close()
    fake = upstream[0]
    assert [r.headers["x-api-key"] for r in fake.requests] == [ROUTE_KEY, ROUTE_KEY]  # client keys never go upstream
    lines = [r.getMessage() for r in caplog.records if r.name == "llm_proxy.access"]
    assert any(line.endswith("key=alice") for line in lines)
    for secret in (ALICE, BOB, CAROL, hashlib.sha256(ALICE.encode()).hexdigest()):
        assert secret not in caplog.text


def test_the_openai_sdk_raises_its_own_classes(proxy: ServerThread) -> None:
    def ask(key: str) -> Any:
        client = sdk_openai(base_url=proxy.url + "/openai/v1", api_key=key, max_retries=0)
        return client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}])

    assert ask(ALICE).choices[0].message.content == "hello"
    with pytest.raises(openai.AuthenticationError) as info:
        ask("lpk-wrong-000000000000000000000000")
    assert info.value.code == "invalid_api_key"
    with pytest.raises(openai.PermissionDeniedError):
        ask(CAROL)  # carol may use /claude only
    for _ in range(3):
        ask(DAVE)
    with pytest.raises(openai.RateLimitError) as limited:
        ask(DAVE)
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 60


def test_boto3_signs_with_the_key_name_and_the_key(
    proxy: ServerThread, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    isolate_aws_env(monkeypatch, tmp_path)
    body = orjson.dumps(
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    )

    def invoke(key_id: str, secret: str) -> Any:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=proxy.url + "/bedrock",
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=BotoConfig(retries={"max_attempts": 1}),
        )
        try:
            return json.loads(client.invoke_model(modelId="bedrock-x", body=body)["body"].read())
        finally:
            client.close()

    assert invoke("alice", ALICE)["content"][0]["text"] == "hello"
    for key_id, secret, code in (
        ("alice", "lpk-not-alices-key-00000000000000000", "InvalidSignatureException"),
        ("mallory", ALICE, "UnrecognizedClientException"),
        ("bob", BOB, "UnrecognizedClientException"),  # bob's key is given as a hash only: no SigV4 for him
    ):
        with pytest.raises(botocore.exceptions.ClientError) as info:
            invoke(key_id, secret)
        assert info.value.response["Error"]["Code"] == code
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_token_limit_stops_the_request_after_the_one_that_crossed_it(proxy: ServerThread) -> None:
    assert _claude(proxy, ERIN).usage.output_tokens == 10  # 30 tokens of 50
    assert _claude(proxy, ERIN).usage.output_tokens == 10  # 60: crosses the limit, and completes
    with pytest.raises(anthropic.RateLimitError) as info:
        _claude(proxy, ERIN)
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert _claude(proxy, ALICE).content[0].text == "hello"  # other keys are not affected


def test_model_lists_show_what_the_key_may_use(proxy: ServerThread) -> None:
    def listed(key: str) -> tuple[int, list[str]]:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request("GET", "/claude/v1/models", headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
        resp = conn.getresponse()
        data = json.loads(resp.read())
        conn.close()
        return resp.status, [m["id"] for m in data.get("data", [])]

    assert listed(ALICE) == (200, ["claude-sonnet-x", "claude-haiku-x"])
    assert listed(CAROL) == (200, ["claude-haiku-x"])
    assert listed("lpk-nobody-000000000000000000000000")[0] == 401


def test_routes_without_a_proxy_credential_stay_open_unless_asked(
    proxy: ServerThread, upstream: tuple[RecordingUpstream, ServerThread]
) -> None:
    def post(prefix: str, model: str, headers: dict[str, str]) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request(
            "POST",
            f"{prefix}/v1/messages",
            body=orjson.dumps({"model": model, "max_tokens": 5, "messages": []}),
            headers={"content-type": "application/json", **headers},
        )
        status = conn.getresponse().status
        conn.close()
        return status

    assert post("/open", "open-x", {"x-api-key": "sk-client-own"}) == 200  # forwards the client's own key
    assert post("/own", "own-x", {"x-api-key": "sk-client-own"}) == 401  # require_client_key: x-llm-proxy-key
    assert post("/own", "own-x", {"x-api-key": "sk-client-own", "x-llm-proxy-key": ALICE}) == 200
    own = upstream[0].requests[-1]
    assert own.headers["x-api-key"] == "sk-client-own" and "x-llm-proxy-key" not in own.headers


def test_two_proxies_sharing_redis_enforce_one_request_limit(
    upstream: tuple[RecordingUpstream, ServerThread], redis_url: str
) -> None:
    config = _config(upstream[1], {"state_store": redis_url})
    with running_proxy(config) as first, running_proxy(config) as second:
        for proxy in (first, second, first):
            _claude(proxy, DAVE)
        for proxy in (second, first):
            with pytest.raises(anthropic.RateLimitError):
                _claude(proxy, DAVE)


def test_keys_new_and_check_warnings() -> None:
    key = new_client_key()
    assert key.startswith("lpk-") and len(key) == 4 + 43  # 256 random bits, base64url
    assert new_client_key() != key
    config = _config_for_warnings()
    assert key_warnings(config) == [
        "client key 'bob' is given as key_sha256 only: Bedrock clients on /bedrock sign with SigV4, which needs "
        "the key itself (`key: ${ENV_VAR}`)"
    ]


def _config_for_warnings() -> Config:
    models = [
        {
            "frontend_model_name": "b",
            "frontend_base_url": "/bedrock",
            "frontend_dialect": "bedrock",
            "backend_dialect": "claude",
            "backend_base_url": "mock://",
        }
    ]
    keys = [
        {"name": "alice", "key": ALICE},
        {"name": "bob", "key_sha256": hashlib.sha256(BOB.encode()).hexdigest()},
        {"name": "carol", "key_sha256": hashlib.sha256(CAROL.encode()).hexdigest(), "prefixes": ["/claude"]},
    ]
    return parse_config({"models": models, "client_keys": keys}, "w.yaml", {})


def test_the_readme_example_loads() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in readme.split("```yaml\n")[1:] if b.startswith("client_keys:")).split("```", 1)[0]
    digest = hashlib.sha256(ALICE.encode()).hexdigest()
    doc = yaml.safe_load(block.replace("<from llm-proxy keys new alice>", digest))
    models = [{"frontend_model_name": "m", "frontend_base_url": "/p", "backend_base_url": "mock://"}]
    (alice,) = parse_config({"models": models, **doc}, "README.md", {}).client_keys
    assert (alice.name, alice.key_sha256, alice.models) == ("alice", digest, ("claude-*",))
    assert (alice.requests_per_minute, alice.tokens_per_minute, alice.expires) == (60, 200000, dt.date(2027, 1, 1))
    assert (alice.budget_usd_per_day, alice.budget_usd_per_month) == (20.0, None)


def test_limits_are_counted_locally_while_redis_is_down(
    upstream: tuple[RecordingUpstream, ServerThread], disposable_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(upstream[1], {"state_store": disposable_redis.url})
    with running_proxy(config) as proxy, caplog.at_level(logging.WARNING):
        _claude(proxy, DAVE)  # counted in Redis
        disposable_redis.kill()
        _claude(proxy, DAVE)  # Redis gone: counted locally, the request still served
        _claude(proxy, DAVE)
        _claude(proxy, DAVE)  # the local window has room for 3
        with pytest.raises(anthropic.RateLimitError):
            _claude(proxy, DAVE)
    outage = [r for r in caplog.records if "client key limits counted locally" in r.getMessage()]
    assert len(outage) == 1  # one warning per outage, not one per request


def test_metrics_count_rejections_and_label_requests_with_the_key_name(proxy: ServerThread) -> None:
    _claude(proxy, ALICE)
    with pytest.raises(anthropic.AuthenticationError):
        _claude(proxy, "lpk-unknown-0000000000000000000000")
    with pytest.raises(anthropic.PermissionDeniedError):
        _claude(proxy, CAROL, "claude-sonnet-x")
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    assert 'llm_proxy_rejections_total{reason="auth"} 1.0' in text
    assert 'llm_proxy_rejections_total{reason="forbidden"} 1.0' in text
    alice = [
        line for line in text.splitlines() if line.startswith("llm_proxy_requests_total{") and 'client="alice"' in line
    ]
    assert len(alice) == 1 and alice[0].endswith(" 1.0")
    assert ALICE not in text
