"""The ``bedrock`` dialect: AWS Bedrock InvokeModel for Anthropic models, JSON and event stream.

Bedrock's Anthropic body is the Messages body in another envelope: no ``model`` (it is the path's
``/model/{modelId}/invoke``), no ``stream`` (streaming is the ``invoke-with-response-stream`` path),
plus ``anthropic_version: "bedrock-2023-05-31"`` and optional ``anthropic_beta: [...]`` in the body.
Responses are Messages JSON; stream events are the Messages events, each base64-wrapped in an AWS
event-stream ``chunk`` frame, and ``message_stop`` also carries ``amazon-bedrock-invocationMetrics``.
So this module only handles the envelope and delegates everything else to the claude codec
(``encode_body``/``decode_body``, ``encode_message``/``decode_message``, ``feed_event``/``encode_objects``).

Errors are Bedrock's: ``{"message": ...}`` with the type in the ``x-amzn-ErrorType`` header over HTTP,
exception frames (``:exception-type``) inside a stream. Authentication (SigV4 or a Bedrock API key) is
not a codec concern: see ``llm_proxy.upstream.auth``. Mapping tables: ``docs/dialects/bedrock.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from llm_proxy.canonical import (
    JSON,
    ErrorKind,
    ProxyError,
    Request,
    Response,
    StreamError,
    StreamEvent,
)
from llm_proxy.dialects import claude, get_spec
from llm_proxy.dialects.base import Dialect, EncodeOptions, ErrorBody, StreamDecoder, Summary
from llm_proxy.dialects.bedrock import watch
from llm_proxy.dialects.jsonread import header, http_error, upstream_fault
from llm_proxy.dialects.watch import StreamWatcher
from llm_proxy.errors import RequestError, kind_for_status
from llm_proxy.framing.eventstream import (
    EVENTSTREAM_CONTENT_TYPE,
    EventStreamDecoder,
    EventStreamError,
    Frame,
    chunk_event_json,
    chunk_frame,
    exception_frame,
    header_text,
)
from llm_proxy.prompt import SystemEdit

NAME = "bedrock"
ANTHROPIC_VERSION = "bedrock-2023-05-31"
"""The only ``anthropic_version`` Bedrock accepts for the Messages body."""
METRICS_KEY = "amazon-bedrock-invocationMetrics"
INNER_CONTENT_TYPE = "application/json"

# -- errors ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ErrorType:
    status: int
    kind: ErrorKind


# Bedrock error and stream exception types (HTTP ``ValidationException``, stream ``validationException``: the same
# names up to the first letter, so they are looked up lower-cased) -> the status Bedrock uses and a canonical kind.
_ERROR_TYPES: dict[str, _ErrorType] = {
    "validationexception": _ErrorType(400, ErrorKind.INVALID_REQUEST),
    "servicequotaexceededexception": _ErrorType(400, ErrorKind.RATE_LIMIT),
    "accessdeniedexception": _ErrorType(403, ErrorKind.PERMISSION),
    # IAM / signature failures (real AWS answers 403 for these)
    "unrecognizedclientexception": _ErrorType(403, ErrorKind.AUTHENTICATION),
    "invalidsignatureexception": _ErrorType(403, ErrorKind.AUTHENTICATION),
    "incompletesignatureexception": _ErrorType(403, ErrorKind.AUTHENTICATION),
    "missingauthenticationtokenexception": _ErrorType(403, ErrorKind.AUTHENTICATION),
    "expiredtokenexception": _ErrorType(403, ErrorKind.AUTHENTICATION),
    "resourcenotfoundexception": _ErrorType(404, ErrorKind.NOT_FOUND),
    "modeltimeoutexception": _ErrorType(408, ErrorKind.TIMEOUT),
    "modelerrorexception": _ErrorType(424, ErrorKind.API_ERROR),
    "modelstreamerrorexception": _ErrorType(424, ErrorKind.API_ERROR),
    "throttlingexception": _ErrorType(429, ErrorKind.RATE_LIMIT),
    "modelnotreadyexception": _ErrorType(429, ErrorKind.OVERLOADED),
    "internalserverexception": _ErrorType(500, ErrorKind.API_ERROR),
    "serviceunavailableexception": _ErrorType(503, ErrorKind.OVERLOADED),
}

# Canonical kind -> (status, x-amzn-ErrorType) shown to a Bedrock client. boto3 picks its exception class
# from the type, so every kind maps to one of the types InvokeModel declares.
_CLIENT_ERRORS: dict[ErrorKind, tuple[int, str]] = {
    ErrorKind.INVALID_REQUEST: (400, "ValidationException"),
    ErrorKind.CONTEXT_LENGTH: (400, "ValidationException"),
    ErrorKind.REQUEST_TOO_LARGE: (400, "ValidationException"),
    ErrorKind.CONFLICT: (400, "ValidationException"),
    ErrorKind.AUTHENTICATION: (403, "UnrecognizedClientException"),
    ErrorKind.PERMISSION: (403, "AccessDeniedException"),
    ErrorKind.BILLING: (403, "AccessDeniedException"),
    ErrorKind.NOT_FOUND: (404, "ResourceNotFoundException"),
    ErrorKind.TIMEOUT: (408, "ModelTimeoutException"),
    ErrorKind.RATE_LIMIT: (429, "ThrottlingException"),
    ErrorKind.BUDGET: (429, "ThrottlingException"),
    ErrorKind.API_ERROR: (500, "InternalServerException"),
    ErrorKind.OVERLOADED: (503, "ServiceUnavailableException"),
    ErrorKind.UPSTREAM_UNREACHABLE: (503, "ServiceUnavailableException"),
}

# Canonical kind -> the stream exception a Bedrock client gets mid-stream (default: internalServerException).
_STREAM_EXCEPTIONS: dict[ErrorKind, str] = {
    ErrorKind.INVALID_REQUEST: "validationException",
    ErrorKind.CONTEXT_LENGTH: "validationException",
    ErrorKind.REQUEST_TOO_LARGE: "validationException",
    ErrorKind.CONFLICT: "validationException",
    ErrorKind.RATE_LIMIT: "throttlingException",
    ErrorKind.BUDGET: "throttlingException",
    ErrorKind.TIMEOUT: "modelTimeoutException",
    ErrorKind.OVERLOADED: "serviceUnavailableException",
    ErrorKind.UPSTREAM_UNREACHABLE: "serviceUnavailableException",
}

_CONTEXT_MARKERS = ("prompt is too long", "input is too long", "too many input tokens", "context_length_exceeded")


def error_kind(error_type: str | None, message: str, status: int) -> ErrorKind:
    """The canonical kind of a Bedrock error type (either spelling), its message and status."""
    known = _ERROR_TYPES.get((error_type or "").lower())
    kind = known.kind if known is not None else kind_for_status(status)
    if kind is ErrorKind.INVALID_REQUEST and any(m in message.lower() for m in _CONTEXT_MARKERS):
        return ErrorKind.CONTEXT_LENGTH
    return kind


def client_error(error: ProxyError) -> tuple[int, str]:
    """(status, ``x-amzn-ErrorType``) of ``error`` for a Bedrock client."""
    if error.kind is ErrorKind.API_ERROR and error.status == 424:
        return 424, "ModelErrorException"
    named = _ERROR_TYPES.get((error.code or "").lower())
    if named is not None and error.code is not None and named.kind is error.kind:
        return named.status, error.code  # the exact AWS exception the proxy means (UnrecognizedClientException, ...)
    return _CLIENT_ERRORS.get(error.kind, (500, "InternalServerException"))


def stream_exception_type(error: ProxyError) -> str:
    """The ``:exception-type`` of an exception frame for ``error``."""
    if error.kind is ErrorKind.API_ERROR:
        # modelStreamErrorException is Bedrock's "the model's stream failed"; a plain 500 stays an internal error
        return "internalServerException" if error.status == 500 else "modelStreamErrorException"
    return _STREAM_EXCEPTIONS.get(error.kind, "internalServerException")


def _error_body(body: bytes) -> tuple[str | None, str | None]:
    """(``__type``, message) of an AWS JSON error body; (None, None) when it is not one."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(obj, dict):
        return None, None
    message = obj.get("message", obj.get("Message"))
    raw_type = obj.get("__type")
    # the JSON protocol's "__type" may be namespaced: "com.amazon.bedrock#ValidationException"
    error_type = raw_type.rsplit("#", 1)[-1] if isinstance(raw_type, str) else None
    return error_type, message if isinstance(message, str) else None


def decode_error(status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
    """An HTTP error from Bedrock as a canonical error. Never raises."""
    header_type = header(headers, "x-amzn-errortype")
    body_type, message = _error_body(body)
    # "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/" -> "ThrottlingException"
    error_type = header_type.split(":", 1)[0].strip() if header_type else body_type
    if message is None:
        message = body.decode("utf-8", "replace")[:500]
    return http_error(status, error_type, message, headers, error_kind)


def encode_error(error: ProxyError) -> ErrorBody:
    status, error_type = client_error(error)
    headers: tuple[tuple[str, str], ...] = (("x-amzn-ErrorType", error_type),)
    if error.retry_after:
        headers += (("Retry-After", error.retry_after),)
    return ErrorBody(status=status, body=orjson.dumps({"message": error.message}), headers=headers)


def stream_exception_error(exception_type: str, payload: bytes) -> ProxyError:
    """An exception frame as a canonical error."""
    _, message = _error_body(payload)
    text = message or f"the upstream stream failed ({exception_type})"
    known = _ERROR_TYPES.get(exception_type.lower())
    status = known.status if known is not None else 500
    return ProxyError(status=status, kind=error_kind(exception_type, text, status), message=text)


# -- requests ----------------------------------------------------------------------------------

_BETA_NAME = re.compile(r"[A-Za-z0-9._-]+")


def _check_envelope(body: dict[str, JSON]) -> None:
    version = body.get("anthropic_version")
    if version is not None and not isinstance(version, str):
        raise RequestError("anthropic_version must be a string", param="anthropic_version")
    betas = body.get("anthropic_beta")
    if betas is not None and not (isinstance(betas, list) and all(isinstance(b, str) for b in betas)):
        raise RequestError("anthropic_beta must be a list of strings", param="anthropic_beta")
    # The names become the anthropic-beta header toward Anthropic: one token each, no spaces, commas or line breaks.
    if isinstance(betas, list) and not all(_BETA_NAME.fullmatch(str(b)) for b in betas):
        raise RequestError(
            "anthropic_beta entries must be beta names (letters, digits, '-', '_', '.')", param="anthropic_beta"
        )


def decode_request(body: JSON, path_model: str | None) -> Request:
    """A Bedrock body as a canonical request for the path's model id.

    ``anthropic_version`` and ``anthropic_beta`` stay in ``extra`` (the claude decoder keeps unknown top-level
    fields); they are re-sent only toward Bedrock. ``stream`` is left False: the path decides, not the body.
    """
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    if not path_model:
        raise RequestError("the model id must be in the path: /model/{modelId}/invoke")
    _check_envelope(body)
    return claude.decode_body(body, model=path_model, origin=NAME)


def encode_request(request: Request, options: EncodeOptions) -> dict[str, JSON]:
    """The Bedrock body: the Messages body without model/stream, plus the Bedrock envelope fields."""
    body: dict[str, JSON] = {"anthropic_version": ANTHROPIC_VERSION, **claude.encode_body(request, options)}
    if request.origin == NAME:
        # A Claude client's betas arrive as an HTTP header the codec never sees, so only a Bedrock client's
        # own envelope fields can be forwarded.
        for key in claude.BEDROCK_ENVELOPE:
            if key in request.extra:
                body[key] = request.extra[key]
    return body


def response_headers(response: Response | None) -> dict[str, str]:
    """The headers a real Bedrock answer carries (latency is not measured by a pure codec: 0)."""
    if response is None:
        return {"X-Amzn-Bedrock-Content-Type": INNER_CONTENT_TYPE}
    usage = response.usage
    headers = {
        "X-Amzn-Bedrock-Input-Token-Count": str(usage.input_tokens),
        "X-Amzn-Bedrock-Output-Token-Count": str(usage.output_tokens),
        "X-Amzn-Bedrock-Invocation-Latency": "0",
    }
    if usage.cache_read_tokens:
        headers["X-Amzn-Bedrock-Cache-Read-Input-Token-Count"] = str(usage.cache_read_tokens)
    if usage.cache_write_tokens:
        headers["X-Amzn-Bedrock-Cache-Write-Input-Token-Count"] = str(usage.cache_write_tokens)
    return headers


# -- streams -----------------------------------------------------------------------------------


class BedrockStreamDecoder:
    """Event-stream bytes -> frames (botocore, CRC-checked) -> Messages event objects -> canonical events."""

    def __init__(self, request: Request) -> None:
        self._frames = EventStreamDecoder()
        self._inner = claude.ClaudeStreamDecoder(request)
        self._end = self._inner.end  # one stream: a failed frame ends it for the inner decoder too
        self.skip: Callable[[Frame], bool] | None = None
        """Frames not decoded at all (a light watcher's test, see ``dialects.watch``)."""

    def feed(self, data: bytes) -> list[StreamEvent]:
        if self._end.ended:
            return []
        try:
            frames = self._frames.feed(data)
        except EventStreamError as exc:
            return self._end.error(upstream_fault(f"the upstream sent a corrupt event stream: {exc}"))
        out: list[StreamEvent] = []
        for frame in frames:
            if self.skip is not None and self.skip(frame):
                continue
            out.extend(self._on_frame(frame))
            if self._end.ended:
                break  # nothing may follow Finish or StreamError
        return out

    def close(self) -> list[StreamEvent]:
        return self._inner.close()  # the cut-stream error: the upstream ended without message_stop

    def _on_frame(self, frame: Frame) -> list[StreamEvent]:
        message_type = frame.headers.get(":message-type")
        if message_type == "exception":
            exception_type = header_text(frame.headers.get(":exception-type")) or "internalServerException"
            return self._end.error(stream_exception_error(exception_type, frame.payload))
        if message_type == "error":  # a protocol-level error frame: :error-code / :error-message headers
            code, text = header_text(frame.headers.get(":error-code")), header_text(frame.headers.get(":error-message"))
            return self._end.error(upstream_fault(f"the upstream stream failed: {code}: {text}"))
        if message_type != "event" or frame.headers.get(":event-type") != "chunk":
            return []  # other event types (none today) carry nothing canonical
        try:
            obj = orjson.loads(chunk_event_json(frame))
        except (EventStreamError, orjson.JSONDecodeError):
            obj = None
        if not isinstance(obj, dict):
            return self._end.error(upstream_fault("the upstream sent a chunk that is not a JSON event object"))
        return self._inner.feed_event(obj)  # ends the stream at message_stop or an error event


class BedrockStreamEncoder:
    """Canonical events -> Messages event objects (claude encoder) -> event-stream chunk frames."""

    content_type = EVENTSTREAM_CONTENT_TYPE

    def __init__(self, request: Request) -> None:
        self._inner = claude.ClaudeStreamEncoder(request)
        self._end = self._inner.end  # one stream: an exception frame ends it for the inner encoder too
        self._usage: JSON = None

    def encode(self, event: StreamEvent) -> bytes:
        if self._end.ended:
            return b""
        if isinstance(event, StreamError):
            self._end.fail()
            return exception_frame(stream_exception_type(event.error), event.error.message)
        frames: list[bytes] = []
        for obj in self._inner.encode_objects(event):
            if obj.get("type") == "message_delta":
                self._usage = obj.get("usage")
            elif obj.get("type") == "message_stop":  # the inner encoder has ended the stream
                obj = {**obj, METRICS_KEY: self._metrics()}
            frames.append(chunk_frame(orjson.dumps(obj)))
        return b"".join(frames)

    def close(self) -> bytes:
        return self._end.close()  # the stream ends with message_stop's frame (or an exception frame)

    def _metrics(self) -> dict[str, JSON]:
        usage = self._usage if isinstance(self._usage, dict) else {}
        return {
            "inputTokenCount": usage.get("input_tokens", 0),
            "outputTokenCount": usage.get("output_tokens", 0),
            "invocationLatency": 0,
            "firstByteLatency": 0,
        }


# -- the dialect -------------------------------------------------------------------------------


class BedrockDialect:
    name = NAME

    # -- client side ------------------------------------------------------------------------

    def decode_request(
        self, body: JSON, *, path_model: str | None = None, query: Mapping[str, str] | None = None
    ) -> Request:
        return decode_request(body, path_model)

    def encode_response(self, response: Response, request: Request) -> bytes:
        return orjson.dumps(claude.encode_message(response, request))

    def stream_encoder(self, request: Request) -> BedrockStreamEncoder:
        return BedrockStreamEncoder(request)

    def encode_error(self, error: ProxyError) -> ErrorBody:
        return encode_error(error)

    def response_headers(self, response: Response | None) -> dict[str, str]:
        return response_headers(response)

    # -- upstream side ----------------------------------------------------------------------

    def encode_request(self, request: Request, options: EncodeOptions) -> JSON:
        return encode_request(request, options)

    def upstream_path(self, request: Request) -> str:
        return get_spec(NAME).endpoints[1 if request.stream else 0].path_for(request.model)

    def upstream_headers(self, request: Request, client_headers: Mapping[str, str]) -> dict[str, str]:
        if request.stream:
            return {"accept": EVENTSTREAM_CONTENT_TYPE, "x-amzn-bedrock-accept": INNER_CONTENT_TYPE}
        return {"accept": INNER_CONTENT_TYPE}

    def decode_response(self, body: JSON, request: Request) -> Response:
        return claude.decode_message(body, request, origin=NAME)

    def summarize(self, body: dict[str, Any]) -> Summary | None:
        return claude.DIALECT.summarize(body)  # invoke answers are Anthropic Messages

    def stream_decoder(self, request: Request) -> BedrockStreamDecoder:
        return BedrockStreamDecoder(request)

    def stream_watcher(self, request: Request) -> StreamDecoder:
        return StreamWatcher(BedrockStreamDecoder(request), watch.skip)

    def decode_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProxyError:
        return decode_error(status, body, headers)

    def edit_system_raw(self, body: dict[str, Any], edit: SystemEdit, tail: str | None) -> bool:
        return claude.edit_system_raw(body, edit, tail)

    def encode_model_list(self, names: list[str]) -> bytes | None:
        return None  # Bedrock lists models in another service (ListFoundationModels), not under the runtime


DIALECT: Dialect = BedrockDialect()  # annotated: mypy checks the class against the protocol
