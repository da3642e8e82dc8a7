"""The planners, Playbook-style: a route, a target and a request in, the exact upstream call out. No sockets."""

from __future__ import annotations

import orjson

from llm_proxy.canonical import Message, Request, Text
from llm_proxy.dialects import get_dialect
from llm_proxy.dialects.base import EncodeOptions
from llm_proxy.modes.plan import join_url, plan_count_tokens, plan_passthrough, plan_translation
from llm_proxy.routing import Router, Target
from tests.servers import make_config

KEY = "sk-route-0123456789"


def _target(config_routes: Router, path: str) -> Target:
    target = config_routes.match(path)
    assert target is not None
    return target


def _hello(model: str = "client-model", stream: bool = False) -> Request:
    return Request(model=model, messages=(Message(role="user", content=(Text(text="hello"),)),), stream=stream)


def test_join_url_never_doubles_v1() -> None:
    assert join_url("https://api.openai.com/v1", "/v1/chat/completions") == "https://api.openai.com/v1/chat/completions"
    assert join_url("https://api.anthropic.com", "/v1/messages") == "https://api.anthropic.com/v1/messages"
    assert join_url("https://x/openai", "/v1x") == "https://x/openai/v1x"


def test_translation_to_openai_chat_with_a_route_key() -> None:
    config = make_config(
        [
            {"frontend_model_name": "client-model", "frontend_base_url": "/c", "frontend_dialect": "claude",
             "backend_model_name": "gpt-4o", "backend_base_url": "https://api.openai.com/v1",
             "backend_dialect": "openai-chat", "backend_api_key": KEY}
        ]
    )  # fmt: skip
    route = config.routes[0]
    target = _target(Router(config.routes), "/c/v1/messages")
    client_headers = {"x-api-key": "client-own", "anthropic-version": "2023-06-01"}
    upstream_request, call = plan_translation(route, target, client_headers, _hello(stream=True))
    assert upstream_request.model == "gpt-4o" and upstream_request.stream
    assert (call.method, call.url, call.sign, call.route) == (
        "POST",
        "https://api.openai.com/v1/chat/completions",
        False,
        route,
    )
    assert call.headers == [
        ("content-type", "application/json"),
        ("accept-encoding", "identity"),
        ("Authorization", f"Bearer {KEY}"),
    ]
    body = orjson.loads(call.body)
    assert body["model"] == "gpt-4o" and body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert call.body == orjson.dumps(get_dialect("openai-chat").encode_request(upstream_request, EncodeOptions()))


def test_translation_to_bedrock_is_signed_in_the_client_and_puts_the_model_in_the_path() -> None:
    config = make_config(
        [
            {"frontend_model_name": "client-model", "frontend_base_url": "/o", "frontend_dialect": "openai-chat",
             "backend_model_name": "arn:aws:bedrock:us-east-1:1:inference-profile/us.x-v1:0",
             "backend_base_url": "https://bedrock-runtime.us-east-1.amazonaws.com", "backend_dialect": "bedrock"}
        ]
    )  # fmt: skip
    route = config.routes[0]
    target = _target(Router(config.routes), "/o/v1/chat/completions")
    _, call = plan_translation(route, target, {"authorization": "Bearer client"}, _hello(stream=True))
    assert call.sign is True
    assert call.url == (
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x-v1%3A0/invoke-with-response-stream"
    )
    assert "model" not in orjson.loads(call.body)


def test_count_tokens_goes_to_apis_that_count_and_nowhere_else() -> None:
    models = [
        {"frontend_model_name": "m", "frontend_base_url": "/a", "frontend_dialect": "claude",
         "backend_model_name": "claude-up", "backend_base_url": "https://api.anthropic.com",
         "backend_dialect": "claude"},
        {"frontend_model_name": "m", "frontend_base_url": "/b", "frontend_dialect": "claude",
         "backend_base_url": "https://api.openai.com/v1", "backend_dialect": "openai-chat"},
    ]  # fmt: skip
    to_claude, to_chat = make_config(models).routes
    request = Request(model="m", messages=_hello().messages, max_tokens=100, stream=True)
    call = plan_count_tokens(to_claude, {"anthropic-version": "2023-06-01"}, request)
    assert call is not None and call.url == "https://api.anthropic.com/v1/messages/count_tokens"
    body = orjson.loads(call.body)
    assert body["model"] == "claude-up" and "max_tokens" not in body and "stream" not in body
    assert plan_count_tokens(to_chat, {}, request) is None


def _proxy_route(**extra: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "frontend_model_name": "client-model",
        "frontend_base_url": "/p",
        "backend_model_name": "upstream-model",
        "backend_base_url": "https://up.example/base",
    }
    entry.update(extra)
    return entry


def test_passthrough_splices_the_model_and_keeps_every_other_byte() -> None:
    config = make_config([_proxy_route(backend_api_key=KEY)])
    route = config.routes[0]
    target = _target(Router(config.routes), "/p/v1/chat/completions")
    body = b'{ "model" : "client-model", "n": 1.0e0, "s": "\\u00e9" }'
    raw = [(b"host", b"proxy"), (b"authorization", b"Bearer client"), (b"x-custom", b"1"), (b"content-length", b"9")]
    call = plan_passthrough(route, target, "POST", raw, b"a=1&b=2", body, orjson.loads(body), edited=False)
    assert call.url == "https://up.example/base/v1/chat/completions?a=1&b=2"
    assert call.body == b'{ "model" : "upstream-model", "n": 1.0e0, "s": "\\u00e9" }'
    assert call.headers == [("x-custom", "1"), ("Authorization", f"Bearer {KEY}")]
    assert call.sign is False


def test_passthrough_with_edits_reserialises_without_touching_the_callers_document() -> None:
    config = make_config([_proxy_route()])
    route = config.routes[0]
    target = _target(Router(config.routes), "/p/v1/chat/completions")
    doc = {"model": "client-model", "messages": [], "z": 1}
    call = plan_passthrough(route, target, "POST", [], b"", b"ignored", doc, edited=True)
    assert call.body == b'{"model":"upstream-model","messages":[],"z":1}'
    assert doc["model"] == "client-model"


def test_passthrough_rewrites_a_model_in_the_path() -> None:
    config = make_config([_proxy_route(frontend_model_name="us.x-v1:0", backend_model_name="eu.y-v1:0")])
    route = config.routes[0]
    target = _target(Router(config.routes), "/p/model/us.x-v1%3A0/invoke-with-response-stream")
    call = plan_passthrough(route, target, "POST", [], b"", b'{"messages":[]}', {"messages": []}, edited=False)
    assert call.url == "https://up.example/base/model/eu.y-v1%3A0/invoke-with-response-stream"
    assert call.body == b'{"messages":[]}'
    assert call.sign is True  # a Bedrock path on a route without an API key: SigV4 (default credential chain)
