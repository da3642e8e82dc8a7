"""Bedrock end to end: boto3, the Anthropic SDK and the OpenAI SDK through a real proxy to the mock over HTTP.

The mock upstream verifies SigV4 signatures with its own copy of the secret (and accepts one Bedrock API key), so
every success below proves the proxy's signature is valid, not merely present. Nothing leaves 127.0.0.1: the AWS
environment is emptied, instance metadata is disabled, and every client points at the proxy.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import boto3
import openai
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import EventStreamError

from llm_proxy.app.serve import MockApp
from llm_proxy.upstream.mock import MockOptions, MockResponse, MockUpstream
from tests.aws_env import isolate_aws_env
from tests.servers import ServerThread, make_config, running_proxy, sdk_anthropic, sdk_openai
from tests.test_cli import free_port, process, run_cli

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
MODEL_PATH = "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0"
ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123def456"
ARN_PATH = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc123def456"
CLIENT_MODEL = "anthropic.claude-client-v1:0"
AKID, SECRET = "AKIDROUTE0001", "route/secret+key"
API_KEY = "bedrock-api-key-0001"
BACKENDS = ["openai-chat", "claude", "openai-responses"]
WEATHER = {
    "name": "weather",
    "description": "the weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


class RecordingMock(MockUpstream):
    """The mock upstream, remembering each request as it arrived (raw path, headers, body)."""

    def __init__(self, options: MockOptions) -> None:
        super().__init__(options)
        self.seen: list[tuple[str, dict[str, str], bytes]] = []

    async def respond(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> MockResponse:
        self.seen.append((path, {k.lower(): v for k, v in headers}, body))
        return await super().respond(method, path, headers, body)


def _routes(mock_url: str) -> list[dict[str, Any]]:
    sigv4 = {"aws_region": "us-east-1", "aws_access_key_id": AKID, "aws_secret_access_key": SECRET}
    routes: list[dict[str, Any]] = [
        # boto3 as the client, every other dialect as the upstream
        *(
            {
                "frontend_model_name": MODEL,
                "frontend_base_url": f"/from-bedrock/{backend}",
                "frontend_dialect": "bedrock",
                "backend_model_name": "mock-model",
                "backend_base_url": mock_url,
                "backend_dialect": backend,
                **(sigv4 if backend == "bedrock" else {}),
            }
            for backend in [*BACKENDS, "bedrock"]
        ),
        # SDK clients, Bedrock as the upstream
        *(
            {
                "frontend_model_name": name,
                "frontend_base_url": f"/{front}",
                "frontend_dialect": front,
                "backend_model_name": backend_model,
                "backend_base_url": mock_url,
                "backend_dialect": "bedrock",
                **auth,
            }
            for front in ("claude", "openai-chat")
            for name, backend_model, auth in (
                ("sigv4", MODEL, sigv4),
                ("sigv4-arn", ARN, sigv4),
                ("wrong-secret", MODEL, {**sigv4, "aws_secret_access_key": "not-the-secret"}),
                ("api-key", MODEL, {"backend_api_key": API_KEY}),
                ("wrong-api-key", MODEL, {"backend_api_key": "not-the-key"}),
                ("no-credentials", MODEL, {"aws_region": "us-east-1"}),
            )
        ),
        # proxy mode on Bedrock paths
        {
            "frontend_model_name": CLIENT_MODEL,
            "frontend_base_url": "/proxy",
            "backend_model_name": ARN,
            "backend_base_url": mock_url,
            **sigv4,
        },
        {
            "frontend_model_name": MODEL,
            "frontend_base_url": "/proxy",
            "backend_model_name": MODEL,
            "backend_base_url": mock_url,
            "backend_api_key": API_KEY,
        },
    ]
    return routes


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, RecordingMock]]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as env:
        isolate_aws_env(env, home)
        mock = RecordingMock(MockOptions(aws_secrets={AKID: SECRET}, bedrock_api_keys=frozenset({API_KEY})))
        with ServerThread(MockApp(mock)) as upstream, running_proxy(make_config(_routes(upstream.url))) as proxy:
            yield proxy, mock


@pytest.fixture
def proxy(servers: tuple[ServerThread, RecordingMock]) -> ServerThread:
    return servers[0]


@pytest.fixture
def mock(servers: tuple[ServerThread, RecordingMock]) -> RecordingMock:
    servers[1].seen.clear()
    return servers[1]


Boto = Callable[..., Any]


@pytest.fixture
def boto() -> Iterator[Boto]:
    """Makes bedrock-runtime clients (default: the client's own dummy keys, no retries); closes them afterwards."""
    made: list[Any] = []

    def make(endpoint: str, key: str = "AKIDCLIENT", secret: str = "client-secret", region: str = "us-east-1") -> Any:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=20),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def body(text: str, **extra: Any) -> bytes:
    doc = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }
    return json.dumps(doc).encode()


def invoke(client: Any, payload: bytes, model: str = MODEL) -> tuple[dict[str, Any], dict[str, str]]:
    result = client.invoke_model(modelId=model, body=payload, contentType="application/json", accept="application/json")
    assert result["contentType"] == "application/json"
    return json.loads(result["body"].read()), result["ResponseMetadata"]["HTTPHeaders"]


def stream_events(client: Any, payload: bytes, model: str = MODEL) -> list[dict[str, Any]]:
    result = client.invoke_model_with_response_stream(
        modelId=model, body=payload, contentType="application/json", accept="application/json"
    )
    try:
        return [json.loads(event["chunk"]["bytes"]) for event in result["body"]]
    finally:
        result["body"].close()


def check_sequence(events: list[dict[str, Any]]) -> None:
    """message_start, well-nested blocks numbered 0,1,2..., message_delta, message_stop with metrics."""
    types = [e["type"] for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    open_index: int | None = None
    next_index = 0
    for event in events[1:-2]:
        if event["type"] == "content_block_start":
            assert open_index is None and event["index"] == next_index
            open_index, next_index = event["index"], next_index + 1
        elif event["type"] == "content_block_delta":
            assert event["index"] == open_index
        else:
            assert event["type"] == "content_block_stop" and event["index"] == open_index
            open_index = None
    assert open_index is None
    usage = events[-2]["usage"]
    assert events[-1]["amazon-bedrock-invocationMetrics"] == {
        "inputTokenCount": usage["input_tokens"],
        "outputTokenCount": usage["output_tokens"],
        "invocationLatency": 0,
        "firstByteLatency": 0,
    }


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"]["text"] for e in events if e.get("delta", {}).get("type") == "text_delta")


# --- boto3 -> proxy -> every upstream dialect -------------------------------------------------------------------


@pytest.mark.parametrize("backend", [*BACKENDS, "bedrock"])
def test_boto3_invoke_text(boto: Boto, proxy: ServerThread, mock: RecordingMock, backend: str) -> None:
    doc, headers = invoke(boto(proxy.url + f"/from-bedrock/{backend}"), body("hello there"))
    assert doc["type"] == "message" and doc["role"] == "assistant"
    assert doc["model"] == MODEL
    assert doc["content"] == [{"type": "text", "text": "mock reply: hello there"}]
    assert doc["stop_reason"] == "end_turn"
    assert headers["x-amzn-bedrock-input-token-count"] == str(doc["usage"]["input_tokens"])
    assert headers["x-amzn-bedrock-output-token-count"] == str(doc["usage"]["output_tokens"])
    assert doc["usage"]["output_tokens"] > 0
    [(path, seen_headers, _)] = mock.seen
    assert "AKIDCLIENT" not in json.dumps(seen_headers)  # the client's signature never goes upstream
    if backend == "bedrock":
        assert path == "/model/mock-model/invoke"
        assert seen_headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    else:
        assert "authorization" not in seen_headers


@pytest.mark.parametrize("backend", [*BACKENDS, "bedrock"])
def test_boto3_invoke_tool_use(boto: Boto, proxy: ServerThread, backend: str) -> None:
    payload = body('weather? [[mock:tool weather {"city": "Paris"}]]', tools=[WEATHER])
    doc, _ = invoke(boto(proxy.url + f"/from-bedrock/{backend}"), payload)
    assert doc["stop_reason"] == "tool_use"
    tool_uses = [block for block in doc["content"] if block["type"] == "tool_use"]
    assert [(t["name"], t["input"]) for t in tool_uses] == [("weather", {"city": "Paris"})]
    assert tool_uses[0]["id"]


@pytest.mark.parametrize("backend", [*BACKENDS, "bedrock"])
def test_boto3_stream_text_and_tool(boto: Boto, proxy: ServerThread, backend: str) -> None:
    client = boto(proxy.url + f"/from-bedrock/{backend}")
    events = stream_events(client, body("stream me please"))
    check_sequence(events)
    assert events[0]["message"]["model"] == MODEL
    assert text_of(events) == "mock reply: stream me please"
    assert events[-2]["delta"]["stop_reason"] == "end_turn"

    events = stream_events(client, body('[[mock:tool weather {"city": "Oslo"}]]', tools=[WEATHER]))
    check_sequence(events)
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts[-1]["type"] == "tool_use" and starts[-1]["name"] == "weather"
    tool_index = len(starts) - 1
    arguments = "".join(
        e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta" and e["index"] == tool_index
    )
    assert json.loads(arguments) == {"city": "Oslo"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize("backend", [*BACKENDS, "bedrock"])
@pytest.mark.parametrize(("status", "exception"), [(429, "ThrottlingException"), (400, "ValidationException")])
def test_boto3_errors_raise_its_own_exception_classes(
    boto: Boto, proxy: ServerThread, backend: str, status: int, exception: str
) -> None:
    client = boto(proxy.url + f"/from-bedrock/{backend}")
    with pytest.raises(getattr(client.exceptions, exception)) as info:
        invoke(client, body(f"[[mock:error {status}]]"))
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert info.value.response["Error"]["Code"] == exception
    assert "mock error" in info.value.response["Error"]["Message"]
    with pytest.raises(getattr(client.exceptions, exception)):
        stream_events(client, body(f"[[mock:error {status}]]"))


@pytest.mark.parametrize("backend", [*BACKENDS, "bedrock"])
def test_boto3_in_stream_failure_raises_the_stream_error(boto: Boto, proxy: ServerThread, backend: str) -> None:
    client = boto(proxy.url + f"/from-bedrock/{backend}")
    result = client.invoke_model_with_response_stream(modelId=MODEL, body=body("[[mock:fail]] go"))
    received: list[dict[str, Any]] = []
    with pytest.raises(EventStreamError) as info:
        try:
            for event in result["body"]:
                received.append(json.loads(event["chunk"]["bytes"]))
        finally:
            result["body"].close()
    assert received[0]["type"] == "message_start"
    assert text_of(received).startswith("mock reply:")
    # The mock fails with "overloaded"; a Chat stream's error event cannot say so, hence a plain internal error.
    code = "internalServerException" if backend == "openai-chat" else "serviceUnavailableException"
    assert info.value.response["Error"] == {"Code": code, "Message": "mock failure in the middle of the stream"}


def test_boto3_unknown_model_is_resource_not_found(boto: Boto, proxy: ServerThread) -> None:
    client = boto(proxy.url + "/from-bedrock/claude")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        invoke(client, body("hi"), model="anthropic.unknown-v1:0")


# --- SDK clients -> proxy -> Bedrock upstream (the mock verifies the signature) --------------------------------


def _authorization(mock: RecordingMock) -> str:
    [(_, headers, _)] = mock.seen
    return headers["authorization"]


def test_anthropic_sdk_to_bedrock_sigv4(proxy: ServerThread, mock: RecordingMock) -> None:
    client = sdk_anthropic(base_url=f"{proxy.url}/claude", api_key="client-key", max_retries=0)
    message = client.messages.create(
        model="sigv4", max_tokens=100, messages=[{"role": "user", "content": "hi bedrock"}]
    )
    assert message.model == "sigv4"
    assert [b.text for b in message.content if b.type == "text"] == ["mock reply: hi bedrock"]
    [(path, headers, sent)] = mock.seen
    assert path == f"/model/{MODEL_PATH}/invoke"
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    assert "/us-east-1/bedrock/aws4_request" in headers["authorization"]
    assert "x-api-key" not in headers and "client-key" not in json.dumps(headers)
    assert json.loads(sent) == {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi bedrock"}],
    }


def test_anthropic_sdk_stream_and_tool_use_to_bedrock_arn(proxy: ServerThread, mock: RecordingMock) -> None:
    client = sdk_anthropic(base_url=f"{proxy.url}/claude", api_key="k", max_retries=0)
    with client.messages.stream(
        model="sigv4-arn",
        max_tokens=100,
        tools=[WEATHER],
        messages=[{"role": "user", "content": '[[mock:tool weather {"city": "Rome"}]]'}],
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.stop_reason == "tool_use"
    [tool] = [b for b in final.content if b.type == "tool_use"]
    assert (tool.name, tool.input) == ("weather", {"city": "Rome"})
    [(path, headers, _)] = mock.seen
    assert path == f"/model/{ARN_PATH}/invoke-with-response-stream"
    assert headers["accept"] == "application/vnd.amazon.eventstream"
    assert headers["x-amzn-bedrock-accept"] == "application/json"


def test_openai_sdk_to_bedrock_sigv4(proxy: ServerThread, mock: RecordingMock) -> None:
    client = sdk_openai(base_url=f"{proxy.url}/openai-chat/v1", api_key="client-key", max_retries=0)
    completion = client.chat.completions.create(model="sigv4", messages=[{"role": "user", "content": "hey"}])
    assert completion.choices[0].message.content == "mock reply: hey"
    assert completion.choices[0].finish_reason == "stop"
    chunks = list(
        client.chat.completions.create(model="sigv4", messages=[{"role": "user", "content": "streamed"}], stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "mock reply: streamed"
    assert [path for path, _, _ in mock.seen] == [
        f"/model/{MODEL_PATH}/invoke",
        f"/model/{MODEL_PATH}/invoke-with-response-stream",
    ]


def test_wrong_secret_is_refused_by_the_upstream(proxy: ServerThread, mock: RecordingMock) -> None:
    client = sdk_anthropic(base_url=f"{proxy.url}/claude", api_key="k", max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as info:
        client.messages.create(model="wrong-secret", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 403
    assert "signature mismatch" in str(info.value)
    assert _authorization(mock).startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    chat = sdk_openai(base_url=f"{proxy.url}/openai-chat/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        chat.chat.completions.create(model="wrong-secret", messages=[{"role": "user", "content": "hi"}])


@pytest.mark.parametrize("front", ["claude", "openai-chat"])
def test_api_key_mode(proxy: ServerThread, mock: RecordingMock, front: str) -> None:
    if front == "claude":
        client = sdk_anthropic(base_url=f"{proxy.url}/claude", api_key="client-key", max_retries=0)
        message = client.messages.create(model="api-key", max_tokens=10, messages=[{"role": "user", "content": "k"}])
        assert [b.text for b in message.content if b.type == "text"] == ["mock reply: k"]
        with pytest.raises(anthropic.PermissionDeniedError, match="unknown Bedrock API key"):
            client.messages.create(model="wrong-api-key", max_tokens=10, messages=[{"role": "user", "content": "k"}])
    else:
        chat = sdk_openai(base_url=f"{proxy.url}/openai-chat/v1", api_key="client-key", max_retries=0)
        completion = chat.chat.completions.create(model="api-key", messages=[{"role": "user", "content": "k"}])
        assert completion.choices[0].message.content == "mock reply: k"
        with pytest.raises(openai.PermissionDeniedError, match="unknown Bedrock API key"):
            chat.chat.completions.create(model="wrong-api-key", messages=[{"role": "user", "content": "k"}])
    first, second = (headers for _, headers, _ in mock.seen)
    assert first["authorization"] == f"Bearer {API_KEY}"
    assert "x-amz-date" not in first
    assert second["authorization"] == "Bearer not-the-key"


def test_no_credentials_is_a_clear_500(proxy: ServerThread, mock: RecordingMock) -> None:
    client = sdk_anthropic(base_url=f"{proxy.url}/claude", api_key="k", max_retries=0)
    with pytest.raises(anthropic.InternalServerError, match="no AWS credentials for route") as info:
        client.messages.create(model="no-credentials", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 500
    assert mock.seen == []


# --- proxy mode on Bedrock paths --------------------------------------------------------------------------------


def test_proxy_mode_rewrites_the_path_model_and_resigns(boto: Boto, proxy: ServerThread, mock: RecordingMock) -> None:
    client = boto(proxy.url + "/proxy")
    payload = (
        b'{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50,\n'
        b' "messages": [{"role": "user", "content": "raw"}]}'
    )
    doc, headers = invoke(client, payload, model=CLIENT_MODEL)
    assert doc["content"] == [{"type": "text", "text": "mock reply: raw"}]
    assert doc["model"] == ARN  # proxy mode: the upstream's answer as it is
    assert headers["x-amzn-bedrock-output-token-count"] == str(doc["usage"]["output_tokens"])
    events = stream_events(client, payload, model=CLIENT_MODEL)
    check_sequence(events)
    assert text_of(events) == "mock reply: raw"
    (path1, headers1, body1), (path2, headers2, body2) = mock.seen
    assert (path1, path2) == (f"/model/{ARN_PATH}/invoke", f"/model/{ARN_PATH}/invoke-with-response-stream")
    assert body1 == payload and body2 == payload  # byte for byte
    for seen in (headers1, headers2):
        assert seen["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")  # the route's, not AKIDCLIENT
        assert "AKIDCLIENT" not in json.dumps(seen)


def test_proxy_mode_with_a_bedrock_api_key(boto: Boto, proxy: ServerThread, mock: RecordingMock) -> None:
    client = boto(proxy.url + "/proxy")
    doc, _ = invoke(client, body("keyed"))
    assert doc["content"] == [{"type": "text", "text": "mock reply: keyed"}]
    [(path, headers, _)] = mock.seen
    assert path == f"/model/{MODEL_PATH}/invoke"
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert not any(name.startswith("x-amz-") for name in headers)


def test_mock_verifies_signatures_itself(boto: Boto) -> None:
    """The mock, reached directly by boto3: a valid signature passes (ARN path included), others get a 403."""
    with ServerThread(MockApp(MockUpstream(MockOptions(aws_secrets={AKID: SECRET})))) as server:
        stranger = boto(server.url)
        with pytest.raises(stranger.exceptions.AccessDeniedException, match="unknown access key"):
            invoke(stranger, body("hi"))
        client = boto(server.url, AKID, SECRET, "eu-west-3")
        doc, _ = invoke(client, body("direct"), model=ARN)
        assert doc["content"] == [{"type": "text", "text": "mock reply: direct"}]

        def tamper(request: Any, **_: Any) -> None:
            request.body = request.body.replace(b"direct", b"tamper")  # after signing, same length

        client.meta.events.register("before-send", tamper)
        with pytest.raises(client.exceptions.AccessDeniedException, match="signature mismatch"):
            invoke(client, body("direct"), model=ARN)


def test_mock_upstream_cli_flags(boto: Boto) -> None:
    """``llm-proxy mock-upstream --aws-secret AKID=SECRET --bedrock-api-key KEY``, reached directly."""
    bad = run_cli("mock-upstream", "--port", "1", "--aws-secret", "no-equals-sign")
    assert bad.returncode == 2 and "--aws-secret takes ACCESS_KEY_ID=SECRET" in bad.stderr
    port = free_port()
    args = ("mock-upstream", "--port", str(port), "--aws-secret", f"{AKID}={SECRET}", "--bedrock-api-key", API_KEY)
    with process(*args, port=port):
        url = f"http://127.0.0.1:{port}"
        signed = boto(url, AKID, SECRET)
        doc, _ = invoke(signed, body("cli"))
        assert doc["content"] == [{"type": "text", "text": "mock reply: cli"}]
        for key, status in ((API_KEY, 200), ("other-key", 403)):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", f"/model/{MODEL_PATH}/invoke", body("k"), {"Authorization": f"Bearer {key}"})
            response = conn.getresponse()
            assert response.status == status
            if status == 403:
                assert response.getheader("x-amzn-ErrorType") == "AccessDeniedException"
                assert json.loads(response.read()) == {"message": "mock: unknown Bedrock API key"}
            conn.close()
