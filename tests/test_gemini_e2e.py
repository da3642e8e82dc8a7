"""The gemini dialect end to end: the google-genai SDK as a client, and a Gemini upstream behind the other SDKs.

Client side: google-genai (``v1beta`` through ``http_options`` and the SDK's default ``v1``) against routes
translating to claude, openai-chat and gemini upstreams (the embedded mock): text, stream, a function-calling
round trip, count_tokens and models.list. Upstream side: the Anthropic and OpenAI SDKs against routes whose
upstream speaks Gemini (a recording server answering with the mock), so what reaches Gemini is checked too:
the thought signature comes back raw on its call, the key goes in ``x-goog-api-key`` and never in the query.
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from google import genai
from google.genai import types

from llm_proxy.config.load import parse_config
from llm_proxy.upstream.mock import MockUpstream
from tests.servers import (
    Recorded,
    RecordingUpstream,
    Reply,
    ServerThread,
    make_config,
    running_proxy,
    running_upstream,
    sdk_anthropic,
    sdk_openai,
)

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CALL_WEATHER = '[[mock:tool get_weather {"city": "Paris"}]]'


def route(
    front: str | None, back: str | None, prefix: str, model: str, base: str = "mock://", **extra: Any
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "frontend_model_name": model,
        "frontend_base_url": prefix,
        "backend_model_name": "upstream-model",
        "backend_base_url": base,
    }
    if front is not None:
        entry |= {"frontend_dialect": front, "backend_dialect": back}
    return entry | extra


@pytest.fixture(scope="module")
def proxy() -> Iterator[ServerThread]:
    routes = [route("gemini", back, f"/g-{back}", "gem") for back in ("claude", "openai-chat", "gemini")]
    with running_proxy(make_config(routes)) as server:
        yield server


def gemini_client(proxy: ServerThread, prefix: str, version: str | None) -> genai.Client:
    options = (
        types.HttpOptions(base_url=proxy.url + prefix, api_version=version)
        if version
        else types.HttpOptions(base_url=proxy.url + prefix)
    )
    return genai.Client(api_key="client-key", http_options=options)


UPSTREAMS = ["claude", "openai-chat", "gemini"]
VERSIONS = ["v1beta", None]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("back", UPSTREAMS)
def test_generate_and_stream(proxy: ServerThread, back: str, version: str | None) -> None:
    client = gemini_client(proxy, f"/g-{back}", version)
    answer = client.models.generate_content(model="gem", contents="hello there")
    assert answer.text == "mock reply: hello there"
    assert answer.candidates and answer.candidates[0].finish_reason == types.FinishReason.STOP
    assert answer.usage_metadata and answer.usage_metadata.prompt_token_count
    chunks = list(client.models.generate_content_stream(model="gem", contents="stream me please"))
    assert "".join(c.text or "" for c in chunks) == "mock reply: stream me please"
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata and last.usage_metadata.candidates_token_count


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("back", UPSTREAMS)
def test_function_calling_round_trip(proxy: ServerThread, back: str, version: str | None, stream: bool) -> None:
    client = gemini_client(proxy, f"/g-{back}", version)
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(name="get_weather", description="w", parameters_json_schema=WEATHER)
        ]
    )
    config = types.GenerateContentConfig(
        tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    asked = types.Content(role="user", parts=[types.Part(text=CALL_WEATHER)])
    if stream:
        chunks = list(client.models.generate_content_stream(model="gem", contents=[asked], config=config))
        parts = [
            p for c in chunks if c.candidates and c.candidates[0].content for p in c.candidates[0].content.parts or []
        ]
        model_turn = types.Content(role="model", parts=parts)
        calls = [p.function_call for p in parts if p.function_call]
    else:
        first = client.models.generate_content(model="gem", contents=[asked], config=config)
        assert first.candidates and first.candidates[0].content
        model_turn = first.candidates[0].content
        calls = list(first.function_calls or [])
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].args == {"city": "Paris"}
    result = types.FunctionResponse(name="get_weather", id=calls[0].id, response={"output": "sunny"})
    second = client.models.generate_content(
        model="gem",
        contents=[asked, model_turn, types.Content(role="user", parts=[types.Part(function_response=result)])],
        config=config,
    )
    assert second.text == "The tool returned: sunny"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("back", UPSTREAMS)
def test_count_tokens_and_model_list(proxy: ServerThread, back: str, version: str | None) -> None:
    client = gemini_client(proxy, f"/g-{back}", version)
    counted = client.models.count_tokens(model="gem", contents="count these tokens, please")
    assert counted.total_tokens and counted.total_tokens > 0
    assert [m.name for m in client.models.list()] == ["models/gem"]


def test_errors_reach_the_sdk_as_its_own(proxy: ServerThread) -> None:
    client = gemini_client(proxy, "/g-claude", "v1beta")
    with pytest.raises(genai.errors.ClientError) as caught:
        client.models.generate_content(model="gem", contents="[[mock:error 429]]")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(genai.errors.ClientError) as unknown:
        client.models.generate_content(model="nope", contents="hi")
    assert unknown.value.code == 404 and unknown.value.status == "NOT_FOUND"


def test_a_cut_stream_never_looks_complete(proxy: ServerThread) -> None:
    host = urlsplit(proxy.url).netloc
    connection = http.client.HTTPConnection(host, timeout=10)
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "[[mock:cut]]"}]}]})
    connection.request("POST", "/g-claude/v1beta/models/gem:streamGenerateContent", body=body)
    raw = connection.getresponse().read()
    connection.close()
    assert not raw.endswith(b"]")  # never a well-formed, complete answer
    elements = orjson.loads(raw + b"]")
    assert "error" in elements[-1] and not any(
        c.get("candidates", [{}])[0].get("finishReason") for c in elements if "candidates" in c
    )


# -- a Gemini upstream behind the Anthropic and OpenAI SDKs ------------------------------------


class GeminiUpstream(RecordingUpstream):
    """Records every request and answers as the embedded mock does, over HTTP."""

    def __init__(self) -> None:
        super().__init__(handler=self._answer)
        self._mock = MockUpstream()

    async def _answer(self, recorded: Recorded, reply: Reply) -> None:
        target = recorded.path + (f"?{recorded.query}" if recorded.query else "")
        answer = self._mock.answer(recorded.method, target, recorded.raw_headers, recorded.body)
        await reply.start(answer.status, [(k.decode(), v.decode()) for k, v in answer.raw_headers])
        chunks = [c async for c in answer.chunks()]
        for chunk in chunks:
            await reply.chunk(chunk)
        await reply.chunk(b"", more=False)


@pytest.fixture(scope="module")
def gemini_upstream() -> Iterator[tuple[GeminiUpstream, ServerThread]]:
    upstream = GeminiUpstream()
    with running_upstream(upstream) as server:
        key = {"backend_api_key": "route-key", "backend_auth_header": "x-goog-api-key", "backend_auth_schema": ""}
        routes = [
            route("claude", "gemini", "/c", "claude-model", server.url, **key),
            route("openai-chat", "gemini", "/o", "gpt-model", server.url, **key),
            route("openai-responses", "gemini", "/r", "resp-model", server.url, **key),
            route(None, None, "/p", "gemini-2.5-flash", server.url),
        ]
        with running_proxy(make_config(routes)) as proxy:
            yield upstream, proxy


def _sent(upstream: GeminiUpstream) -> dict[str, Any]:
    doc = orjson.loads(upstream.requests[-1].body)
    assert isinstance(doc, dict)
    return doc


TOOL = {"name": "get_weather", "description": "Weather.", "input_schema": WEATHER}


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_sdk_thinking_and_tool_round_trip(
    gemini_upstream: tuple[GeminiUpstream, ServerThread], stream: bool
) -> None:
    upstream, proxy = gemini_upstream
    client = sdk_anthropic(base_url=f"{proxy.url}/c", api_key="client-key", max_retries=0)
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"[[mock:think]] {CALL_WEATHER}"}]
    kwargs: dict[str, Any] = {"model": "claude-model", "max_tokens": 200, "tools": [TOOL]}
    if stream:
        with client.messages.stream(messages=messages, **kwargs) as events:
            first = events.get_final_message()
    else:
        first = client.messages.create(messages=messages, **kwargs)
    assert [b.type for b in first.content] == ["thinking", "text", "tool_use"] and first.stop_reason == "tool_use"
    recorded = upstream.requests[-1]
    assert recorded.headers["x-goog-api-key"] == "route-key" and "authorization" not in recorded.headers
    assert recorded.path.endswith(":streamGenerateContent" if stream else ":generateContent")
    assert recorded.query == ("alt=sse" if stream else "")
    thinking, _, call = first.content
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]},
    ]
    second = client.messages.create(messages=messages, **kwargs)
    assert second.content[0].text == "The tool returned: sunny"
    model_turn = _sent(upstream)["contents"][1]
    thought = model_turn["parts"][0]
    assert thought["thought"] is True and thought["thoughtSignature"].startswith("mock-signature-")
    assert thinking.signature.startswith("lpx1.")  # the client only ever saw the envelope
    response = _sent(upstream)["contents"][2]["parts"][0]["functionResponse"]
    assert response["name"] == "get_weather" and response["response"] == {"output": "sunny"}


@pytest.mark.parametrize("stream", [False, True])
def test_openai_sdk_text_and_tool_round_trip(
    gemini_upstream: tuple[GeminiUpstream, ServerThread], stream: bool
) -> None:
    upstream, proxy = gemini_upstream
    client = sdk_openai(base_url=f"{proxy.url}/o/v1", api_key="client-key", max_retries=0)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    messages: list[dict[str, Any]] = [{"role": "user", "content": CALL_WEATHER}]
    if stream:
        chunks = list(client.chat.completions.create(model="gpt-model", messages=messages, tools=tools, stream=True))
        deltas = [c.choices[0].delta for c in chunks if c.choices]
        calls = [t for d in deltas for t in d.tool_calls or []]
        call_id, name = calls[0].id, calls[0].function.name
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finish == ["tool_calls"]
    else:
        answer = client.chat.completions.create(model="gpt-model", messages=messages, tools=tools)
        assert answer.choices[0].finish_reason == "tool_calls"
        call_id, name = (
            answer.choices[0].message.tool_calls[0].id,
            answer.choices[0].message.tool_calls[0].function.name,
        )
    assert name == "get_weather"
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
    ]
    second = client.chat.completions.create(model="gpt-model", messages=messages, tools=tools)
    assert second.choices[0].message.content == "The tool returned: sunny"
    text = client.chat.completions.create(model="gpt-model", messages=[{"role": "user", "content": "hi"}])
    assert text.choices[0].message.content == "mock reply: hi" and text.usage and text.usage.prompt_tokens > 0


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_a_key_in_the_query_is_moved_to_the_header_in_proxy_mode(
    gemini_upstream: tuple[GeminiUpstream, ServerThread],
) -> None:
    # A handler on the package's logger itself: other tests' logging setup may stop propagation to the root.
    lines = _Lines()
    logger = logging.getLogger("llm_proxy")
    level = logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    try:
        _relay_with_query_key(*gemini_upstream)
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    assert lines.lines and not any("secret-in-query" in line for line in lines.lines)  # no log line shows the key


def _relay_with_query_key(upstream: GeminiUpstream, proxy: ServerThread) -> None:
    host = urlsplit(proxy.url).netloc
    connection = http.client.HTTPConnection(host, timeout=10)
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    connection.request(
        "POST", "/p/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=secret-in-query", body=body
    )
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    assert response.status == 200 and b"mock" in raw and b"finishReason" in raw
    recorded = upstream.requests[-1]
    assert recorded.query == "alt=sse" and "secret-in-query" not in recorded.path
    assert recorded.headers["x-goog-api-key"] == "secret-in-query"


def test_a_client_key_in_the_query_passes_the_gate_and_goes_nowhere() -> None:
    client_key = "lpk-gemini-client-0123456789abcdef"
    spend = {"backend_api_key": "route-key", "backend_auth_header": "x-goog-api-key", "backend_auth_schema": ""}
    recorder = GeminiUpstream()
    with running_upstream(recorder) as server:
        models = [route("gemini", "gemini", "/g", "gem", server.url, **spend)]
        keys = [{"name": "gina", "key": client_key}]
        config = parse_config({"models": models, "client_keys": keys}, "k.yaml", {})
        _check_keys(config, client_key)
    assert len(recorder.requests) == 1 and recorder.requests[0].query == ""
    assert recorder.requests[0].headers["x-goog-api-key"] == "route-key"


def _check_keys(config: Any, client_key: str) -> None:
    with running_proxy(config) as proxy:
        accepted = genai.Client(
            api_key="ignored", http_options=types.HttpOptions(base_url=f"{proxy.url}/g", api_version="v1beta")
        )
        host = urlsplit(proxy.url).netloc
        for key, status in ((client_key, 200), ("wrong", 401)):
            connection = http.client.HTTPConnection(host, timeout=10)
            body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
            connection.request("POST", f"/g/v1beta/models/gem:generateContent?key={key}", body=body)
            response = connection.getresponse()
            answer = orjson.loads(response.read())
            connection.close()
            assert response.status == status
            if status == 401:
                assert answer["error"]["status"] == "UNAUTHENTICATED"
        with pytest.raises(genai.errors.ClientError) as refused:  # the SDK's header key is not a client key
            accepted.models.generate_content(model="gem", contents="hi")
        assert refused.value.code == 401


def test_chat_thinking_blocks_carry_the_signature(gemini_upstream: tuple[GeminiUpstream, ServerThread]) -> None:
    upstream, proxy = gemini_upstream
    client = sdk_openai(base_url=f"{proxy.url}/o/v1", api_key="client-key", max_retries=0)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"[[mock:think]] {CALL_WEATHER}"}]
    first = client.chat.completions.create(model="gpt-model", messages=messages, tools=tools, reasoning_effort="low")
    message = first.choices[0].message
    blocks = (message.model_extra or {})["thinking_blocks"]
    assert blocks[0]["signature"].startswith("lpx1.")
    assert _sent(upstream)["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 2048, "includeThoughts": True}
    call = message.tool_calls[0]
    messages += [
        {
            "role": "assistant",
            "content": message.content,
            "tool_calls": [call.model_dump()],
            "thinking_blocks": blocks,
        },
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = client.chat.completions.create(model="gpt-model", messages=messages, tools=tools)
    assert second.choices[0].message.content == "The tool returned: sunny"
    thought = _sent(upstream)["contents"][1]["parts"][0]
    assert thought["thought"] is True and thought["thoughtSignature"].startswith("mock-signature-")


def test_responses_reasoning_items_carry_the_signature(gemini_upstream: tuple[GeminiUpstream, ServerThread]) -> None:
    upstream, proxy = gemini_upstream
    client = sdk_openai(base_url=f"{proxy.url}/r/v1", api_key="client-key", max_retries=0)
    tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER}]
    asked = {"role": "user", "content": f"[[mock:think]] {CALL_WEATHER}"}
    first = client.responses.create(model="resp-model", input=[asked], tools=tools, reasoning={"effort": "low"})
    kinds = [item.type for item in first.output]
    assert kinds == ["reasoning", "message", "function_call"]
    call = first.output[2]
    follow = [asked, *[item.model_dump(exclude_none=True) for item in first.output]]
    follow.append({"type": "function_call_output", "call_id": call.call_id, "output": "sunny"})
    second = client.responses.create(model="resp-model", input=follow, tools=tools, store=False)
    assert second.output_text == "The tool returned: sunny"
    thought = _sent(upstream)["contents"][1]["parts"][0]
    assert thought["thought"] is True and thought["thoughtSignature"].startswith("mock-signature-")
