"""The interface every dialect codec implements.

A dialect is a pure codec: JSON documents and bytes in, canonical objects out, and back. It never
touches a socket, a clock-dependent store or the event loop. The same module serves both sides of
the proxy: toward the *client* it decodes requests and encodes responses, stream events and errors;
toward the *upstream* it encodes requests and decodes responses, streams and errors.

Stream codecs follow the sans-IO shape (h11, httpx decoders): ``feed(bytes) -> list[event]`` and
``close() -> list[event]`` for decoders, ``encode(event) -> bytes`` and ``close() -> bytes`` for
encoders. They are tested by feeding input split at every byte offset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol
from urllib.parse import quote

from llm_proxy.canonical import JSON, ProxyError, Request, Response, StopReason, StreamEvent, Usage

if TYPE_CHECKING:
    from llm_proxy.prompt import SystemEdit

log = logging.getLogger("llm_proxy.modes.translate")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One operation a dialect serves to clients, by the path below a route prefix.

    ``path`` may hold one ``{model}`` segment: the model id then lives in the path, percent-encoded
    (Bedrock's ``/model/{model}/invoke``); otherwise it lives in the body's ``model``. The segment may end
    in a fixed suffix after the model (Gemini's ``/v1beta/models/{model}:generateContent``).
    """

    path: str
    action: Literal["generate", "count_tokens"] = "generate"
    streaming: bool = False
    """The path itself asks for a stream (Bedrock's ``invoke-with-response-stream``)."""
    versioned: bool = True
    """Also recognised with a leading ``/v1`` (OpenAI SDK base URLs may or may not end in ``/v1``)."""
    model_segment: int = field(init=False, compare=False)
    """Index of the ``{model}`` segment in ``path.split("/")`` (-1 when the model is in the body)."""
    model_in_path: bool = field(init=False, compare=False)
    model_suffix: str = field(init=False, compare=False)
    """What follows ``{model}`` in its segment (``:generateContent``), empty for a whole-segment model."""

    def __post_init__(self) -> None:
        # Read on every request: computed once here (the dataclass is frozen, hence object.__setattr__).
        segments = self.path.split("/")
        index = next((i for i, s in enumerate(segments) if s.startswith("{model}")), -1)
        object.__setattr__(self, "model_segment", index)
        object.__setattr__(self, "model_in_path", index >= 0)
        object.__setattr__(self, "model_suffix", segments[index][len("{model}") :] if index >= 0 else "")

    def path_for(self, model: str) -> str:
        """The path with ``model`` put in, percent-encoded as AWS clients do (no ``/`` left unescaped)."""
        return self.path.replace("{model}", quote(model, safe=""))


ThinkingStyle = Literal["signed", "encrypted", "plain"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DialectSpec:
    """What the rest of the proxy needs to know about a dialect without importing its codec.

    Routing, error rendering for unrouted paths, upstream authentication and the session features
    read this; the codec (``Dialect``) is imported on first use only.
    """

    name: str
    module: str
    """The package holding the codec (``DIALECT``), imported on first use."""
    endpoints: tuple[Endpoint, ...]
    detect_header: str | None = None
    """A request header only clients of this dialect send (``anthropic-version``): it decides the shape of
    errors and model lists on paths no endpoint claims."""
    sigv4: bool = False
    """Upstream requests are SigV4-signed by the proxy unless the route holds an API key (AWS)."""
    thinking: ThinkingStyle = "plain"
    """How the dialect's reasoning survives a turn: a signature that must come back (``signed``), an opaque
    blob (``encrypted``), or nothing to keep (``plain``: clients may drop it when they echo a turn)."""
    server_side_conversations: bool = False
    """The API keeps conversations itself (``previous_response_id``); a proxy in front of another upstream
    must keep them instead."""
    count_tokens_path: str | None = None
    """Upstream path of a token-counting operation, if the API has one (else the proxy estimates)."""
    provider: str
    """Who serves the API, as OpenTelemetry's ``gen_ai.provider.name`` names it (``anthropic``, ``openai``,
    ``aws.bedrock``): the span's provider, and the price list the usage ledger prices a backend's answers from."""
    operation: str = "chat"
    """OpenTelemetry's ``gen_ai.operation.name`` for the dialect's generate operation."""
    key_query_param: str | None = None
    """A query parameter that may carry the client's API key instead of a header (Gemini's ``?key=``): read as
    the client's credential, never forwarded upstream nor logged."""
    key_header: str | None = None
    """The header this dialect's clients send their API key in, where ``key_query_param``'s value is moved."""
    signature_carry: str | None = None
    """The carry kind (``framing.carry``) in which this dialect's reasoning signatures travel in canonical form
    (``{"s": signature}``), when they are not shown bare: Gemini's ride as signed thinking in an envelope."""
    token_count_field: str = "input_tokens"
    """The field of a token-count answer holding the count (Anthropic ``input_tokens``, Gemini ``totalTokens``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodeOptions:
    """Per-route knobs that shape an upstream request."""

    default_max_tokens: int = 8192
    """Sent to upstreams that require ``max_tokens`` (Claude, Bedrock) when the client gave none."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorBody:
    """A rendered error: status, extra headers and body bytes, in one dialect."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"


class Summary(NamedTuple):
    """Model, stop reason and usage of a whole answer, without its content (``Dialect.summarize``).

    What metrics, the access line, the span and the ledger read from a relayed answer; a tuple, because a
    ``Response`` (nine frozen fields) costs more to build than reading the answer's usage.
    """

    model: str
    stop_reason: StopReason | None
    usage: Usage


class StreamDecoder(Protocol):
    """Upstream stream bytes in, canonical events out."""

    def feed(self, data: bytes) -> list[StreamEvent]: ...

    def close(self) -> list[StreamEvent]:
        """The upstream closed the stream. If it had not finished properly, return a ``StreamError``."""
        ...


class StreamEncoder(Protocol):
    """Canonical events in, client stream bytes out."""

    content_type: str

    def encode(self, event: StreamEvent) -> bytes: ...

    def close(self) -> bytes:
        """The stream ends here: emit whatever terminator the dialect needs (e.g. ``[DONE]``)."""
        ...


class Dialect(Protocol):
    name: str

    # -- client side ------------------------------------------------------------------------
    def decode_request(
        self, body: JSON, *, path_model: str | None = None, query: Mapping[str, str] | None = None
    ) -> Request:
        """Decode a client request body. Raise ``RequestError`` for malformed input.

        ``query`` holds the request's query parameters (Gemini's ``alt=sse`` picks the stream's framing).
        """
        ...

    def encode_response(self, response: Response, request: Request) -> bytes: ...

    def stream_encoder(self, request: Request) -> StreamEncoder: ...

    def encode_error(self, error: ProxyError) -> ErrorBody: ...

    def response_headers(self, response: Response | None) -> dict[str, str]:
        """Extra headers for a successful client response (``None``: a stream, headers sent first)."""
        ...

    # -- upstream side ----------------------------------------------------------------------
    def encode_request(self, request: Request, options: EncodeOptions) -> JSON:
        """The upstream request body for ``request`` (whose ``model`` is already the backend's)."""
        ...

    def upstream_path(self, request: Request) -> str:
        """Path of the operation, relative to ``backend_base_url`` without ``/v1`` duplication.

        Returns e.g. ``/v1/chat/completions``; the caller drops the leading ``/v1`` when the base URL
        already ends with it.
        """
        ...

    def upstream_headers(self, request: Request, client_headers: Mapping[str, str]) -> dict[str, str]:
        """Vendor headers the upstream needs (e.g. ``anthropic-version``), given the client's headers."""
        ...

    def decode_response(self, body: JSON, request: Request) -> Response: ...

    def summarize(self, body: dict[str, Any]) -> Summary | None:
        """Model, usage and stop reason of a whole answer, without its content.

        Proxy mode relays answers untouched but metrics, the access line, the span and the ledger want
        their usage; decoding every content part would cost more than the rest of that together.
        Missing fields read as empty (no usage, no stop reason); None only when nothing can be read.
        """
        ...

    def stream_decoder(self, request: Request) -> StreamDecoder: ...

    def stream_watcher(self, request: Request) -> StreamDecoder:
        """A light decoder for observing a relayed stream (proxy mode without session features).

        It emits only what metrics, the access line, the ledger and the span read: ``MessageStart``, ``Finish``
        and ``StreamError`` exactly as ``stream_decoder`` would, and the first token-bearing event (a text,
        thinking or tool-argument delta, or a redacted-thinking ``BlockStart``) at the same chunk, once; events
        that cannot carry those are skipped by a cheap bytes test after the first token (``dialects.watch``).
        """
        ...

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError: ...

    # -- proxy mode and listings -------------------------------------------------------------
    def edit_system_raw(self, body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
        """Edit the system prompt of a parsed request body in place (proxy mode); whether anything changed.

        Bodies of an unexpected shape are left alone (the upstream judges them).
        """
        ...

    def encode_model_list(self, names: list[str]) -> bytes | None:
        """The body of ``GET .../models`` listing ``names`` in this dialect, or None when it has no such list."""
        ...


def drop(dialect: str, what: str) -> None:
    """Record a field deliberately not forwarded to ``dialect`` (no equivalent there)."""
    log.debug("dropped %s: no equivalent in %s", what, dialect)
