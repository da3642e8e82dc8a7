"""Routing: prefixes, the endpoint table built from the dialect registry, model ids in paths, path escapes."""

from __future__ import annotations

import pytest

from llm_proxy.dialects import get_spec, specs
from llm_proxy.dialects.base import DialectSpec, Endpoint
from llm_proxy.errors import RequestError
from llm_proxy.routing import MAX_CACHED_PATHS, EndpointTable, Router, check_rest_path, is_models_list
from tests.servers import make_config

TABLE = EndpointTable(specs())


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
    assert target is not None and target.prefix == "/openai/special" and target.dialect == "openai-chat"
    assert target.endpoint == Endpoint("/chat/completions")
    target = r.match("/openai/v1/chat/completions")
    assert target is not None and target.prefix == "/openai" and target.rest == "/v1/chat/completions"
    assert r.match("/openaiX/v1/chat/completions") is None
    assert r.match("/elsewhere") is None
    assert sorted(r.models("/openai")) == ["a", "c"]
    listing = r.match("/openai/v1/models")
    assert listing is not None and listing.models_list and listing.endpoint is None and listing.dialect is None


@pytest.mark.parametrize(
    ("rest", "dialect", "path", "action"),
    [
        ("/v1/chat/completions", "openai-chat", "/chat/completions", "generate"),
        ("/chat/completions", "openai-chat", "/chat/completions", "generate"),
        ("/chat/completions/", "openai-chat", "/chat/completions", "generate"),
        ("/v1/responses", "openai-responses", "/responses", "generate"),
        ("/responses", "openai-responses", "/responses", "generate"),
        ("/v1/messages", "claude", "/messages", "generate"),
        ("/v1/messages/count_tokens", "claude", "/messages/count_tokens", "count_tokens"),
    ],
)
def test_endpoints_with_and_without_v1(rest: str, dialect: str, path: str, action: str) -> None:
    found_dialect, endpoint, model = TABLE.classify(rest)
    assert (found_dialect, model) == (dialect, None)
    assert endpoint is not None and (endpoint.path, endpoint.action) == (path, action)


@pytest.mark.parametrize("rest", ["/v1/embeddings", "", "/", "/v1/models", "/v1/model/x/invoke", "/model/x/other"])
def test_other_paths_are_no_endpoint(rest: str) -> None:
    assert TABLE.classify(rest) == (None, None, None)


def test_model_lists() -> None:
    assert [is_models_list(p) for p in ("/v1/models", "/models", "/models/", "/v1/models/x", "")] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_model_in_path_endpoints_decode_model_ids() -> None:
    dialect, endpoint, model = TABLE.classify("/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke")
    assert (dialect, model) == ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0")
    assert endpoint is not None and not endpoint.streaming and endpoint.model_segment == 2
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-x-v1:0"
    encoded = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-x-v1%3A0"
    dialect, endpoint, model = TABLE.classify(f"/model/{encoded}/invoke-with-response-stream")
    assert (dialect, model) == ("bedrock", arn)
    assert endpoint is not None and endpoint.streaming
    assert endpoint.path_for(arn) == f"/model/{encoded}/invoke-with-response-stream"
    invoke = get_spec("bedrock").endpoints[0]
    assert invoke.path_for("us.anthropic.claude-y-v1:0") == "/model/us.anthropic.claude-y-v1%3A0/invoke"
    assert TABLE.classify("/model//invoke") == ("bedrock", invoke, "")


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_a_model_segment_with_a_method_suffix(version: str) -> None:
    dialect, endpoint, model = TABLE.classify(f"/{version}/models/gemini-2.5-flash:streamGenerateContent")
    assert (dialect, model) == ("gemini", "gemini-2.5-flash")
    assert endpoint is not None and endpoint.streaming and endpoint.model_suffix == ":streamGenerateContent"
    assert endpoint.path_for("tuned/x:1") == f"/{version}/models/tuned%2Fx%3A1:streamGenerateContent"
    _, counting, model = TABLE.classify(f"/{version}/models/a%3Ab:countTokens")
    assert model == "a:b" and counting is not None and counting.action == "count_tokens"
    assert TABLE.classify(f"/{version}/models/gemini-2.5-flash:embedContent") == (None, None, None)
    assert TABLE.classify(f"/{version}/models/gemini-2.5-flash") == (None, None, None)
    check_rest_path(f"/{version}/models/a%2Fb:generateContent", endpoint)  # the model segment may hold %2F


def test_versioned_model_lists() -> None:
    assert [is_models_list(p) for p in ("/v1beta/models", "/v1alpha/models/", "/v2/models", "/beta/models")] == [
        True,
        True,
        True,
        False,
    ]


def test_two_dialects_cannot_claim_one_path() -> None:
    clash = DialectSpec(name="clash", provider="x", module="tests.none", endpoints=(Endpoint("/messages"),))
    with pytest.raises(ValueError, match="endpoint /messages is declared by claude and clash"):
        EndpointTable((*specs(), clash))


@pytest.mark.parametrize(
    "rest",
    ["/v1/../admin", "/v1/%2e%2e/admin", "/v1/a%2Fb", "/v1/a%5cb", "/v1/a\\b", "/http://evil.example/x", "/./x"],
)
def test_escaping_paths_refused(rest: str) -> None:
    with pytest.raises(RequestError):
        check_rest_path(rest, None)


def test_model_id_segment_allowed_and_normal_paths_pass() -> None:
    invoke = get_spec("bedrock").endpoints[0]
    check_rest_path("/model/arn%3Aaws%3Abedrock%3Ax%2Fy/invoke", invoke)
    check_rest_path("/v1/chat/completions", get_spec("openai-chat").endpoints[0])
    check_rest_path("/v1/files/file-abc:content", None)
    with pytest.raises(RequestError):
        check_rest_path("/model/a%2Fb/invoke", None)  # not an endpoint: the segment is not a model id


def test_remembered_paths_answer_as_the_first_time() -> None:
    """The router's caches (targets by path, paths found safe) change no answer, and stay bounded."""
    router = Router(
        make_config([{"frontend_model_name": "m", "frontend_base_url": "/p", "backend_base_url": "mock://"}]).routes
    )
    first = router.match("/p/v1/chat/completions")
    assert first is not None and router.match("/p/v1/chat/completions") is first
    assert router.match("/elsewhere") is None and router.match("/elsewhere") is None
    router.check_path(first)
    router.check_path(first)
    unsafe = router.match("/p/v1/%2e%2e/admin")
    assert unsafe is not None
    for _ in range(2):  # refused each time: only a path that passed is remembered
        with pytest.raises(RequestError):
            router.check_path(unsafe)
    for n in range(MAX_CACHED_PATHS + 10):
        target = router.match(f"/p/v1/files/f{n}")
        assert target is not None and target.rest == f"/v1/files/f{n}"
        router.check_path(target)
    assert len(router._matched) <= MAX_CACHED_PATHS and len(router._safe) <= MAX_CACHED_PATHS
