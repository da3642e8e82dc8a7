"""The dialect-neutral representation of requests, responses, stream events and errors.

Every dialect codec decodes its wire format into these types and encodes them back. The model is a
*superset* of the four dialects, not any one vendor's wire format:

* content parts are tagged (``part_kind``), frozen types: text, image, tool call, tool result,
  reasoning (Claude thinking, redacted thinking or an OpenAI reasoning item, with its provider and
  signature), refusal, and ``Opaque`` for blocks that have no canonical field;
* anything a dialect carries that has no canonical field is kept in an ``extra`` mapping, keyed by
  the wire field name, so that decoding and re-encoding into the same dialect gives back an equal
  document; a codec for a *different* dialect ignores ``extra`` of foreign origin (and logs what it
  dropped at debug level);
* the stream model follows the richest of the four (Anthropic's block model): a message start, then
  numbered blocks that start, receive deltas and stop, then one finish and an end. Every dialect's
  stream decodes into it and is encoded from it, so N dialects need N codecs, never N x N.

Stop reasons, usage and error kinds are canonical enumerations; each codec maps them once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeAlias, get_args

JSON: TypeAlias = Any
"""A value decoded from JSON (dict, list, str, int, float, bool or None)."""

Extra: TypeAlias = dict[str, JSON]
"""Wire fields with no canonical equivalent, kept for a lossless round trip into the same dialect."""

Native: TypeAlias = Mapping[str, JSON]
"""How the wire wrote a field whose canonical value is the same either way: wire field -> its form.

The forms are ``"string"`` (a bare string where a list of parts may stand), ``"list"``, ``"null"`` and
``"absent"``. Only a form that differs from the field's usual one is recorded (each class says which is
usual), so objects built by the proxy carry none. The string/list shape is shared by every dialect's
string-or-list fields, so every encoder may follow it; the others only mean something to the dialect
that recorded them (the request's ``origin``).
"""

# ---------------------------------------------------------------------------------------------
# Content parts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Text:
    part_kind: ClassVar[str] = "text"
    text: str
    cache_control: JSON = None
    """Anthropic ``cache_control`` marker (``{"type": "ephemeral", ...}``) or None."""
    extra: Extra = field(default_factory=dict)
    """E.g. ``citations`` (claude) or ``annotations`` (responses ``output_text``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    """An image, either inline (``data`` is base64, ``media_type`` set) or by ``url``."""

    part_kind: ClassVar[str] = "image"
    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    detail: str | None = None
    """OpenAI's ``detail`` hint (``auto``/``low``/``high``)."""
    cache_control: JSON = None
    extra: Extra = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A model's call of a tool.

    ``arguments`` is the raw JSON text as the model produced it (OpenAI keeps a string, Anthropic an
    object; both convert losslessly to this). It may be invalid JSON: codecs that need an object must
    handle that without crashing (see ``docs/translation.md``).
    """

    part_kind: ClassVar[str] = "tool_call"
    id: str
    name: str
    arguments: str
    kind: Literal["function", "custom"] = "function"
    """``custom`` is the Responses API's freeform tool call, whose ``arguments`` is the raw input text."""
    item_id: str | None = None
    """Responses ``function_call`` item id (``fc_...``), distinct from the call id."""
    cache_control: JSON = None
    extra: Extra = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult:
    """The result of a tool call, sent back by the client."""

    part_kind: ClassVar[str] = "tool_result"
    call_id: str
    content: tuple[Text | Image | Opaque, ...]
    is_error: bool | None = None
    native: Native = field(default_factory=dict)
    """``{"content": "list"}`` when the wire content was a list; unrecorded, all-text content is a bare string."""
    kind: Literal["function", "custom"] = "function"
    cache_control: JSON = None
    extra: Extra = field(default_factory=dict)


Provider = Literal["anthropic", "openai"]
"""Whose model reasoned: only that vendor can verify the reasoning's signature."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reasoning:
    """A model's reasoning, as either vendor family gives it; it must come back unmodified.

    * ``provider="anthropic"``: a Claude ``thinking`` block (``text`` and its ``signature``), or a
      ``redacted_thinking`` block (``redacted`` holds its data, ``text`` is empty);
    * ``provider="openai"``: a Responses ``reasoning`` item (``id``, ``summary``, the optional full
      text in ``content``, and its ``encrypted_content`` as the ``signature``).

    The signature is what the provider verifies; across vendors it rides in a carry envelope
    (``llm_proxy.framing.carry``), see ``docs/translation.md``.
    """

    part_kind: ClassVar[str] = "reasoning"
    provider: Provider
    text: str = ""
    summary: tuple[str, ...] = ()
    content: tuple[str, ...] | None = None
    signature: str | None = None
    redacted: str | None = None
    id: str | None = None
    extra: Extra = field(default_factory=dict)

    @property
    def is_thinking(self) -> bool:
        """A Claude thinking block (signed or not), not a redacted one."""
        return self.provider == "anthropic" and self.redacted is None

    @property
    def is_redacted(self) -> bool:
        """A Claude ``redacted_thinking`` block."""
        return self.redacted is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    part_kind: ClassVar[str] = "refusal"
    text: str
    extra: Extra = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Opaque:
    """A block with no canonical meaning (documents, server-tool blocks, audio, files, ...).

    Forwarded unchanged when encoding into a dialect listed in ``dialects`` (the family that can
    read it), dropped with a debug log otherwise.
    """

    part_kind: ClassVar[str] = "opaque"
    dialects: frozenset[str]
    raw: JSON


Part: TypeAlias = Text | Image | ToolCall | ToolResult | Reasoning | Refusal | Opaque

PART_TYPES: Mapping[str, type[Part]] = {cls.part_kind: cls for cls in get_args(Part)}
"""Every part class by its ``part_kind`` tag: the one list of part types (the store's serialiser reads it)."""

Role = Literal["system", "developer", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One conversation turn.

    ``role="tool"`` holds exactly one ``ToolResult`` (OpenAI Chat's tool message); Anthropic puts tool
    results in ``user`` turns instead. Encoders convert between the two shapes; decoders keep the
    shape they saw so a same-dialect round trip is exact.
    """

    role: Role
    content: tuple[Part, ...]
    native: Native = field(default_factory=dict)
    """``{"content": form}`` when the wire content was not a list: ``"string"``, or ``"null"`` and ``"absent"``
    (OpenAI Chat assistant messages with only tool calls)."""
    name: str | None = None
    extra: Extra = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Request
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    name: str
    description: str | None = None
    parameters: JSON = None
    """JSON schema of the arguments (``parameters`` / ``input_schema``); None if the wire had none."""
    strict: bool | None = None
    kind: Literal["function", "custom"] = "function"
    """``custom``: the Responses API's freeform tool (``format`` kept in ``extra``)."""
    cache_control: JSON = None
    extra: Extra = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class HostedTool:
    """A tool run by the vendor (web search, code execution, ...): only meaningful in its own family."""

    dialects: frozenset[str]
    raw: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolChoice:
    mode: Literal["auto", "required", "none", "tool"]
    name: str | None = None
    """The tool's name when ``mode == "tool"``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReasoningConfig:
    """Extended thinking / reasoning effort, in whichever form the client gave it.

    ``effort`` uses OpenAI's scale (none, minimal, low, medium, high, xhigh, max); ``budget_tokens``
    Anthropic's. ``mode`` is Anthropic's thinking type when the client is a Claude client.
    The mapping between them is documented in ``docs/translation.md``.
    """

    mode: Literal["enabled", "adaptive", "disabled"] | None = None
    budget_tokens: int | None = None
    effort: str | None = None
    summary: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseFormat:
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema: JSON = None
    strict: bool | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    model: str
    messages: tuple[Message, ...]
    system: tuple[Text, ...] | None = None
    """The top-level system prompt (Anthropic ``system``, Responses ``instructions``)."""
    tools: tuple[Tool | HostedTool, ...] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] | None = None
    stream: bool = False
    include_usage: bool | None = None
    """OpenAI ``stream_options.include_usage``."""
    reasoning: ReasoningConfig | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    """End-user id (OpenAI ``user``, Anthropic ``metadata.user_id``)."""
    metadata: dict[str, JSON] | None = None
    n: int | None = None
    seed: int | None = None
    store: bool | None = None
    previous_response_id: str | None = None
    extra: Extra = field(default_factory=dict)
    """Top-level wire fields without a canonical equivalent (see module docstring)."""
    native: Native = field(default_factory=dict)
    """``{"system": "list"}`` when the system prompt was a list of blocks (usually a bare string),
    ``{"stop": "string"}`` when the stop sequences were one bare string (usually a list), ``{"input":
    "string" | "absent"}`` for a Responses ``input`` that was a bare string or left out."""
    origin: str = ""
    """The dialect the request was decoded from: encoders keep ``extra`` only for that dialect."""


# ---------------------------------------------------------------------------------------------
# Response
# ---------------------------------------------------------------------------------------------


class StopReason(StrEnum):
    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    TOOL_USE = "tool_use"
    PAUSE_TURN = "pause_turn"
    REFUSAL = "refusal"
    CONTENT_FILTER = "content_filter"
    CONTEXT_WINDOW_EXCEEDED = "model_context_window_exceeded"


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token usage. ``input_tokens`` EXCLUDES cache reads and writes (Anthropic's convention)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    """Part of ``output_tokens``."""

    @property
    def prompt_tokens(self) -> int:
        """OpenAI's ``prompt_tokens``: all input, cached included."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    id: str
    model: str
    content: tuple[Part, ...]
    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    created: int | None = None
    extra: Extra = field(default_factory=dict)
    origin: str = ""


# ---------------------------------------------------------------------------------------------
# Stream events
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStart:
    id: str
    model: str
    usage: Usage = field(default_factory=Usage)
    created: int | None = None


BlockKind = Literal["text", "tool_call", "thinking", "redacted_thinking", "reasoning", "refusal", "opaque"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockStart:
    """A content block opens. ``index`` increases by one per block within a message.

    For ``tool_call``: ``id``, ``name`` (and ``tool_kind``). For ``redacted_thinking``: ``data``.
    For ``reasoning``: ``id`` (Responses item id). For ``opaque``: ``raw``.
    """

    index: int
    kind: BlockKind
    id: str | None = None
    name: str | None = None
    tool_kind: Literal["function", "custom"] = "function"
    data: str | None = None
    raw: JSON = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta:
    index: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolArgsDelta:
    index: int
    partial_json: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ThinkingDelta:
    """Thinking text (claude) or reasoning summary/text (responses)."""

    index: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SignatureDelta:
    """Claude thinking signature, or a Responses reasoning item's ``encrypted_content``."""

    index: int
    signature: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockStop:
    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Finish:
    """The message is complete: stop reason and cumulative usage. Exactly one per stream."""

    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamError:
    """The stream failed after it started (upstream error event, or the upstream cut it short)."""

    error: ProxyError


StreamEvent: TypeAlias = (
    MessageStart
    | BlockStart
    | TextDelta
    | ToolArgsDelta
    | ThinkingDelta
    | SignatureDelta
    | BlockStop
    | Finish
    | StreamError
)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class ErrorKind(StrEnum):
    """Canonical error categories; each dialect maps them to its own types and statuses."""

    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    BILLING = "billing"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    REQUEST_TOO_LARGE = "request_too_large"
    CONTEXT_LENGTH = "context_length"
    RATE_LIMIT = "rate_limit"
    BUDGET = "budget"
    """A spending budget is used up (the proxy's own client key budgets): 429 until it resets."""
    API_ERROR = "api_error"
    OVERLOADED = "overloaded"
    TIMEOUT = "timeout"
    UPSTREAM_UNREACHABLE = "upstream_unreachable"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyError:
    """An error to show the client: an HTTP status, a kind, a message (never a secret)."""

    status: int
    kind: ErrorKind
    message: str
    param: str | None = None
    code: str | None = None
    """The upstream's own machine-readable code when it had one (e.g. OpenAI's ``rate_limit_exceeded``)."""
    retry_after: str | None = None
