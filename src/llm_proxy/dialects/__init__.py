"""The dialect registry: one entry per dialect, the one table everything else reads.

Each entry is the dialect's ``DialectSpec`` (endpoints, where the model lives, capabilities; see
``base.DialectSpec``) and names the package holding its codec (``DIALECT``; see ``base.Dialect``).
Adding a dialect is one package under ``dialects/`` and one entry here.

The specs are plain data, read at start (routing needs them); codecs are imported on first use, so
importing this package has no side effects and starting the proxy loads only the codecs it routes to.
"""

from __future__ import annotations

import importlib
from typing import cast

from llm_proxy.dialects.base import Dialect, DialectSpec, Endpoint

DIALECTS: dict[str, DialectSpec] = {
    "openai-chat": DialectSpec(
        name="openai-chat",
        provider="openai",
        module="llm_proxy.dialects.openai_chat",
        endpoints=(Endpoint("/chat/completions"),),
    ),
    "openai-responses": DialectSpec(
        name="openai-responses",
        provider="openai",
        module="llm_proxy.dialects.openai_responses",
        endpoints=(Endpoint("/responses"),),
        thinking="encrypted",
        server_side_conversations=True,
    ),
    "claude": DialectSpec(
        name="claude",
        provider="anthropic",
        module="llm_proxy.dialects.claude",
        endpoints=(Endpoint("/messages"), Endpoint("/messages/count_tokens", action="count_tokens")),
        detect_header="anthropic-version",
        thinking="signed",
        count_tokens_path="/v1/messages/count_tokens",
    ),
    "bedrock": DialectSpec(
        name="bedrock",
        provider="aws.bedrock",
        module="llm_proxy.dialects.bedrock",
        endpoints=(
            Endpoint("/model/{model}/invoke", versioned=False),
            Endpoint("/model/{model}/invoke-with-response-stream", streaming=True, versioned=False),
        ),
        sigv4=True,
        thinking="signed",
    ),
    "bedrock-converse": DialectSpec(
        name="bedrock-converse",
        provider="aws.bedrock",
        module="llm_proxy.dialects.bedrock_converse",
        endpoints=(
            Endpoint("/model/{model}/converse", versioned=False),
            Endpoint("/model/{model}/converse-stream", streaming=True, versioned=False),
        ),
        sigv4=True,
        thinking="signed",
    ),
    "gemini": DialectSpec(
        name="gemini",
        provider="gcp.gemini",
        module="llm_proxy.dialects.gemini",
        endpoints=tuple(
            endpoint
            for version in ("v1beta", "v1")
            for endpoint in (
                Endpoint(f"/{version}/models/{{model}}:generateContent", versioned=False),
                Endpoint(f"/{version}/models/{{model}}:streamGenerateContent", streaming=True, versioned=False),
                Endpoint(f"/{version}/models/{{model}}:countTokens", action="count_tokens", versioned=False),
            )
        ),
        detect_header="x-goog-api-key",
        thinking="signed",
        key_query_param="key",
        key_header="x-goog-api-key",
        signature_carry="gemini-signature",
        token_count_field="totalTokens",
    ),
}

DEFAULT_DIALECT = "openai-chat"
"""The shape of errors and model lists on paths no dialect claims, when no ``detect_header`` decides."""


def names() -> tuple[str, ...]:
    return tuple(DIALECTS)


def get_spec(name: str) -> DialectSpec:
    """The spec of dialect ``name`` (one of ``DIALECTS``)."""
    return DIALECTS[name]


def specs() -> tuple[DialectSpec, ...]:
    return tuple(DIALECTS.values())


_CODECS: dict[str, Dialect] = {}
"""Codecs already imported, by dialect name: ``import_module`` walks the import machinery on every call."""


def get_dialect(name: str) -> Dialect:
    """The codec for ``name`` (one of ``DIALECTS``)."""
    codec = _CODECS.get(name)
    if codec is None:
        codec = _CODECS[name] = cast(Dialect, importlib.import_module(DIALECTS[name].module).DIALECT)
    return codec


def detect(headers: dict[str, str]) -> str:
    """The dialect a request's headers reveal (``detect_header``), else ``DEFAULT_DIALECT``."""
    for spec in specs():
        if spec.detect_header is not None and spec.detect_header in headers:
            return spec.name
    return DEFAULT_DIALECT
