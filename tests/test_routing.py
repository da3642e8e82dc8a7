from __future__ import annotations

import pytest

from llm_proxy.errors import RequestError
from llm_proxy.routing import Operation, Router, bedrock_path, check_rest_path, classify
from tests.servers import make_config


def router() -> Router:
    models = [
        {"frontend_model_name": "a", "frontend_base_url": "/openai", "backend_base_url": "mock://"},
        {"frontend_model_name": "b", "frontend_base_url": "/openai/special", "backend_base_url": "mock://"},
        {"frontend_model_name": "c", "frontend_base_url": "/openai", "backend_base_url": "mock://"},
    ]
    return Router(make_config(models).routes)


def test_longest_prefix_on_segment_boundary() -> None:
    r = router()
    target = r.match("/openai/special/v1/chat/completions")
    assert target is not None and target.prefix == "/openai/special" and target.operation is Operation.CHAT
    target = r.match("/openai/v1/chat/completions")
    assert target is not None and target.prefix == "/openai" and target.rest == "/v1/chat/completions"
    assert r.match("/openaiX/v1/chat/completions") is None
    assert r.match("/elsewhere") is None
    assert sorted(r.models("/openai")) == ["a", "c"]


@pytest.mark.parametrize(
    ("rest", "operation"),
    [
        ("/v1/chat/completions", Operation.CHAT),
        ("/chat/completions", Operation.CHAT),
        ("/v1/responses", Operation.RESPONSES),
        ("/responses", Operation.RESPONSES),
        ("/v1/messages", Operation.MESSAGES),
        ("/v1/messages/count_tokens", Operation.COUNT_TOKENS),
        ("/v1/models", Operation.MODELS),
        ("/models", Operation.MODELS),
        ("/v1/embeddings", Operation.OTHER),
        ("", Operation.OTHER),
    ],
)
def test_operations_with_and_without_v1(rest: str, operation: Operation) -> None:
    assert classify(rest) == (operation, None)


def test_bedrock_paths_decode_model_ids() -> None:
    assert classify("/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke") == (
        Operation.BEDROCK_INVOKE,
        "anthropic.claude-3-haiku-20240307-v1:0",
    )
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-x-v1:0"
    encoded = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-x-v1%3A0"
    assert classify(f"/model/{encoded}/invoke-with-response-stream") == (Operation.BEDROCK_STREAM, arn)
    assert bedrock_path(arn, True) == f"/model/{encoded}/invoke-with-response-stream"
    assert bedrock_path("us.anthropic.claude-y-v1:0", False) == "/model/us.anthropic.claude-y-v1%3A0/invoke"


@pytest.mark.parametrize(
    "rest",
    ["/v1/../admin", "/v1/%2e%2e/admin", "/v1/a%2Fb", "/v1/a%5cb", "/v1/a\\b", "/http://evil.example/x", "/./x"],
)
def test_escaping_paths_refused(rest: str) -> None:
    with pytest.raises(RequestError):
        check_rest_path(rest, Operation.OTHER)


def test_bedrock_arn_segment_allowed_and_normal_paths_pass() -> None:
    check_rest_path("/model/arn%3Aaws%3Abedrock%3Ax%2Fy/invoke", Operation.BEDROCK_INVOKE)
    check_rest_path("/v1/chat/completions", Operation.CHAT)
    check_rest_path("/v1/files/file-abc:content", Operation.OTHER)
