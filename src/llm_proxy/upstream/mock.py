"""The embedded mock upstream: answers as a model would, in the dialect of the path it is called on.

Used by the demo config (``backend_base_url: mock://``, answered in-process), by the tests and by the
benchmarks (``llm-proxy mock-upstream --port N`` serves the same mock over HTTP). It decodes the
request with the dialect's own codec, plans a reply from the last user message, and encodes the reply
with the same codec, so it speaks every dialect the proxy speaks, streaming included.

By default it echoes the last user message. Directives inside that message make it do more, so demos,
tests and real clients (Claude Code, Codex) can exercise every path:

``[[mock:tool NAME {json}]]``  call tool NAME with these arguments (several directives: parallel calls;
                               NAME omitted: the first declared tool; arguments omitted: filled in)
``[[mock:think]]``             think first (thinking block, reasoning item, or ``reasoning_content``)
``[[mock:error STATUS]]``      answer with an HTTP error of that status, in the dialect's error shape
``[[mock:fail]]``              start streaming, then send the dialect's in-stream error event
``[[mock:cut]]``               start streaming, then stop without finishing the stream
``[[mock:length]]``            stop as if ``max_tokens`` was reached

When the last user turn carries tool results, the mock answers with text quoting the first result.

Given ``aws_secrets`` and/or ``bedrock_api_keys``, requests on Bedrock paths must carry a SigV4 signature that
verifies against the secret, or one of the API keys as ``Authorization: Bearer``; others get a Bedrock-shaped 403.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import orjson

from llm_proxy.canonical import (
    BlockStart,
    BlockStop,
    ErrorKind,
    Finish,
    Image,
    Message,
    MessageStart,
    Part,
    ProxyError,
    Reasoning,
    Request,
    Response,
    SignatureDelta,
    StopReason,
    StreamError,
    StreamEvent,
    Text,
    TextDelta,
    ThinkingDelta,
    Tool,
    ToolArgsDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from llm_proxy.config import MOCK_SCHEME
from llm_proxy.dialects import get_dialect, get_spec, specs
from llm_proxy.dialects.base import DialectSpec
from llm_proxy.errors import ProxyFailure, kind_for_status
from llm_proxy.framing.carry import encode_carry
from llm_proxy.routing import EndpointTable, is_models_list
from llm_proxy.upstream.headers import RawHeaders

_DIRECTIVE = re.compile(r"\[\[mock:(\w+)(?:[ \t]+([^\]\s{]+))?(?:[ \t]*(\{.*?\}))?[ \t]*\]\]", re.S)


@dataclass(frozen=True, slots=True)
class MockOptions:
    delay: float = 0.0
    """Seconds to wait before each streamed event."""
    events: int | None = None
    """Number of text deltas in a streamed reply (default: one per word)."""
    response_bytes: int | None = None
    """Size of the reply text (default: an echo of the last user message)."""
    aws_secrets: dict[str, str] = field(default_factory=dict)
    """Bedrock paths: access key id -> secret; when set, requests must carry a valid SigV4 signature."""
    bedrock_api_keys: frozenset[str] = frozenset()
    """Bedrock paths: API keys accepted as ``Authorization: Bearer <key>`` (with ``aws_secrets``: either works)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    text: str
    think: bool = False
    tool_calls: tuple[ToolCall, ...] = ()
    error: int | None = None
    mid_stream: str | None = None
    """``fail`` or ``cut``."""
    stop: StopReason = StopReason.END_TURN


class MockResponse:
    """An in-process response with the interface of ``upstream.UpstreamResponse``."""

    __slots__ = ("status", "raw_headers", "_chunks", "_delay")

    def __init__(self, status: int, content_type: str, chunks: list[bytes], delay: float = 0.0) -> None:
        self.status = status
        self.raw_headers: RawHeaders = [(b"content-type", content_type.encode())]
        if len(chunks) == 1 and not delay:
            self.raw_headers.append((b"content-length", str(len(chunks[0])).encode()))
        self._chunks = chunks
        self._delay = delay

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode()
        for key, value in self.raw_headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        # Consumed as read, like a network body: a reader that stops and asks again gets the rest.
        while self._chunks:
            if self._delay:
                await asyncio.sleep(self._delay)
            yield self._chunks.pop(0)

    async def read(self, limit: int) -> bytes:
        return b"".join(self._chunks)[:limit]

    def close(self) -> None:
        return None


class MockUpstream:
    def __init__(self, options: MockOptions | None = None) -> None:
        self.options = options or MockOptions()
        self._endpoints = EndpointTable(specs())

    async def respond(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> MockResponse:
        return self.answer(method, path, headers, body)

    # -- as the proxy's upstream transport for ``mock://`` URLs (``upstream.client.Transport``) --

    async def send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes, timeouts: object = None
    ) -> MockResponse:
        return self.answer(method, url.removeprefix(MOCK_SCHEME) or "/", headers, body)

    async def close(self) -> None:
        return None

    def answer(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes) -> MockResponse:
        target = path
        path, _, query = path.partition("?")
        dialect_name, endpoint, path_model = self._endpoints.classify(path)
        if is_models_list(path):
            listing = {
                "object": "list",
                "data": [{"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"}],
            }
            return MockResponse(200, "application/json", [orjson.dumps(listing)])
        if dialect_name is None or endpoint is None or method != "POST":
            return _plain_error(404, f"the mock upstream has no {method} {path}")
        spec = get_spec(dialect_name)
        refused = _sigv4_auth_problem(self.options, spec, method, target, headers, body)
        if refused is not None:
            return self._error(dialect_name, ProxyError(status=403, kind=ErrorKind.PERMISSION, message=refused))
        dialect = get_dialect(dialect_name)
        try:
            doc = orjson.loads(body)
            request = dialect.decode_request(doc, path_model=path_model, query=dict(parse_qsl(query)))
        except orjson.JSONDecodeError:
            return self._error(dialect_name, ProxyError(status=400, kind=ErrorKind.INVALID_REQUEST, message="bad JSON"))
        except ProxyFailure as failure:
            return self._error(dialect_name, failure.error)
        if endpoint.action == "count_tokens":
            count = {spec.token_count_field: _input_tokens(request)}
            return MockResponse(200, "application/json", [orjson.dumps(count)])
        plan = self._plan(request)
        if plan.error is not None:
            error = ProxyError(status=plan.error, kind=kind_for_status(plan.error), message=f"mock error {plan.error}")
            return self._error(dialect_name, error)
        streaming = request.stream or endpoint.streaming
        if not streaming:
            response = _response(request, plan, spec)
            reply = MockResponse(200, "application/json", [dialect.encode_response(response, request)])
            return _with_headers(reply, dialect.response_headers(response))
        encoder = dialect.stream_encoder(request)
        chunks = [encoder.encode(event) for event in _events(request, plan, spec, self.options.events)]
        if plan.mid_stream != "cut":
            tail = encoder.close()
            if tail:
                chunks.append(tail)
        reply = MockResponse(200, encoder.content_type, [c for c in chunks if c], self.options.delay)
        return _with_headers(reply, dialect.response_headers(None))

    def _error(self, dialect_name: str, error: ProxyError) -> MockResponse:
        rendered = get_dialect(dialect_name).encode_error(error)
        response = MockResponse(rendered.status, rendered.content_type, [rendered.body])
        response.raw_headers.extend((k.encode(), v.encode()) for k, v in rendered.headers)
        return response

    def _plan(self, request: Request) -> _Plan:
        last = _last_user(request)
        if last is not None and any(isinstance(p, ToolResult) for p in last.content):
            result = next(p for p in last.content if isinstance(p, ToolResult))
            quoted = " ".join(t.text for t in result.content if isinstance(t, Text))[:200]
            return _Plan(text=f"The tool returned: {quoted}")
        said = _text_of(last) if last is not None else ""
        text = _filler(self.options.response_bytes) if self.options.response_bytes else f"mock reply: {said}"
        calls: list[ToolCall] = []
        plan: dict[str, object] = {}
        for name, arg, payload in _DIRECTIVE.findall(said):
            if name == "tool":
                calls.append(_tool_call(request, arg or None, payload or None, len(calls)))
            elif name == "think":
                plan["think"] = True
            elif name == "error":
                plan["error"] = int(arg) if arg.isdigit() else 500
            elif name in ("fail", "cut"):
                plan["mid_stream"] = name
            elif name == "length":
                plan["stop"] = StopReason.MAX_TOKENS
        if calls:
            plan["stop"] = StopReason.TOOL_USE
        return _Plan(text=text, tool_calls=tuple(calls), **plan)  # type: ignore[arg-type]


def _with_headers(response: MockResponse, headers: dict[str, str]) -> MockResponse:
    response.raw_headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
    return response


def _sigv4_auth_problem(
    options: MockOptions, spec: DialectSpec, method: str, target: str, headers: list[tuple[str, str]], body: bytes
) -> str | None:
    """Why a request to an AWS dialect is refused (None: accepted). Checked only when the mock was given keys."""
    if not spec.sigv4:
        return None
    if not options.aws_secrets and not options.bedrock_api_keys:
        return None
    auth = next((v for k, v in headers if k.lower() == "authorization"), "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and options.bedrock_api_keys:
        return None if token.strip() in options.bedrock_api_keys else "mock: unknown Bedrock API key"
    if not options.aws_secrets:
        return "mock: a Bedrock API key (Authorization: Bearer) is required"
    from llm_proxy.upstream.sigv4 import verify_sigv4  # botocore is loaded only when a test asks for SigV4

    problem = verify_sigv4(method, target, dict(headers), body, options.aws_secrets.get)
    return None if problem is None else f"mock: SigV4 rejected: {problem}"


def _plain_error(status: int, message: str) -> MockResponse:
    body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})
    return MockResponse(status, "application/json", [body])


def _last_user(request: Request) -> Message | None:
    for message in reversed(request.messages):
        if message.role in ("user", "tool"):
            return message
    return None


def _text_of(message: Message) -> str:
    return " ".join(p.text for p in message.content if isinstance(p, Text))


def _input_tokens(request: Request) -> int:
    chars = sum(len(t.text) for t in request.system or ())
    for message in request.messages:
        for part in message.content:
            if isinstance(part, Text):
                chars += len(part.text)
            elif isinstance(part, ToolCall):
                chars += len(part.arguments)
            elif isinstance(part, Image):
                chars += 1000
    return chars // 4 + 1


def _filler(size: int) -> str:
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ".split()
    out: list[str] = []
    total = 0
    while total < size:
        word = words[len(out) % len(words)]
        out.append(word)
        total += len(word) + 1
    return " ".join(out)[:size]


def _tool_call(request: Request, name: str | None, payload: str | None, n: int) -> ToolCall:
    tools = [t for t in request.tools or () if isinstance(t, Tool)]
    tool = next((t for t in tools if t.name == name), None) if name else (tools[0] if tools else None)
    if name is None:
        name = tool.name if tool else "mock_tool"
    if payload is None:
        payload = orjson.dumps(_fill_arguments(tool.parameters if tool else None)).decode()
    digest = hashlib.sha256(f"{name}{payload}{n}".encode()).hexdigest()[:24]
    if tool is not None and tool.kind == "custom":
        return ToolCall(id=f"call_{digest}", name=name, arguments=payload, kind="custom")
    return ToolCall(id=f"call_{digest}", name=name, arguments=payload)


def _fill_arguments(schema: object) -> dict[str, object]:
    """Plausible arguments for a JSON schema: every required property gets a value of its type."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties") or {}
    args: dict[str, object] = {}
    for key in schema.get("required") or []:
        spec = props.get(key) if isinstance(props, dict) else None
        kind = spec.get("type") if isinstance(spec, dict) else "string"
        if key in ("command", "cmd"):
            args[key] = "echo mock" if kind != "array" else ["echo", "mock"]
        elif kind in ("integer", "number"):
            args[key] = 1
        elif kind == "boolean":
            args[key] = False
        elif kind == "array":
            args[key] = []
        elif kind == "object":
            args[key] = {}
        else:
            args[key] = "mock"
    return args


def _usage(request: Request, plan: _Plan) -> Usage:
    out = len(plan.text) // 4 + 1 + sum(len(c.arguments) // 4 for c in plan.tool_calls)
    return Usage(input_tokens=_input_tokens(request), output_tokens=out)


def _thinking(request: Request, spec: DialectSpec) -> Part:
    seed = hashlib.sha256(request.model.encode()).hexdigest()[:16]
    if spec.thinking == "encrypted":
        summary = ("Thinking about the request.",)
        return Reasoning(provider="openai", id=f"rs_{seed}", summary=summary, signature=f"mock-enc-{seed}")
    signature = f"mock-signature-{seed}" if spec.thinking == "signed" else None
    if signature is not None and spec.signature_carry is not None:
        signature = encode_carry(spec.signature_carry, {"s": signature})  # as the dialect's codec decodes its own
    return Reasoning(provider="anthropic", text="Thinking about the request.", signature=signature)


def _response(request: Request, plan: _Plan, spec: DialectSpec) -> Response:
    parts: list[Part] = []
    if plan.think:
        parts.append(_thinking(request, spec))
    if plan.text:
        parts.append(Text(text=plan.text))
    parts.extend(plan.tool_calls)
    rid = hashlib.sha256(orjson.dumps([request.model, plan.text])).hexdigest()[:24]
    return Response(
        id=f"mock-{rid}", model=request.model, content=tuple(parts), stop_reason=plan.stop, usage=_usage(request, plan)
    )


def _split(text: str, n: int | None) -> list[str]:
    if n is None:
        words = text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]
    size = max(1, -(-len(text) // max(n, 1)))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _events(request: Request, plan: _Plan, spec: DialectSpec, n_events: int | None) -> list[StreamEvent]:
    usage = _usage(request, plan)
    rid = hashlib.sha256(orjson.dumps([request.model, plan.text])).hexdigest()[:24]
    events: list[StreamEvent] = [
        MessageStart(id=f"mock-{rid}", model=request.model, usage=Usage(input_tokens=usage.input_tokens))
    ]
    index = 0
    if plan.think:
        part = _thinking(request, spec)
        if isinstance(part, Reasoning) and part.provider == "openai":
            events += [
                BlockStart(index=index, kind="reasoning", id=part.id),
                ThinkingDelta(index=index, text=part.summary[0]),
            ]
            events.append(SignatureDelta(index=index, signature=part.signature or ""))
        elif isinstance(part, Reasoning):
            events += [BlockStart(index=index, kind="thinking"), ThinkingDelta(index=index, text=part.text)]
            if part.signature:
                events.append(SignatureDelta(index=index, signature=part.signature))
        events.append(BlockStop(index=index))
        index += 1
    pieces = _split(plan.text, 4 if plan.mid_stream else n_events) if plan.text else []
    if plan.mid_stream is not None:
        pieces = pieces[:2]
    if pieces:
        events.append(BlockStart(index=index, kind="text"))
        events += [TextDelta(index=index, text=piece) for piece in pieces]
        if plan.mid_stream is None:
            events.append(BlockStop(index=index))
        index += 1
    if plan.mid_stream == "fail":
        message = "mock failure in the middle of the stream"
        return events + [StreamError(error=ProxyError(status=500, kind=ErrorKind.OVERLOADED, message=message))]
    if plan.mid_stream == "cut":
        return events
    for call in plan.tool_calls:
        events.append(BlockStart(index=index, kind="tool_call", id=call.id, name=call.name, tool_kind=call.kind))
        half = len(call.arguments) // 2
        events += [ToolArgsDelta(index=index, partial_json=call.arguments[:half])]
        events += [ToolArgsDelta(index=index, partial_json=call.arguments[half:]), BlockStop(index=index)]
        index += 1
    events.append(Finish(stop_reason=plan.stop, usage=usage))
    return events
