"""The dialect registry: one entry per dialect, the one table everything else reads.

Each dialect is a package under ``dialects/`` with a light ``spec`` module (``SPEC``: endpoints, where
the model lives, capabilities; see ``base.DialectSpec``) and the codec in the package itself
(``DIALECT``: see ``base.Dialect``). Adding a dialect is one package and one entry in ``DIALECTS``.

Specs are read at start (routing needs them); codecs are imported on first use, so importing this
package has no side effects and starting the proxy loads only the codecs it routes to.
"""

from __future__ import annotations

import functools
import importlib
from typing import cast

from llm_proxy.dialects.base import Dialect, DialectSpec

DIALECTS: dict[str, str] = {
    "openai-chat": "llm_proxy.dialects.openai_chat",
    "openai-responses": "llm_proxy.dialects.openai_responses",
    "claude": "llm_proxy.dialects.claude",
    "bedrock": "llm_proxy.dialects.bedrock",
}

DEFAULT_DIALECT = "openai-chat"
"""The shape of errors and model lists on paths no dialect claims, when no ``detect_header`` decides."""


def names() -> tuple[str, ...]:
    return tuple(DIALECTS)


@functools.cache
def get_spec(name: str) -> DialectSpec:
    """The spec of dialect ``name`` (one of ``DIALECTS``)."""
    spec = importlib.import_module(DIALECTS[name] + ".spec").SPEC
    return cast(DialectSpec, spec)


def specs() -> tuple[DialectSpec, ...]:
    return tuple(get_spec(name) for name in DIALECTS)


def get_dialect(name: str) -> Dialect:
    """The codec for ``name`` (one of ``DIALECTS``)."""
    return cast(Dialect, importlib.import_module(DIALECTS[name]).DIALECT)


def detect(headers: dict[str, str]) -> str:
    """The dialect a request's headers reveal (``detect_header``), else ``DEFAULT_DIALECT``."""
    for spec in specs():
        if spec.detect_header is not None and spec.detect_header in headers:
            return spec.name
    return DEFAULT_DIALECT
