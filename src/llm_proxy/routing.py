"""From a request path to a route prefix, an operation, and (for Bedrock paths) the model id.

Each distinct ``frontend_base_url`` owns everything under it; the longest matching prefix wins and
matches only on a path-segment boundary. Under a prefix, operations are recognised with or without
the leading ``/v1`` (the OpenAI SDK's ``base_url`` may or may not end in ``/v1``).

Paths are handled in their raw, percent-encoded form so that a Bedrock ARN's ``%2F`` is not mistaken
for a separator, and so that what reaches the upstream is exactly what the client sent.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from llm_proxy.config import Route
from llm_proxy.errors import RequestError


class Operation(enum.Enum):
    CHAT = "chat"
    RESPONSES = "responses"
    MESSAGES = "messages"
    COUNT_TOKENS = "count_tokens"
    MODELS = "models"
    BEDROCK_INVOKE = "bedrock_invoke"
    BEDROCK_STREAM = "bedrock_stream"
    OTHER = "other"


OPERATION_DIALECT: dict[Operation, str] = {
    Operation.CHAT: "openai-chat",
    Operation.RESPONSES: "openai-responses",
    Operation.MESSAGES: "claude",
    Operation.COUNT_TOKENS: "claude",
    Operation.BEDROCK_INVOKE: "bedrock",
    Operation.BEDROCK_STREAM: "bedrock",
}
"""The dialect a path implies (for translation and for the shape of error bodies)."""

_FIXED: dict[str, Operation] = {
    "/chat/completions": Operation.CHAT,
    "/responses": Operation.RESPONSES,
    "/messages": Operation.MESSAGES,
    "/messages/count_tokens": Operation.COUNT_TOKENS,
    "/models": Operation.MODELS,
}


@dataclass(frozen=True, slots=True)
class Target:
    prefix: str
    rest: str
    """The raw path after the prefix (starts with ``/`` or is empty)."""
    operation: Operation
    path_model: str | None = None
    """The URL-decoded model id of a Bedrock path."""

    @property
    def streaming_path(self) -> bool:
        return self.operation is Operation.BEDROCK_STREAM


def classify(rest: str) -> tuple[Operation, str | None]:
    """The operation of a raw path below a prefix, and the model id for Bedrock paths."""
    path = rest[3:] if rest.startswith("/v1/") else rest
    op = _FIXED.get(path.rstrip("/") if len(path) > 1 else path)
    if op is not None:
        return op, None
    parts = rest.split("/")
    # ["", "model", "<id>", "invoke" | "invoke-with-response-stream"]
    # An empty id (``/model//invoke``) is still a Bedrock path: the error then comes in Bedrock's shape.
    if len(parts) == 4 and parts[1] == "model":
        if parts[3] == "invoke":
            return Operation.BEDROCK_INVOKE, unquote(parts[2])
        if parts[3] == "invoke-with-response-stream":
            return Operation.BEDROCK_STREAM, unquote(parts[2])
    return Operation.OTHER, None


def bedrock_path(model_id: str, streaming: bool) -> str:
    """``/model/{id}/invoke[-with-response-stream]`` with the id percent-encoded as AWS clients do."""
    action = "invoke-with-response-stream" if streaming else "invoke"
    return f"/model/{quote(model_id, safe='')}/{action}"


def check_rest_path(rest: str, operation: Operation) -> None:
    """Refuse paths that could leave ``backend_base_url`` once joined to it.

    Rejected: ``.``/``..`` segments (also percent-encoded), encoded slashes or backslashes (an
    upstream may decode them into separators), backslashes, and absolute URLs. A Bedrock model id
    segment may hold an encoded slash (ARNs): the proxy re-encodes that id itself.
    """
    segments = rest.split("/")
    skip = 2 if operation in (Operation.BEDROCK_INVOKE, Operation.BEDROCK_STREAM) else -1
    for i, raw in enumerate(segments):
        if i == skip:
            continue
        decoded = unquote(raw)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded:
            raise RequestError(f"path segment {raw!r} is not allowed: it could escape the upstream base URL")
    if "://" in unquote(rest):
        raise RequestError("absolute URLs are not allowed in the request path")


class Router:
    """Prefix lookup, then model lookup within the prefix."""

    __slots__ = ("_prefixes", "_by_prefix")

    def __init__(self, routes: Iterable[Route]) -> None:
        by_prefix: dict[str, dict[str, Route]] = {}
        for route in routes:
            by_prefix.setdefault(route.frontend_base_url, {})[route.frontend_model_name] = route
        self._by_prefix = by_prefix
        self._prefixes = sorted(by_prefix, key=len, reverse=True)

    def match(self, raw_path: str) -> Target | None:
        for prefix in self._prefixes:
            if raw_path == prefix or raw_path.startswith(prefix + "/") or prefix == "":
                rest = raw_path[len(prefix) :]
                operation, model = classify(rest)
                return Target(prefix, rest, operation, model)
        return None

    def models(self, prefix: str) -> dict[str, Route]:
        return self._by_prefix.get(prefix, {})

    @property
    def prefixes(self) -> list[str]:
        return list(self._prefixes)
