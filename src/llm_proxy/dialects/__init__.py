"""Dialect codecs, one module each, chosen by name from one table.

Adding a dialect is one module exposing ``DIALECT`` and one entry here. Modules are imported on first
use, so importing the package has no side effects and starting the proxy loads only what it routes to.
"""

from __future__ import annotations

import importlib
from typing import cast

from llm_proxy.dialects.base import Dialect

DIALECT_MODULES: dict[str, str] = {
    "openai-chat": "llm_proxy.dialects.openai_chat",
    "openai-responses": "llm_proxy.dialects.openai_responses",
    "claude": "llm_proxy.dialects.claude",
    "bedrock": "llm_proxy.dialects.bedrock",
}


def get_dialect(name: str) -> Dialect:
    """The codec for ``name`` (one of ``DIALECT_MODULES``)."""
    return cast(Dialect, importlib.import_module(DIALECT_MODULES[name]).DIALECT)
