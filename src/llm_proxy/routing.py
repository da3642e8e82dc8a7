"""From a request path to a route prefix, a dialect endpoint, and (for model-in-path endpoints) the model id.

Each distinct ``frontend_base_url`` owns everything under it; the longest matching prefix wins and
matches only on a path-segment boundary. Below the prefix, the path is looked up in the endpoint table
built from the dialect registry (``dialects.specs()``): every dialect declares its endpoints, so this
module names none. Versioned endpoints are recognised with or without the leading ``/v1`` (the OpenAI
SDK's ``base_url`` may or may not end in ``/v1``).

Paths are handled in their raw, percent-encoded form so that a Bedrock ARN's ``%2F`` is not mistaken
for a separator, and so that what reaches the upstream is exactly what the client sent.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from llm_proxy.config import Route
from llm_proxy.dialects import specs
from llm_proxy.dialects.base import DialectSpec, Endpoint
from llm_proxy.errors import RequestError

MODELS_PATH = "/models"


@dataclass(frozen=True, slots=True)
class Target:
    prefix: str
    rest: str
    """The raw path after the prefix (starts with ``/`` or is empty)."""
    endpoint: Endpoint | None = None
    """The dialect operation the path names; None for model lists and any other path."""
    dialect: str | None = None
    """The dialect whose endpoint the path is (for translation and for the shape of error bodies)."""
    path_model: str | None = None
    """The URL-decoded model id of a model-in-path endpoint (may be empty: the client sent none)."""
    models_list: bool = False
    """``.../models``: the list of models served under the prefix."""


class EndpointTable:
    """Every dialect's endpoints, looked up by path: fixed paths in a dict, model-in-path ones by segments."""

    __slots__ = ("_fixed", "_templated")

    def __init__(self, dialects: Iterable[DialectSpec]) -> None:
        self._fixed: dict[str, tuple[str, Endpoint]] = {}
        self._templated: list[tuple[list[str], str, Endpoint]] = []
        for spec in dialects:
            for endpoint in spec.endpoints:
                if endpoint.model_in_path:
                    self._templated.append((endpoint.path.split("/"), spec.name, endpoint))
                    continue
                paths = [endpoint.path, "/v1" + endpoint.path] if endpoint.versioned else [endpoint.path]
                for path in paths:
                    if path in self._fixed:
                        raise ValueError(f"endpoint {path} is declared by {self._fixed[path][0]} and {spec.name}")
                    self._fixed[path] = (spec.name, endpoint)

    def classify(self, rest: str) -> tuple[str | None, Endpoint | None, str | None]:
        """(dialect, endpoint, model id in the path) of a raw path below a prefix; Nones for other paths."""
        path = rest.rstrip("/") if len(rest) > 1 else rest
        found = self._fixed.get(path)
        if found is not None:
            return found[0], found[1], None
        segments = rest.split("/")
        for pattern, dialect, endpoint in self._templated:
            if len(pattern) != len(segments):
                continue
            model = None
            for i, (want, got) in enumerate(zip(pattern, segments, strict=True)):
                if i == endpoint.model_segment:
                    suffix = endpoint.model_suffix
                    if not got.endswith(suffix):
                        break
                    model = unquote(got[: len(got) - len(suffix)])
                elif want != got:
                    break
            else:
                return dialect, endpoint, model
        return None, None, None


_VERSIONED_MODELS = re.compile(r"/v\d+(?:(?:alpha|beta)\d*)?/models")


def is_models_list(rest: str) -> bool:
    """``/models`` below the prefix, bare or under an API version (``/v1``, ``/v1beta``)."""
    path = rest.rstrip("/") if len(rest) > 1 else rest
    return path == MODELS_PATH or _VERSIONED_MODELS.fullmatch(path) is not None


def check_rest_path(rest: str, endpoint: Endpoint | None) -> None:
    """Refuse paths that could leave ``backend_base_url`` once joined to it.

    Rejected: ``.``/``..`` segments (also percent-encoded), encoded slashes or backslashes (an
    upstream may decode them into separators), backslashes, and absolute URLs. A model id segment
    may hold an encoded slash (Bedrock ARNs): the proxy re-encodes that id itself.
    """
    segments = rest.split("/")
    skip = endpoint.model_segment if endpoint is not None else -1
    for i, raw in enumerate(segments):
        if i == skip:
            continue
        decoded = unquote(raw)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
            raise RequestError(f"path segment {raw!r} is not allowed: it could escape the upstream base URL")
    if "://" in unquote(rest):
        raise RequestError("absolute URLs are not allowed in the request path")


MAX_CACHED_PATHS = 1024
"""Request paths whose target (and safe check) the router remembers; past this many it starts over (model-in-path
endpoints make the paths as many as the model ids clients send)."""


class Router:
    """Prefix lookup, then endpoint lookup below the prefix, then model lookup within the prefix."""

    __slots__ = ("_prefixes", "_by_prefix", "_patterns", "endpoints", "_matched", "_safe")

    def __init__(self, routes: Iterable[Route], endpoints: EndpointTable | None = None) -> None:
        by_prefix: dict[str, dict[str, Route]] = {}
        patterns: dict[str, list[Route]] = {}
        for route in routes:
            if route.pattern:
                patterns.setdefault(route.frontend_base_url, []).append(route)
                by_prefix.setdefault(route.frontend_base_url, {})
            else:
                by_prefix.setdefault(route.frontend_base_url, {})[route.frontend_model_name] = route
        self._by_prefix = by_prefix
        # Among patterns the longest wins (``claude-sonnet-*`` before ``claude-*``).
        self._patterns = {
            p: sorted(rs, key=lambda r: len(r.frontend_model_name), reverse=True) for p, rs in patterns.items()
        }
        self._prefixes = sorted(by_prefix, key=len, reverse=True)
        self.endpoints = endpoints or EndpointTable(specs())
        self._matched: dict[str, Target | None] = {}
        """``match``'s answers by path: clients call the same few paths again and again."""
        self._safe: set[tuple[str, int]] = set()
        """(rest, model segment) that ``check_rest_path`` let through."""

    def lookup(self, prefix: str, model: str) -> Route | None:
        """The route for ``model`` under ``prefix``: an exact name first, else the longest matching pattern,
        answering for ``model`` (``{model}`` in its backend model names becomes ``model``)."""
        route = self._by_prefix.get(prefix, {}).get(model)
        if route is not None:
            return route
        for candidate in self._patterns.get(prefix, ()):
            if fnmatch.fnmatchcase(model, candidate.frontend_model_name):
                return candidate.for_model(model)
        return None

    def names(self, prefix: str) -> list[str]:
        """Every model name and pattern served under ``prefix``, for messages."""
        return sorted(self._by_prefix.get(prefix, {})) + [r.frontend_model_name for r in self._patterns.get(prefix, ())]

    def routes(self, prefix: str) -> list[Route]:
        return list(self._by_prefix.get(prefix, {}).values()) + self._patterns.get(prefix, [])

    def match(self, raw_path: str) -> Target | None:
        try:
            return self._matched[raw_path]
        except KeyError:
            pass
        if len(self._matched) >= MAX_CACHED_PATHS:
            self._matched.clear()
        target = self._matched[raw_path] = self._match(raw_path)
        return target

    def check_path(self, target: Target) -> None:
        """``check_rest_path`` for ``target``, remembered once it passed."""
        key = (target.rest, target.endpoint.model_segment if target.endpoint is not None else -1)
        if key in self._safe:
            return
        check_rest_path(target.rest, target.endpoint)
        if len(self._safe) >= MAX_CACHED_PATHS:
            self._safe.clear()
        self._safe.add(key)

    def _match(self, raw_path: str) -> Target | None:
        for prefix in self._prefixes:
            if raw_path == prefix or raw_path.startswith(prefix + "/") or prefix == "":
                rest = raw_path[len(prefix) :]
                dialect, endpoint, model = self.endpoints.classify(rest)
                if endpoint is None:
                    return Target(prefix, rest, models_list=is_models_list(rest))
                return Target(prefix, rest, endpoint, dialect, model)
        return None

    def models(self, prefix: str) -> dict[str, Route]:
        """The routes of exact model names under ``prefix`` (what ``/v1/models`` lists)."""
        return self._by_prefix.get(prefix, {})

    @property
    def prefixes(self) -> list[str]:
        return list(self._prefixes)
