"""Bedrock Converse end to end: boto3 ``converse``/``converse_stream`` through a real proxy to the mock over HTTP,
and the Anthropic and OpenAI SDKs through the proxy to a Converse upstream (the mock, verifying SigV4).

As in ``test_bedrock_e2e.py``, the mock checks every signature with its own copy of the secret, so a success
proves the proxy signed anew; nothing leaves 127.0.0.1 and the machine's AWS setup is hidden.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import EventStreamError

from llm_proxy.app.serve import MockApp
from llm_proxy.config import parse_config
from llm_proxy.upstream.mock import MockOptions
from tests.aws_env import isolate_aws_env
from tests.servers import ServerThread, make_config, running_proxy, sdk_anthropic, sdk_openai
from tests.test_bedrock_e2e import RecordingMock

MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
MODEL_PATH = "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0"
CLIENT_MODEL = "anthropic.claude-client-v1:0"
AKID, SECRET = "AKIDCONVERSE01", "converse/secret+key"
API_KEY = "bedrock-api-key-converse"
BACKENDS = ["claude", "openai-chat", "openai-responses", "bedrock", "bedrock-converse"]
SIGV4 = {"aws_region": "us-east-1", "aws_access_key_id": AKID, "aws_secret_access_key": SECRET}
WEATHER = {
    "toolSpec": {
        "name": "weather",
        "description": "the weather in a city",
        "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
    }
}
WEATHER_CLAUDE = {
    "name": "weather",
    "description": "the weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _routes(mock_url: str) -> list[dict[str, Any]]:
    aws = ("bedrock", "bedrock-converse")
    return [
        *(
            {
                "frontend_model_name": MODEL,
                "frontend_base_url": f"/from-converse/{backend}",
                "frontend_dialect": "bedrock-converse",
                "backend_model_name": "mock-model",
                "backend_base_url": mock_url,
                "backend_dialect": backend,
                **(SIGV4 if backend in aws else {}),
            }
            for backend in BACKENDS
        ),
        *(
            {
                "frontend_model_name": name,
                "frontend_base_url": f"/{front}",
                "frontend_dialect": front,
                "backend_model_name": MODEL,
                "backend_base_url": mock_url,
                "backend_dialect": "bedrock-converse",
                **auth,
            }
            for front in ("claude", "openai-chat", "openai-responses")
            for name, auth in (
                ("sigv4", SIGV4),
                ("wrong-secret", {**SIGV4, "aws_secret_access_key": "not-the-secret"}),
                ("api-key", {"backend_api_key": API_KEY}),
            )
        ),
        {
            "frontend_model_name": CLIENT_MODEL,
            "frontend_base_url": "/proxy",
            "backend_model_name": MODEL,
            "backend_base_url": mock_url,
            **SIGV4,
        },
    ]


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
    """Makes bedrock-runtime clients (the client's own dummy keys, no retries); closes them afterwards."""
    made: list[Any] = []

    def make(endpoint: str, key: str = "AKIDCLIENT", secret: str = "client-secret") -> Any:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=20),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def converse(client: Any, text: str, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = client.converse(modelId=MODEL, messages=user(text), **extra)
    return result


def stream(client: Any, text: str, model: str = MODEL, **extra: Any) -> list[dict[str, Any]]:
    result = client.converse_stream(modelId=model, messages=user(text), **extra)
    try:
        return list(result["stream"])
    finally:
        result["stream"].close()


def check_sequence(events: list[dict[str, Any]]) -> None:
    """messageStart, blocks numbered 0,1,2... each closed before the next opens, messageStop, then metadata."""
    names = [next(iter(e)) for e in events]
    assert names[0] == "messageStart" and names[-2:] == ["messageStop", "metadata"]
    assert events[0]["messageStart"] == {"role": "assistant"}
    current, next_index = None, 0
    for event in events[1:-2]:
        name, body = next(iter(event.items()))
        index = body["contentBlockIndex"]
        if name in ("contentBlockStart", "contentBlockDelta") and index != current:
            assert current is None and index == next_index
            current, next_index = index, next_index + 1
        elif name == "contentBlockStop":
            assert index == current
            current = None
    assert current is None
    usage = events[-1]["metadata"]["usage"]
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"] > 0


def text_of(events: list[dict[str, Any]]) -> str:
    deltas = (e["contentBlockDelta"]["delta"] for e in events if "contentBlockDelta" in e)
    return "".join(d.get("text", "") for d in deltas)


# --- boto3 -> proxy -> every upstream dialect -------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_boto3_converse_text(boto: Boto, proxy: ServerThread, mock: RecordingMock, backend: str) -> None:
    result = converse(boto(proxy.url + f"/from-converse/{backend}"), "hello there", inferenceConfig={"maxTokens": 50})
    assert result["output"]["message"] == {"role": "assistant", "content": [{"text": "mock reply: hello there"}]}
    assert result["stopReason"] == "end_turn"
    usage = result["usage"]
    assert usage["outputTokens"] > 0 and usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert result["metrics"] == {"latencyMs": 0}
    [(path, seen_headers, _)] = mock.seen
    assert "AKIDCLIENT" not in json.dumps(seen_headers)  # the client's signature never goes upstream
    if backend in ("bedrock", "bedrock-converse"):
        operation = "converse" if backend == "bedrock-converse" else "invoke"
        assert path == f"/model/mock-model/{operation}"
        assert seen_headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    else:
        assert "authorization" not in seen_headers


@pytest.mark.parametrize("backend", BACKENDS)
def test_boto3_converse_tool_round_trip(boto: Boto, proxy: ServerThread, backend: str) -> None:
    client = boto(proxy.url + f"/from-converse/{backend}")
    prompt = 'weather? [[mock:tool weather {"city": "Paris"}]]'
    first = converse(client, prompt, toolConfig={"tools": [WEATHER]})
    assert first["stopReason"] == "tool_use"
    uses = [b["toolUse"] for b in first["output"]["message"]["content"] if "toolUse" in b]
    assert [(u["name"], u["input"]) for u in uses] == [("weather", {"city": "Paris"})]
    result = {"toolResult": {"toolUseId": uses[0]["toolUseId"], "content": [{"text": "sunny, 21C"}]}}
    second = client.converse(
        modelId=MODEL,
        messages=[*user(prompt), first["output"]["message"], {"role": "user", "content": [result]}],
        toolConfig={"tools": [WEATHER]},
    )
    assert second["stopReason"] == "end_turn"
    assert second["output"]["message"]["content"] == [{"text": "The tool returned: sunny, 21C"}]


@pytest.mark.parametrize("backend", BACKENDS)
def test_boto3_converse_stream_text_and_tool(boto: Boto, proxy: ServerThread, backend: str) -> None:
    client = boto(proxy.url + f"/from-converse/{backend}")
    events = stream(client, "stream me please")
    check_sequence(events)
    assert text_of(events) == "mock reply: stream me please"
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"

    events = stream(client, '[[mock:tool weather {"city": "Oslo"}]]', toolConfig={"tools": [WEATHER]})
    check_sequence(events)
    [start] = [e["contentBlockStart"] for e in events if "contentBlockStart" in e]
    assert start["start"]["toolUse"]["name"] == "weather" and start["start"]["toolUse"]["toolUseId"]
    arguments = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "contentBlockDelta" in e and e["contentBlockDelta"]["contentBlockIndex"] == start["contentBlockIndex"]
    )
    assert json.loads(arguments) == {"city": "Oslo"}
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"


@pytest.mark.parametrize("backend", ["claude", "bedrock", "bedrock-converse"])
def test_boto3_converse_thinking_signature_round_trip(
    boto: Boto, proxy: ServerThread, mock: RecordingMock, backend: str
) -> None:
    client = boto(proxy.url + f"/from-converse/{backend}")
    first = converse(client, "think first [[mock:think]]")
    reasoning = first["output"]["message"]["content"][0]["reasoningContent"]["reasoningText"]
    assert reasoning["text"] == "Thinking about the request." and reasoning["signature"].startswith("mock-signature-")
    client.converse(modelId=MODEL, messages=[*user("think"), first["output"]["message"], *user("again")])
    sent = json.loads(mock.seen[-1][2])
    assert reasoning["signature"] in json.dumps(sent)  # the signature went back upstream unmodified


def test_boto3_converse_openai_reasoning_rides_in_the_signature(
    boto: Boto, proxy: ServerThread, mock: RecordingMock
) -> None:
    client = boto(proxy.url + "/from-converse/openai-responses")
    events = stream(client, "think [[mock:think]]")
    check_sequence(events)
    deltas = [e["contentBlockDelta"]["delta"] for e in events if "contentBlockDelta" in e]
    signature = "".join(d["reasoningContent"].get("signature", "") for d in deltas if "reasoningContent" in d)
    assert signature.startswith("lpx1.")  # the carry envelope of the Responses reasoning item
    first = converse(client, "think [[mock:think]]")
    reasoning = first["output"]["message"]["content"][0]["reasoningContent"]["reasoningText"]
    assert reasoning["text"] == "Thinking about the request." and reasoning["signature"].startswith("lpx1.")
    client.converse(modelId=MODEL, messages=[*user("think"), first["output"]["message"], *user("again")])
    sent = json.loads(mock.seen[-1][2])
    [item] = [i for i in sent["input"] if i.get("type") == "reasoning"]
    assert item["encrypted_content"].startswith("mock-enc-") and item["id"].startswith("rs_")  # restored exactly


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("status", "exception"),
    [(429, "ThrottlingException"), (400, "ValidationException"), (503, "ServiceUnavailableException")],
)
def test_boto3_converse_errors_raise_its_own_exception_classes(
    boto: Boto, proxy: ServerThread, backend: str, status: int, exception: str
) -> None:
    client = boto(proxy.url + f"/from-converse/{backend}")
    with pytest.raises(getattr(client.exceptions, exception)) as info:
        converse(client, f"[[mock:error {status}]]")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert info.value.response["Error"]["Code"] == exception
    assert "mock error" in info.value.response["Error"]["Message"]
    with pytest.raises(getattr(client.exceptions, exception)):
        stream(client, f"[[mock:error {status}]]")


@pytest.mark.parametrize("backend", BACKENDS)
def test_boto3_converse_in_stream_failure_raises_the_stream_error(
    boto: Boto, proxy: ServerThread, backend: str
) -> None:
    client = boto(proxy.url + f"/from-converse/{backend}")
    result = client.converse_stream(modelId=MODEL, messages=user("[[mock:fail]] go"))
    received: list[dict[str, Any]] = []
    with pytest.raises(EventStreamError) as info:
        try:
            for event in result["stream"]:
                received.append(event)
        finally:
            result["stream"].close()
    assert received[0] == {"messageStart": {"role": "assistant"}}
    assert text_of(received).startswith("mock reply:")
    # The mock fails with "overloaded"; a Chat stream's error event cannot say so, hence a plain internal error.
    code = "internalServerException" if backend == "openai-chat" else "serviceUnavailableException"
    assert info.value.response["Error"] == {"Code": code, "Message": "mock failure in the middle of the stream"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_boto3_converse_cut_stream_is_an_error(boto: Boto, proxy: ServerThread, backend: str) -> None:
    client = boto(proxy.url + f"/from-converse/{backend}")
    result = client.converse_stream(modelId=MODEL, messages=user("[[mock:cut]] go"))
    received: list[dict[str, Any]] = []
    with pytest.raises(EventStreamError) as info:
        try:
            for event in result["stream"]:
                received.append(event)
        finally:
            result["stream"].close()
    assert not any("messageStop" in e for e in received)
    assert info.value.response["Error"]["Code"] == "modelStreamErrorException"


def test_boto3_converse_max_tokens_and_unknown_model(boto: Boto, proxy: ServerThread) -> None:
    client = boto(proxy.url + "/from-converse/openai-chat")
    assert converse(client, "[[mock:length]] long")["stopReason"] == "max_tokens"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.converse(modelId="anthropic.unknown-v1:0", messages=user("hi"))


# --- SDK clients -> proxy -> Converse upstream (the mock verifies the signature) --------------------------------


def test_anthropic_sdk_to_converse(proxy: ServerThread, mock: RecordingMock) -> None:
    client = sdk_anthropic(base_url=f"{proxy.url}/claude", api_key="client-key", max_retries=0)
    message = client.messages.create(
        model="sigv4", max_tokens=100, system="be brief", messages=[{"role": "user", "content": "hi converse"}]
    )
    assert message.model == "sigv4"
    assert [b.text for b in message.content if b.type == "text"] == ["mock reply: hi converse"]
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    [(path, headers, sent)] = mock.seen
    assert path == f"/model/{MODEL_PATH}/converse"
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")
    assert "/us-east-1/bedrock/aws4_request" in headers["authorization"]
    assert "client-key" not in json.dumps(headers)
    assert json.loads(sent) == {
        "messages": [{"role": "user", "content": [{"text": "hi converse"}]}],
        "system": [{"text": "be brief"}],
        "inferenceConfig": {"maxTokens": 100},
    }


def test_anthropic_sdk_stream_tool_and_thinking_round_trip_through_converse(
    proxy: ServerThread, mock: RecordingMock
) -> None:
    client = sdk_anthropic(base_url=f"{proxy.url}/claude", api_key="k", max_retries=0)
    prompt = '[[mock:think]] [[mock:tool weather {"city": "Rome"}]]'
    with client.messages.stream(
        model="sigv4", max_tokens=4000, tools=[WEATHER_CLAUDE], messages=[{"role": "user", "content": prompt}]
    ) as answer:
        kinds = [event.type for event in answer]
        final = answer.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.stop_reason == "tool_use"
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.signature.startswith("mock-signature-")
    [tool] = [b for b in final.content if b.type == "tool_use"]
    assert (tool.name, tool.input) == ("weather", {"city": "Rome"})
    path = mock.seen[0][0]
    assert path == f"/model/{MODEL_PATH}/converse-stream"
    second = client.messages.create(
        model="sigv4",
        max_tokens=4000,
        tools=[WEATHER_CLAUDE],
        messages=[
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "warm"}]},
        ],
    )
    assert [b.text for b in second.content if b.type == "text"] == ["The tool returned: warm"]
    sent = json.loads(mock.seen[-1][2])
    assistant = sent["messages"][1]["content"]
    assert assistant[0] == {
        "reasoningContent": {"reasoningText": {"text": thinking.thinking, "signature": thinking.signature}}
    }
    assert sent["messages"][2]["content"] == [{"toolResult": {"toolUseId": tool.id, "content": [{"text": "warm"}]}}]


def test_openai_sdks_to_converse(proxy: ServerThread, mock: RecordingMock) -> None:
    chat = sdk_openai(base_url=f"{proxy.url}/openai-chat/v1", api_key="client-key", max_retries=0)
    completion = chat.chat.completions.create(model="sigv4", messages=[{"role": "user", "content": "hey"}])
    assert completion.choices[0].message.content == "mock reply: hey"
    assert completion.choices[0].finish_reason == "stop"
    chunks = list(
        chat.chat.completions.create(model="sigv4", messages=[{"role": "user", "content": "streamed"}], stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "mock reply: streamed"
    tool = {"type": "function", "function": {"name": "weather", "parameters": WEATHER_CLAUDE["input_schema"]}}
    asked = [{"role": "user", "content": '[[mock:tool weather {"city": "Lima"}]]'}]
    called = chat.chat.completions.create(model="sigv4", messages=asked, tools=[tool])
    [call] = called.choices[0].message.tool_calls or []
    assert called.choices[0].finish_reason == "tool_calls" and json.loads(call.function.arguments) == {"city": "Lima"}
    follow = [*asked, called.choices[0].message.model_dump(exclude_none=True)]
    follow.append({"role": "tool", "tool_call_id": call.id, "content": "cloudy"})
    answer = chat.chat.completions.create(model="sigv4", messages=follow, tools=[tool])
    assert answer.choices[0].message.content == "The tool returned: cloudy"
    responses = sdk_openai(base_url=f"{proxy.url}/openai-responses/v1", api_key="k", max_retries=0)
    with responses.responses.stream(model="sigv4", input="via responses") as events:
        final = events.get_final_response()
    assert final.output_text == "mock reply: via responses"
    paths = [path for path, _, _ in mock.seen]
    assert paths[:2] == [f"/model/{MODEL_PATH}/converse", f"/model/{MODEL_PATH}/converse-stream"]
    assert paths[-1] == f"/model/{MODEL_PATH}/converse-stream"


def test_converse_upstream_auth(proxy: ServerThread, mock: RecordingMock) -> None:
    client = sdk_anthropic(base_url=f"{proxy.url}/claude", api_key="k", max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError, match="signature mismatch"):
        client.messages.create(model="wrong-secret", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    message = client.messages.create(model="api-key", max_tokens=10, messages=[{"role": "user", "content": "k"}])
    assert [b.text for b in message.content if b.type == "text"] == ["mock reply: k"]
    assert mock.seen[-1][1]["authorization"] == f"Bearer {API_KEY}"


# --- proxy mode on Converse paths --------------------------------------------------------------------------------


def test_proxy_mode_rewrites_the_path_model_and_resigns(boto: Boto, proxy: ServerThread, mock: RecordingMock) -> None:
    client = boto(proxy.url + "/proxy")
    result = client.converse(modelId=CLIENT_MODEL, messages=user("raw"))
    assert result["output"]["message"]["content"] == [{"text": "mock reply: raw"}]
    events = stream(client, "raw", model=CLIENT_MODEL)
    check_sequence(events)
    assert text_of(events) == "mock reply: raw"
    (path1, headers1, body1), (path2, headers2, body2) = mock.seen
    assert (path1, path2) == (f"/model/{MODEL_PATH}/converse", f"/model/{MODEL_PATH}/converse-stream")
    assert json.loads(body1) == {"messages": user("raw")} and body1 == body2
    for seen in (headers1, headers2):
        assert seen["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AKID}/")  # the route's, not AKIDCLIENT
        assert "AKIDCLIENT" not in json.dumps(seen)


def test_mock_verifies_converse_signatures(boto: Boto) -> None:
    with ServerThread(MockApp(RecordingMock(MockOptions(aws_secrets={AKID: SECRET})))) as server:
        stranger = boto(server.url)
        with pytest.raises(stranger.exceptions.AccessDeniedException, match="unknown access key"):
            stranger.converse(modelId=MODEL, messages=user("hi"))
        with pytest.raises(stranger.exceptions.AccessDeniedException):
            stranger.converse_stream(modelId=MODEL, messages=user("hi"))
        signed = boto(server.url, AKID, SECRET)
        assert signed.converse(modelId=MODEL, messages=user("direct"))["stopReason"] == "end_turn"


def test_client_keys_by_sigv4_on_converse_paths(boto: Boto, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Converse client presents its client key as boto3 credentials (key name, key); bad ones raise boto3's errors."""
    isolate_aws_env(monkeypatch, tmp_path)
    key = "lpk-alice-converse-0123456789abcdefgh"
    with ServerThread(MockApp(RecordingMock(MockOptions()))) as upstream:
        route = {
            "frontend_model_name": MODEL,
            "frontend_base_url": "/keyed",
            "frontend_dialect": "bedrock-converse",
            "backend_model_name": "mock-model",
            "backend_base_url": upstream.url,
            "backend_dialect": "claude",
            "backend_api_key": "sk-ant-route-key",  # the route spends a key of its own: client keys are required
        }
        keys = [{"name": "alice", "key": key}]
        with running_proxy(parse_config({"models": [route], "client_keys": keys}, "keys.yaml", {})) as keyed:
            assert converse(boto(keyed.url + "/keyed", "alice", key), "hi")["stopReason"] == "end_turn"
            assert text_of(stream(boto(keyed.url + "/keyed", "alice", key), "hi")) == "mock reply: hi"
            bad = (("alice", "lpk-wrong", "InvalidSignatureException"), ("eve", key, "UnrecognizedClientException"))
            for key_id, secret, code in bad:
                client = boto(keyed.url + "/keyed", key_id, secret)
                with pytest.raises(client.exceptions.ClientError) as info:
                    converse(client, "hi")
                assert info.value.response["Error"]["Code"] == code
                with pytest.raises(client.exceptions.ClientError):
                    stream(client, "hi")


def test_boto3_image_document_and_cache_point_reach_claude(
    boto: Boto, proxy: ServerThread, mock: RecordingMock
) -> None:
    """boto3 sends blobs as base64: Claude gets image and document sources, and the cache point as cache_control."""
    png, pdf = b"\x89PNG\r\n\x1a\n-image-bytes", b"%PDF-1.4 document bytes"
    content = [
        {"text": "Describe both."},
        {"image": {"format": "png", "source": {"bytes": png}}},
        {"document": {"format": "pdf", "name": "report", "source": {"bytes": pdf}}},
        {"cachePoint": {"type": "default"}},
    ]
    client = boto(proxy.url + "/from-converse/claude")
    result = client.converse(
        modelId=MODEL, messages=[{"role": "user", "content": content}], system=[{"text": "Be brief."}]
    )
    assert result["output"]["message"]["content"] == [{"text": "mock reply: Describe both."}]
    sent = json.loads(mock.seen[-1][2])
    assert sent["system"] == "Be brief."
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "Describe both."},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(png).decode()},
        },
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(pdf).decode()},
            "title": "report",
            "cache_control": {"type": "ephemeral"},
        },
    ]
