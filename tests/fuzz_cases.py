"""The fuzzer's case generator: seeded, reproducible mutations of valid request bodies, per client endpoint.

A case is fully determined by ``(seed, endpoint, index)``: its own ``random.Random`` is seeded with that
string, so any failing case can be rebuilt alone (``python -m tests.fuzz_cases ENDPOINT INDEX``) without
replaying the ones before it. Each case picks a route (translation over a ``mock://`` upstream of any
dialect, with or without prompt edits, or proxy mode with prompt edits and progress), a valid seed body,
then one or more mutations:

- structural: wrong types for any field, missing and null fields, huge and non-finite numbers, deep nesting
  (around orjson's 255-level serialisation limit and its 1024-level parse limit), duplicate keys, enormous
  strings, lone surrogates, unknown roles and block types, tool results for unknown ids, bad base64 images;
- byte-level: invalid UTF-8, truncation, byte flips, a BOM, trailing garbage;
- whole bodies that are not a JSON object at all;
- one-key unions (Gemini parts, Converse blocks) renamed to another member or to none;
- wrong content types, odd model ids in paths (Bedrock, Converse, Gemini), and Gemini's ``?key=`` and
  ``x-goog-api-key`` holding ``SECRET``, which no answer may echo.

Client and backend dialects come from the registry (``llm_proxy.dialects.names()``); per-dialect data (seeds,
model names, where the messages live, error recognisers) is looked up with ``[]``, so a new dialect fails loudly
until it has its entries.

Values the JSON libraries cannot build (64-bit overflow, duplicate keys, invalid UTF-8, nesting deeper than
orjson serialises) are spliced in as ``orjson.Fragment`` bytes.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import quote

import orjson

from llm_proxy.dialects import names
from llm_proxy.framing.carry import encode_carry
from tests.fuzz_seeds import MODEL, PNG, seeds

BEDROCK_MODEL = "us.anthropic.fuzz-v1:0"
"""The model id Bedrock routes serve (with a colon, as real ids have, so the path needs encoding)."""
DIALECTS = names()
"""Every registered dialect is a client and a backend of the fuzz routes: a new one cannot be left out."""
FRONTEND_MODELS = {
    "claude": MODEL,
    "openai-chat": MODEL,
    "openai-responses": MODEL,
    "bedrock": BEDROCK_MODEL,
    "bedrock-converse": BEDROCK_MODEL,
    "gemini": MODEL,
}
"""The model each client dialect names (in its body or its path); a dialect missing here fails with KeyError."""
SECRET = "fuzz-secret-key-5f1d"
"""A credential some cases send (Gemini's ``?key=``, ``x-goog-api-key``): no answer may echo it."""
PROXY_PREFIX = "/proxy"
SYSTEM_REPLACEMENTS = {"lorem": "LOREM", "terse": "brief", "You are": "Thou art"}
SYSTEM_APPEND = "Appended by the fuzz route."


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    dialect: str
    """The client dialect the path implies: the shape every error answer must have."""
    suffix: str
    """The path after the prefix; ``{model}`` is replaced by the (encoded) model id of the client dialect."""

    def path(self, prefix: str, model: str | None = None) -> str:
        """The full path, with ``model`` (default: the dialect's fuzz model) percent-encoded into ``{model}``."""
        encoded = quote(FRONTEND_MODELS[self.dialect], safe="") if model is None else model
        return prefix + self.suffix.replace("{model}", encoded)


ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint("messages", "claude", "/v1/messages"),
        Endpoint("count_tokens", "claude", "/v1/messages/count_tokens"),
        Endpoint("chat", "openai-chat", "/v1/chat/completions"),
        Endpoint("responses", "openai-responses", "/v1/responses"),
        Endpoint("invoke", "bedrock", "/model/{model}/invoke"),
        Endpoint("invoke_stream", "bedrock", "/model/{model}/invoke-with-response-stream"),
        Endpoint("converse", "bedrock-converse", "/model/{model}/converse"),
        Endpoint("converse_stream", "bedrock-converse", "/model/{model}/converse-stream"),
        Endpoint("gemini", "gemini", "/v1beta/models/{model}:generateContent"),
        Endpoint("gemini_stream", "gemini", "/v1beta/models/{model}:streamGenerateContent?alt=sse"),
        Endpoint("gemini_stream_array", "gemini", "/v1/models/{model}:streamGenerateContent"),
        Endpoint("gemini_count", "gemini", "/v1beta/models/{model}:countTokens"),
    )
}


def translation_prefix(client: str, backend: str, edited: bool) -> str:
    return f"/{client}-to-{backend}{'-edited' if edited else ''}"


def fuzz_models() -> list[dict[str, Any]]:
    """The config's ``models``: every client dialect over a mock upstream of every dialect, plus proxy mode."""
    edits: dict[str, Any] = {
        "system_replacements": SYSTEM_REPLACEMENTS,
        "system_append": SYSTEM_APPEND,
        "inject_progress": True,
    }
    models: list[dict[str, Any]] = []
    for client in DIALECTS:
        name = FRONTEND_MODELS[client]
        for backend in DIALECTS:
            for edited in (False, True):
                entry: dict[str, Any] = {
                    "frontend_model_name": name,
                    "frontend_base_url": translation_prefix(client, backend, edited),
                    "backend_model_name": "mock-backend",
                    "backend_base_url": "mock://",
                    "frontend_dialect": client,
                    "backend_dialect": backend,
                }
                models.append({**entry, **edits} if edited else entry)
    for name in (MODEL, BEDROCK_MODEL):
        models.append(
            {"frontend_model_name": name, "frontend_base_url": PROXY_PREFIX, "backend_base_url": "mock://", **edits}
        )
    return models


@dataclass(frozen=True, slots=True)
class Case:
    endpoint: Endpoint
    index: int
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    steps: tuple[str, ...]
    """What was done to the seed, in order: printed when the case fails."""
    sweep: bool = False
    """One of the systematic ``sweep_cases`` rather than a random one."""

    @property
    def name(self) -> str:
        """What ``python -m tests.fuzz_cases`` takes to rebuild the case: ``messages 12`` or ``messages sweep12``."""
        return f"{self.endpoint.name} {'sweep' if self.sweep else ''}{self.index}"

    def describe(self) -> str:
        size = f"{len(self.body)} bytes"
        return f"{self.name}: POST {self.path} ({size}): {'; '.join(self.steps)}"


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

_WORDS = ("", "x", "null", "user", "tool", "text", "image", "0", " ", "\u0000", "é", "🦀", "a" * 300, "v\r\nx-bad: 1")
_NUMBERS = (
    b"0",
    b"-1",
    b"1.5",
    b"-0.0",
    b"1e308",
    b"-1e308",
    b"1e400",
    b"1e-400",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"123456789012345678901234567890",
    b"1E+2",
    b"0.1e1",
)
# Around orjson's serialisation limit (255) and its parse limit (1024).
_DEPTHS = (64, 200, 253, 254, 255, 256, 257, 300, 512, 1000, 1022, 1023, 1024, 1025, 2000)
_ROLES = ("user", "assistant", "system", "developer", "tool", "function", "model", "", "USER", "assistant ", "bot")
_TYPES = (
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "server_tool_use",
    "web_search_tool_result",
    "input_text",
    "output_text",
    "input_image",
    "input_file",
    "image_url",
    "input_audio",
    "refusal",
    "message",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "reasoning",
    "item_reference",
    "function",
    "custom",
    "web_search",
    "json_schema",
    "json_object",
    "base64",
    "url",
    "enabled",
    "disabled",
    "auto",
    "any",
    "tool",
    "none",
    "ephemeral",
    "",
    "no_such_type",
)
_ID_KEYS = frozenset({"id", "tool_use_id", "tool_call_id", "call_id", "previous_response_id", "toolUseId"})
# The one-key unions of Gemini parts and Converse blocks (their ``type``), and keys of neither.
_UNION_KEYS = (
    "text",
    "image",
    "document",
    "video",
    "audio",
    "toolUse",
    "toolResult",
    "reasoningContent",
    "cachePoint",
    "guardContent",
    "citationsContent",
    "searchResult",
    "json",
    "functionCall",
    "functionResponse",
    "inlineData",
    "fileData",
    "executableCode",
    "codeExecutionResult",
    "thought",
    "thoughtSignature",
    "toolSpec",
    "systemTool",
    "reasoningText",
    "redactedContent",
    "bytes",
    "s3Location",
    "auto",
    "any",
    "tool",
    "",
    "no_such_block",
)
_BAD_BASE64 = ("", "!!!!", "iVBORw0KGgo", "====", "a", "ZZZZ" * 3, "data:image/png;base64,", "\u00e9\u00e9", PNG[:-3])
_BAD_MEDIA = ("image/png", "image/bmp", "text/plain", "", "image/", "image/png; charset=x", "application/json")


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """Any JSON value, small."""
    kind = rng.randrange(8 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice((True, False))
    if kind == 2:
        return rng.choice((0, -1, 1, 2**31, -(2**63), 2**64 - 1, 7))
    if kind == 3:
        return rng.choice((0.5, -1e300, 1e-300, 3.14))
    if kind in (4, 5):
        return rng.choice(_WORDS)
    if kind == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(("type", "text", "x", "")): random_value(rng, depth + 1) for _ in range(rng.randrange(3))}


def _other_type(rng: random.Random, value: Any) -> Any:
    """A value whose JSON type differs from ``value``'s."""
    for _ in range(20):
        candidate = random_value(rng)
        if type(candidate) is not type(value) and not (value is None and candidate is None):
            return candidate
    return {"unexpected": [1]}


def deep(rng: random.Random, depth: int) -> orjson.Fragment:
    """Arrays or objects nested ``depth`` levels, around a small leaf."""
    if rng.random() < 0.5:
        return orjson.Fragment(b"[" * depth + b"1" + b"]" * depth)
    return orjson.Fragment(b'{"a":' * depth + b'"x"' + b"}" * depth)


def huge_string(rng: random.Random) -> str:
    return rng.choice(("x", "é", "🦀", "ab\n")) * rng.choice((70_000, 1_000_000, 2_000_000))


# ---------------------------------------------------------------------------------------------
# Walking a document
# ---------------------------------------------------------------------------------------------

Slot = tuple[Any, Any]
"""(container, key or index) of one value in a document."""


def slots(doc: Any) -> list[Slot]:
    """Every value's slot, parents before children (iterative: documents may already be deep)."""
    out: list[Slot] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                out.append((node, key))
                stack.append(value)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                out.append((node, i))
                stack.append(value)
    return out


def _label(slot: Slot) -> str:
    container, key = slot
    return repr(key) if isinstance(container, dict) else f"[{key}]"


def _pick(rng: random.Random, doc: Any, want: Callable[[Slot], bool] | None = None) -> Slot | None:
    found = [s for s in slots(doc) if want is None or want(s)]
    return rng.choice(found) if found else None


def _dicts(root: list[Any]) -> list[dict[str, Any]]:
    return [s[0][s[1]] for s in slots(root) if isinstance(s[0][s[1]], dict)]


# ---------------------------------------------------------------------------------------------
# Structural mutations: each changes the document in place and says what it did. The document is held
# in a one-item list (``root``), so that the whole body is a slot like any other value.
# ---------------------------------------------------------------------------------------------

Mutation = Callable[[random.Random, list[Any], str], str | None]


def m_wrong_type(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    slot = _pick(rng, root)
    if slot is None:
        return None
    container, key = slot
    container[key] = _other_type(rng, container[key])
    return f"wrong type at {_label(slot)}: {orjson.dumps(container[key])[:60]!r}"


def m_delete(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    slot = _pick(rng, root, lambda s: s[0] is not root)
    if slot is None:
        return None
    container, key = slot
    del container[key]
    return f"deleted {_label(slot)}"


def m_null(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    slot = _pick(rng, root)
    if slot is None:
        return None
    container, key = slot
    container[key] = None
    return f"null at {_label(slot)}"


def m_number(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    slot = _pick(rng, root, lambda s: not isinstance(s[0][s[1]], dict | list)) or _pick(rng, root)
    if slot is None:
        return None
    number = rng.choice(_NUMBERS)
    slot[0][slot[1]] = orjson.Fragment(number)
    return f"number {number.decode()} at {_label(slot)}"


def m_deep(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    slot = _pick(rng, root)
    depth = rng.choice(_DEPTHS)
    if slot is None:
        return None
    slot[0][slot[1]] = deep(rng, depth)
    return f"nesting {depth} deep at {_label(slot)}"


def m_duplicate_key(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    slot = _pick(rng, root, lambda s: isinstance(s[0][s[1]], dict) and bool(s[0][s[1]]))
    if slot is None:
        return None
    target = slot[0][slot[1]]
    key = rng.choice(list(target))
    twin = orjson.dumps({key: _other_type(rng, target[key])})[1:-1]
    # The object re-serialised with the twin pair first or last (parsers keep the last one).
    body = orjson.dumps(target)
    spliced = b"{" + twin + b"," + body[1:] if rng.random() < 0.5 else body[:-1] + b"," + twin + b"}"
    slot[0][slot[1]] = orjson.Fragment(spliced)
    return f"duplicate key {key!r} in {_label(slot)}"


def m_huge_string(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    slot = _pick(rng, root, lambda s: isinstance(s[0][s[1]], str)) or _pick(rng, root)
    if slot is None:
        return None
    text = huge_string(rng)
    slot[0][slot[1]] = text
    return f"string of {len(text)} characters at {_label(slot)}"


_ODD_STRINGS = (b'"\\ud800"', b'"\\udc00x"', b'"\\u0000"', b'"a\\ud83e\\udd80b"', b'"\\uDFFF\\uD800"', b'"v\\r\\nx: 1"')
"""Lone surrogates (invalid), NUL, a valid pair, a reversed pair, CR/LF: as JSON escapes, which parsers accept."""


def m_odd_string(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    slot = _pick(rng, root, lambda s: isinstance(s[0][s[1]], str))
    if slot is None:
        return None
    raw = rng.choice(_ODD_STRINGS)
    slot[0][slot[1]] = orjson.Fragment(raw)
    return f"string {raw.decode()} at {_label(slot)}"


def m_beta(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    """Bedrock's ``anthropic_beta`` becomes an HTTP header upstream: values a header cannot hold."""
    doc = root[0]
    if not isinstance(doc, dict):
        return None
    value = rng.choice(("a\r\nx-injected: 1", "a\nb", "\u00e9", "", "a,b", " ", "\u0000", "x" * 10_000))
    beta = rng.choice(([value], [value, "interleaved-thinking-2025-05-14"], value))
    if dialect == "bedrock-converse":  # Converse carries it in the model's own fields
        extra = doc.setdefault("additionalModelRequestFields", {})
        if not isinstance(extra, dict):
            return None
        extra["anthropic_beta"] = beta
    else:
        doc["anthropic_beta"] = beta
    return f"anthropic_beta {beta!r:.60}"


def m_role(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    found = [d for d in _dicts(root) if "role" in d]
    if not found:
        return None
    role = rng.choice(_ROLES)
    rng.choice(found)["role"] = role
    return f"role {role!r}"


def m_type(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    found = [d for d in _dicts(root) if "type" in d]
    if not found:
        return None
    kind = rng.choice(_TYPES)
    rng.choice(found)["type"] = kind
    return f"type {kind!r}"


def m_union_key(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    """A block of a one-key union (Gemini part, Converse block) renamed to another member, or to none."""
    found = [d for d in _dicts(root) if d]
    if not found:
        return None
    target = rng.choice(found)
    old = rng.choice(list(target))
    new = rng.choice(_UNION_KEYS)
    target[new] = target.pop(old)
    return f"key {old!r} renamed {new!r}"


def m_id(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    slot = _pick(rng, root, lambda s: s[1] in _ID_KEYS)
    value: Any = rng.choice(("unknown_id", "", "call_1", "toolu_01", "resp_missing", 5, None))
    if slot is None:
        if not isinstance(root[0], dict):
            return None
        root[0]["previous_response_id" if dialect == "openai-responses" else "id"] = value
        return f"id {value!r} at top level"
    slot[0][slot[1]] = value
    return f"id {value!r} at {_label(slot)}"


_MESSAGES_KEY = {
    "claude": "messages",
    "openai-chat": "messages",
    "openai-responses": "input",
    "bedrock": "messages",
    "bedrock-converse": "messages",
    "gemini": "contents",
}


def _messages(doc: Any, dialect: str) -> list[Any] | None:
    key = _MESSAGES_KEY[dialect]
    found = doc.get(key) if isinstance(doc, dict) else None
    return found if isinstance(found, list) else None


def _turn(dialect: str, role: str, blocks: list[Any]) -> dict[str, Any]:
    """A message of ``role`` holding ``blocks`` (Gemini calls its list ``parts``)."""
    return {"role": role, "parts" if dialect == "gemini" else "content": blocks}


def _tool_result(rng: random.Random, dialect: str, call_id: Any) -> dict[str, Any]:
    if dialect == "gemini":
        response = rng.choice(({"output": "done"}, {"error": "no"}, {}, "done", None, {"x": [1]}))
        part = {
            "functionResponse": {
                "id": call_id,
                "name": rng.choice(("get_weather", "", "nope", 3)),
                "response": response,
            }
        }
        if rng.random() < 0.3:
            del part["functionResponse"]["id"]
        return _turn(dialect, "user", [part])
    if dialect == "bedrock-converse":
        content: Any = rng.choice(([{"text": "done"}], [], [{"json": {"x": 1}}], [{"image": {}}], "done", [{}]))
        status = rng.choice(("success", "error", "", None))
        return _turn(dialect, "user", [{"toolResult": {"toolUseId": call_id, "content": content, "status": status}}])
    if dialect in ("claude", "bedrock"):
        content = rng.choice(("done", [{"type": "text", "text": "done"}], [], [{"type": "image"}]))
        block = {"type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": rng.random() < 0.5}
        return {"role": "user", "content": [block]}
    if dialect == "openai-chat":
        return {"role": "tool", "tool_call_id": call_id, "content": rng.choice(("done", [], [{"type": "text"}]))}
    return {"type": "function_call_output", "call_id": call_id, "output": rng.choice(("done", [], {"x": 1}))}


def m_orphan_tool_result(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    messages = _messages(root[0], dialect)
    if messages is None:
        return None
    call_id = rng.choice(("unknown_call", "", "call_1", "toolu_01", 42, None))
    messages.insert(rng.randrange(len(messages) + 1), _tool_result(rng, dialect, call_id))
    return f"tool result for id {call_id!r}"


def _bad_image(rng: random.Random, dialect: str) -> dict[str, Any]:
    data = rng.choice(_BAD_BASE64)
    media = rng.choice(_BAD_MEDIA)
    if dialect == "gemini":
        return rng.choice(
            (
                {"inlineData": {"mimeType": media, "data": data}},
                {"inlineData": {"data": data}},
                {"fileData": {"mimeType": media, "fileUri": data}},
                {"fileData": {"fileUri": rng.choice(("https://", "http://x/\r\n", "gs://b/o", ""))}},
            )
        )
    if dialect == "bedrock-converse":
        image_format = rng.choice(("png", "jpeg", "bmp", "", "PNG", 5, None))
        where = rng.choice(({"bytes": data}, {"s3Location": {"uri": data}}, {}, data, {"bytes": 5}))
        return {"image": {"format": image_format, "source": where}}
    if dialect in ("claude", "bedrock"):
        source: Any = rng.choice(
            (
                {"type": "base64", "media_type": media, "data": data},
                {"type": "url", "url": data},
                {"type": "base64", "data": data},
                {"type": "file", "file_id": data},
                data,
            )
        )
        return {"type": "image", "source": source}
    url = rng.choice((f"data:{media};base64,{data}", f"data:{media},{data}", "data:", data, f"data:;base64,{data}"))
    if dialect == "openai-chat":
        return {"type": "image_url", "image_url": rng.choice(({"url": url}, url, {"url": None}, {}))}
    return {"type": "input_image", "image_url": url, "detail": rng.choice(("auto", "high", 3))}


def m_bad_image(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    messages = _messages(root[0], dialect)
    if messages is None:
        return None
    image = _bad_image(rng, dialect)
    role = "user" if rng.random() < 0.8 else rng.choice(("assistant", "system", "tool", "model"))
    if dialect in ("gemini", "bedrock-converse"):
        companion: dict[str, Any] = {"text": rng.choice(("", "what?"))}
    else:
        companion = {"type": "input_text" if "source" not in image else "text"}
    messages.append(_turn(dialect, role, [image, companion]))
    return f"image {orjson.dumps(image)[:100]!r} in a {role} turn"


def _carry(rng: random.Random) -> str:
    """A reasoning envelope as the proxy writes them (``llm_proxy.framing.carry``): intact but forged, or broken."""
    kind = rng.choice(("openai-reasoning", "claude-thinking", "gemini-signature", "gemini-foreign", "other"))
    keys = {
        "openai-reasoning": ("id", "enc"),
        "claude-thinking": rng.choice((("t", "s"), ("r",))),
        "gemini-signature": ("s", "a"),
        "gemini-foreign": rng.choice((("t", "s"), ("r",), ("id", "enc"), ("b",))),
        "other": ("x",),
    }
    fields = {key: rng.choice((random_value(rng), "ok")) for key in keys[kind] if rng.random() < 0.8}
    forged = encode_carry(kind, fields)  # the MAC key is public: a client can forge any envelope
    if rng.random() < 0.5:
        return forged
    return rng.choice((forged[:-3], "lpx1.", "lpx1.é.é", "lpx1.abc.def", forged.replace(".", ".é", 1)))


def _reasoning_turn(dialect: str, envelope: str) -> dict[str, Any]:
    """A model turn whose reasoning holds ``envelope`` where the proxy puts its carries for this dialect."""
    if dialect == "gemini":
        return _turn(dialect, "model", [{"text": "t", "thought": True, "thoughtSignature": envelope}])
    if dialect == "bedrock-converse":
        reasoning = {"reasoningContent": {"reasoningText": {"text": "t", "signature": envelope}}}
        return _turn(dialect, "assistant", [reasoning])
    if dialect in ("claude", "bedrock"):
        return {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": envelope}]}
    if dialect == "openai-chat":
        block = {"type": "thinking", "thinking": "t", "signature": envelope}
        return {"role": "assistant", "content": "ok", "thinking_blocks": [block]}
    return {"type": "reasoning", "id": "rs_x", "summary": [], "encrypted_content": envelope}


def m_carry(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    messages = _messages(root[0], dialect)
    if messages is None:
        return None
    envelope = _carry(rng)
    messages.insert(max(len(messages) - 1, 0), _reasoning_turn(dialect, envelope))
    return f"reasoning carry {envelope[:60]!r}"


def m_unknown_key(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    found = _dicts(root)
    if not found:
        return None
    key = rng.choice(("x_unknown", "__proto__", "", "cache_control", "extra_body", "model", "stream"))
    rng.choice(found)[key] = random_value(rng)
    return f"extra key {key!r}"


def m_empty(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    slot = _pick(rng, root, lambda s: isinstance(s[0][s[1]], dict | list))
    if slot is None:
        return None
    slot[0][slot[1]] = rng.choice(([], {}))
    return f"emptied {_label(slot)}"


def m_many(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    slot = _pick(rng, root, lambda s: isinstance(s[0][s[1]], list) and bool(s[0][s[1]]))
    if slot is None:
        return None
    items = [orjson.dumps(item) for item in slot[0][slot[1]]]
    count = rng.choice((100, 2000))
    if sum(len(item) for item in items) * count // len(items) > 4_000_000:
        return None  # many items are the point, not many megabytes
    # Spliced as bytes: repeating the same objects would let a later mutation grow all the copies at once.
    slot[0][slot[1]] = orjson.Fragment(b"[" + b",".join(items[i % len(items)] for i in range(count)) + b"]")
    return f"{count} items at {_label(slot)}"


def m_swap(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    all_slots = slots(root)
    if len(all_slots) < 2:
        return None
    (ca, ka), (cb, kb) = rng.sample(all_slots, 2)
    try:
        copy = orjson.dumps(cb[kb])  # a copy, so a subtree copied under itself makes no cycle
    except orjson.JSONEncodeError:
        return None
    if len(copy) > 20_000:
        return None  # big copies only cost time
    ca[ka] = orjson.Fragment(copy)
    return f"copied {_label((cb, kb))} over {_label((ca, ka))}"


def m_stream(rng: random.Random, root: list[Any], dialect: str) -> str | None:
    doc = root[0]
    if not isinstance(doc, dict):
        return None
    doc["stream"] = rng.choice((True, False, None, "true", 1))
    return f"stream {doc['stream']!r}"


# (mutation, weight)
MUTATIONS: tuple[tuple[Mutation, int], ...] = (
    (m_wrong_type, 20),
    (m_delete, 10),
    (m_null, 8),
    (m_number, 6),
    (m_deep, 4),
    (m_duplicate_key, 4),
    (m_huge_string, 1),
    (m_odd_string, 3),
    (m_beta, 4),
    (m_role, 6),
    (m_type, 8),
    (m_union_key, 6),
    (m_id, 4),
    (m_orphan_tool_result, 4),
    (m_bad_image, 4),
    (m_carry, 4),
    (m_unknown_key, 4),
    (m_empty, 4),
    (m_many, 1),
    (m_swap, 4),
    (m_stream, 4),
)
_MUTATION_FUNCS = [m for m, _ in MUTATIONS]
_MUTATION_WEIGHTS = [w for _, w in MUTATIONS]


# ---------------------------------------------------------------------------------------------
# Byte-level and whole-body cases
# ---------------------------------------------------------------------------------------------

_BAD_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80")


def byte_mutation(rng: random.Random, body: bytes) -> tuple[bytes, str]:
    kind = rng.randrange(6)
    if kind == 0:
        quotes = [i for i in range(min(len(body), 4000)) if body[i] == 0x22]
        at = rng.choice(quotes) + 1 if quotes else 0
        junk = rng.choice(_BAD_UTF8)
        return body[:at] + junk + body[at:], f"invalid UTF-8 {junk!r} at byte {at}"
    if kind == 1:
        at = rng.randrange(len(body) + 1)
        return body[:at], f"truncated at byte {at}"
    if kind == 2:
        at = rng.randrange(max(len(body), 1))
        flipped = bytes([body[at] ^ (1 << rng.randrange(8))]) if body else b""
        return body[:at] + flipped + body[at + 1 :], f"bit flip at byte {at}"
    if kind == 3:
        return b"\xef\xbb\xbf" + body, "UTF-8 BOM"
    if kind == 4:
        tail = rng.choice((b"x", b"}", b"{}", b"\x00", b" \n"))
        return body + tail, f"trailing {tail!r}"
    return body.decode("utf-8", "replace").encode("utf-16"), "UTF-16 body"


_WHOLE_BODIES: tuple[Callable[[random.Random], bytes], ...] = (
    lambda rng: rng.choice((b"", b"null", b"[]", b"1", b'"x"', b"true", b"{", b"}", b"{}", b"NaN", b"<xml/>")),
    lambda rng: b"model=fuzz-model&messages=x",
    lambda rng: rng.choice((b"[", b"{", b'{"a":')) * rng.choice((1000, 5000)),
    lambda rng: b" " * 100_000,
    lambda rng: rng.randbytes(rng.randrange(1, 300)),
    lambda rng: orjson.dumps({"model": MODEL}),
    lambda rng: orjson.dumps({"model": BEDROCK_MODEL, "messages": []}),
    lambda rng: b'{"model":"fuzz-model","messages":[],"x":"' + b"x" * (9 << 20) + b'"}',  # over max_body_size
)


def whole_body(rng: random.Random) -> tuple[bytes, str]:
    body = rng.choice(_WHOLE_BODIES)(rng)
    return body, f"whole body {body[:40]!r} ({len(body)} bytes)"


_CONTENT_TYPES = (
    b"application/json",
    b"application/json; charset=utf-8",
    b"text/plain",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x",
    b"application/json; charset=latin-1",
    b"",
    b"\xff\xfe",
)


def _headers(rng: random.Random, endpoint: Endpoint) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    steps: list[str] = []
    headers: list[tuple[bytes, bytes]] = []
    if rng.random() < 0.85:
        headers.append((b"content-type", b"application/json"))
    else:
        content_type = rng.choice(_CONTENT_TYPES)
        headers.append((b"content-type", content_type))
        steps.append(f"content-type {content_type!r}")
    if endpoint.dialect == "claude":
        headers.append((b"anthropic-version", b"2023-06-01"))
        if rng.random() < 0.2:
            beta = rng.choice((b"interleaved-thinking-2025-05-14", b"", b"a,,b", b"\xff"))
            headers.append((b"anthropic-beta", beta))
            steps.append(f"anthropic-beta {beta!r}")
    if endpoint.dialect == "gemini" and rng.random() < 0.2:
        key = rng.choice((SECRET.encode(), b"", b"\xff" + SECRET.encode()))
        headers.append((b"x-goog-api-key", key))
        steps.append(f"x-goog-api-key {key!r}")
    if rng.random() < 0.3:
        session = rng.choice((b"s-1", b"", b"\xff" * 3, b"x" * 2000))
        headers.append((b"x-session-id", session))
        steps.append(f"x-session-id {session[:20]!r}")
    return headers, steps


_ODD_MODEL_IDS = ("", "unknown", "us.anthropic.fuzz-v1%3A0", "%ff", "a%2Fb", "..", "%2e%2e", "x" * 3000, "%00")


def _query(rng: random.Random, endpoint: Endpoint) -> str:
    """Extra query parameters: a beta flag, and for Gemini a ``key`` (a credential: never echoed) or odd ``alt``."""
    extra = ["beta=true"] if rng.random() < 0.1 else []
    if endpoint.dialect == "gemini" and rng.random() < 0.2:
        extra.append(rng.choice((f"key={SECRET}", f"key={SECRET}&key=other", "alt=json", "alt=", "key=%ff")))
    if not extra:
        return ""
    return ("&" if "?" in endpoint.suffix else "?") + "&".join(extra)


def _path(rng: random.Random, endpoint: Endpoint, prefix: str) -> tuple[str, str | None]:
    """(path, step) for the case; model ids in paths are sometimes odd."""
    query = _query(rng, endpoint)
    if "{model}" not in endpoint.suffix:
        return prefix + endpoint.suffix + query, None
    if rng.random() < 0.03:
        model = rng.choice(_ODD_MODEL_IDS)
        return endpoint.path(prefix, model) + query, f"model id {model[:30]!r} in the path"
    return endpoint.path(prefix) + query, None


def _prefix(rng: random.Random, endpoint: Endpoint) -> tuple[str, str]:
    if rng.random() < 0.3:
        return PROXY_PREFIX, "proxy mode with edits"
    backend = rng.choice(DIALECTS)
    edited = rng.random() < 0.5
    return translation_prefix(endpoint.dialect, backend, edited), f"{endpoint.dialect} -> {backend}" + (
        " with edits" if edited else ""
    )


@cache
def _seed_bodies(dialect: str) -> tuple[list[bytes], list[bytes]]:
    return seeds(dialect)


def _seed(rng: random.Random, endpoint: Endpoint) -> tuple[Any, str]:
    small, captured = _seed_bodies(endpoint.dialect)
    if captured and rng.random() < 0.15:
        i = rng.randrange(len(captured))
        return orjson.loads(captured[i]), f"captured seed {i}"
    i = rng.randrange(len(small))
    return orjson.loads(small[i]), f"seed {i}"


def _mutated_body(rng: random.Random, endpoint: Endpoint, steps: list[str]) -> bytes:
    roll = rng.random()
    if roll < 0.05:
        body, step = whole_body(rng)
        steps.append(step)
        return body
    doc, step = _seed(rng, endpoint)
    steps.append(step)
    count = rng.choice((1, 1, 1, 2, 2, 3, 5))
    root = [doc]
    for mutation in rng.choices(_MUTATION_FUNCS, _MUTATION_WEIGHTS, k=count):
        done = mutation(rng, root, endpoint.dialect)
        if done is not None:
            steps.append(done)
    if rng.random() < 0.03 and isinstance(root[0], dict):
        root[0]["x_deep"] = deep(rng, rng.choice(_DEPTHS))
        steps.append("deep sibling at the top level")
    body = orjson.dumps(root[0])
    if roll > 0.93:
        body, step = byte_mutation(rng, body)
        steps.append(step)
    return body


def make_case(seed: int, endpoint: Endpoint, index: int) -> Case:
    rng = random.Random(f"{seed}/{endpoint.name}/{index}")
    prefix, mode = _prefix(rng, endpoint)
    path, path_step = _path(rng, endpoint, prefix)
    steps = [mode] + ([path_step] if path_step else [])
    headers, header_steps = _headers(rng, endpoint)
    body = _mutated_body(rng, endpoint, steps)
    steps += header_steps
    return Case(endpoint=endpoint, index=index, path=path, headers=headers, body=body, steps=tuple(steps))


# ---------------------------------------------------------------------------------------------
# The sweep: every field of every hand-written seed, deleted or replaced by each kind of value
# ---------------------------------------------------------------------------------------------

_DELETE = object()
SWEEP_VALUES: tuple[tuple[str, Any], ...] = (
    ("deleted", _DELETE),
    ("null", None),
    ("false", False),
    ("0", 0),
    ("-1", -1),
    ('""', ""),
    ("[]", []),
    ("{}", {}),
    ("[{}]", [{}]),
)


def _sweep_route(index: int, endpoint: Endpoint) -> tuple[str, str]:
    """Proxy mode, then each backend plain and edited, in turn."""
    turn = index % (1 + 2 * len(DIALECTS))
    if turn == 0:
        return PROXY_PREFIX, "proxy mode with edits"
    backend, edited = DIALECTS[(turn - 1) // 2], turn % 2 == 0
    return translation_prefix(endpoint.dialect, backend, edited), f"{endpoint.dialect} -> {backend}" + (
        " with edits" if edited else ""
    )


def sweep_cases(endpoint: Endpoint) -> Iterator[Case]:
    """Every slot of every hand-written seed, deleted or replaced by each of ``SWEEP_VALUES`` (deterministic)."""
    small, _ = _seed_bodies(endpoint.dialect)
    index = 0
    for number, raw in enumerate(small):
        for position in range(len(slots([orjson.loads(raw)]))):
            for label, value in SWEEP_VALUES:
                root = [orjson.loads(raw)]
                slot = slots(root)[position]
                if value is _DELETE:
                    if slot[0] is root:
                        continue
                    del slot[0][slot[1]]
                else:
                    slot[0][slot[1]] = value
                prefix, mode = _sweep_route(index, endpoint)
                path = endpoint.path(prefix)
                headers = [(b"content-type", b"application/json")]
                if endpoint.dialect == "claude":
                    headers.append((b"anthropic-version", b"2023-06-01"))
                steps = (mode, f"seed {number}", f"{label} at {_label(slot)} (slot {position})")
                body = orjson.dumps(root[0])
                yield Case(endpoint, index, path, headers, body, steps, sweep=True)
                index += 1


if __name__ == "__main__":  # rebuild one case: python -m tests.fuzz_cases ENDPOINT INDEX|sweepINDEX [SEED]
    name, which = sys.argv[1], sys.argv[2]
    if which.startswith("sweep"):
        case = list(sweep_cases(ENDPOINTS[name]))[int(which[5:])]
    else:
        case = make_case(int(sys.argv[3]) if len(sys.argv) > 3 else 0, ENDPOINTS[name], int(which))
    print(case.describe())
    print(case.headers)
    sys.stdout.buffer.write(case.body[:4000] + b"\n")
