"""Session progress: a small per-session record, rendered as a section added to the system prompt.

Long agent sessions (Claude Code, Codex) lose the thread after context compaction. With
``inject_progress: true`` the proxy keeps, per session, a record of what happened and appends a short,
deterministic summary to the system prompt of every request of that session.

The flow for one request (the server wires it)::

    key = session_key(route_id, headers, request)
    text = await tracker.render(key)            # None for a new session (or store down)
    request = prompt.edit_request(request, edit, text)
    await tracker.record_request(key, request)
    observer = ResponseObserver()
    for event in upstream_events: observer.feed(event)   # or observer.feed_response(response)
    await tracker.record_response(key, observer.delta())

The record lives in one hash of the state store (``state.py``), updated with atomic increments so
concurrent requests of one session (or several replicas sharing Redis) lose no counts. It holds counts,
tool names, file paths, the latest todo list and the first request truncated to 200 characters: never
whole prompts or outputs. The rendered text depends only on the record, so it is byte-identical between
requests when nothing changed, and it is at most ``MAX_CHARS`` characters.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from llm_proxy.canonical import (
    BlockStart,
    BlockStop,
    Finish,
    MessageStart,
    Request,
    Response,
    StreamEvent,
    Text,
    ToolArgsDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from llm_proxy.session.store import StateStore, StateUnavailable

log = logging.getLogger("llm_proxy.session.progress")

HEADER = "## Session progress (added by llm-proxy)"
MAX_CHARS = 1500
FIRST_REQUEST_CHARS = 200
MAX_ARGS_BYTES = 64 * 1024
"""Arguments of a watched tool call longer than this are not parsed (the call is still counted)."""
KEY_PREFIX = "llmp:progress:"

# ---------------------------------------------------------------------------------------------
# Session identity
# ---------------------------------------------------------------------------------------------

_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_OLD_CLAUDE_SESSION = re.compile(r"_session_([0-9A-Fa-f-]{8,64})$")


def session_key(route_id: str, headers: Mapping[str, str], request: Request) -> str:
    """The session a request belongs to. ``headers`` has lower-case names. First match wins:

    1. the ``x-session-id`` header (any client can set it);
    2. Claude Code's ``x-claude-code-session-id`` header;
    3. Claude Code's ``metadata.user_id`` (``Request.user``): the ``session_id`` of its JSON form, or the
       ``_session_<uuid>`` suffix of its older ``user_..._account_..._session_<uuid>`` form;
    4. Codex's ``session-id`` header;
    5. the request's ``prompt_cache_key`` (Codex sets it to its session id);
    6. otherwise a hash of the route and the first user message's text (stable for the whole
       conversation, since clients resend the history from the start).

    Ids are shared across routes (one Claude Code session uses several models); only the fallback hash
    includes the route.
    """
    for candidate in (
        headers.get("x-session-id"),
        headers.get("x-claude-code-session-id"),
        _claude_user_session(request.user),
        headers.get("session-id"),
        request.extra.get("prompt_cache_key"),
    ):
        if isinstance(candidate, str) and candidate.strip():
            return _id_key(candidate.strip())
    digest = hashlib.sha256(f"{route_id}\n{_first_user_text(request)}".encode()).hexdigest()
    return f"hash:{digest[:32]}"


def _id_key(value: str) -> str:
    # Client-chosen ids become store keys: odd or long ones are hashed rather than trusted.
    if _SAFE_ID.fullmatch(value):
        return f"id:{value}"
    return f"idh:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


def _claude_user_session(user: str | None) -> str | None:
    if not user:
        return None
    if user.startswith("{"):
        try:
            data = orjson.loads(user)
        except orjson.JSONDecodeError:
            return None
        session = data.get("session_id") if isinstance(data, dict) else None
        return session if isinstance(session, str) else None
    match = _OLD_CLAUDE_SESSION.search(user)
    return match.group(1) if match else None


def _first_user_text(request: Request) -> str:
    for message in request.messages:
        if message.role == "user":
            return "\n".join(part.text for part in message.content if isinstance(part, Text))
    return ""


# ---------------------------------------------------------------------------------------------
# What a request and a response contribute
# ---------------------------------------------------------------------------------------------

_REMINDER_PREFIX = "<system-reminder>"
_EXIT_CODE = re.compile(r"^Process exited with code (-?\d+)$", re.MULTILINE)


def request_text(request: Request) -> str:
    """The user's request, as recorded once per session: the text of the latest user message that has
    text, without Claude Code's ``<system-reminder>`` blocks, whitespace collapsed, at most 200 chars.

    On a session's first request this is what the user typed (Codex and Claude Code send context
    blocks before it; later requests end with tool results instead)."""
    for message in reversed(request.messages):
        if message.role != "user":
            continue
        texts = [part.text for part in message.content if isinstance(part, Text) and part.text.strip()]
        if not texts:
            continue
        kept = [t for t in texts if not t.lstrip().startswith(_REMINDER_PREFIX)] or texts
        return _truncate(" ".join(" ".join(kept).split()), FIRST_REQUEST_CHARS)
    return ""


def failed_tool_results(request: Request) -> int:
    """Failed tool results new in this request: those after the last assistant message.

    (Earlier ones were counted by the request that first carried them.) A result fails when it is
    marked ``is_error`` (Claude), or, unmarked, when its text reports a non-zero
    ``Process exited with code N`` (Codex's shell output)."""
    last_assistant = max((i for i, m in enumerate(request.messages) if m.role == "assistant"), default=-1)
    count = 0
    for message in request.messages[last_assistant + 1 :]:
        for part in message.content:
            if isinstance(part, ToolResult) and _is_failure(part):
                count += 1
    return count


def _is_failure(result: ToolResult) -> bool:
    if result.is_error is not None:
        return result.is_error
    text = "".join(p.text for p in result.content if isinstance(p, Text))[:2000]
    match = _EXIT_CODE.search(text)
    return match is not None and match.group(1) != "0"


@dataclass(frozen=True, slots=True)
class ProgressDelta:
    """What one response adds to the record."""

    input_tokens: int = 0
    """All input: uncached, cache reads and cache writes."""
    output_tokens: int = 0
    tool_calls: tuple[tuple[str, int], ...] = ()
    """(tool name, calls) sorted by name."""
    files: tuple[str, ...] = ()
    """Paths written by edit tools, sorted."""
    todos: tuple[tuple[str, str], ...] | None = None
    """(status, text) of the latest todo list in this response, or None when it set none."""
    stop_reason: str | None = None


_PATH_TOOLS = {"Edit": "file_path", "Write": "file_path", "MultiEdit": "file_path", "NotebookEdit": "notebook_path"}
_PATCH_TOOLS = frozenset({"apply_patch"})
_TODO_TOOLS = {"TodoWrite": ("todos", "content"), "update_plan": ("plan", "step")}
WATCHED_TOOLS = frozenset(_PATH_TOOLS) | _PATCH_TOOLS | frozenset(_TODO_TOOLS)
"""Tools whose arguments are read; other calls are only counted."""

_PATCH_FILE = re.compile(r"^\*\*\* (?:Update File|Add File|Delete File|Move to): (.+?)\s*$", re.MULTILINE)
_MAX_PATH = 300
_MAX_TODOS = 20
_MAX_TODO_TEXT = 120
_STATUSES = {"completed": "completed", "in_progress": "in_progress", "pending": "pending"}


@dataclass(slots=True)
class _Effects:
    files: set[str] = field(default_factory=set)
    todos: tuple[tuple[str, str], ...] | None = None


def _apply_tool(effects: _Effects, name: str, arguments: str) -> None:
    """Record what a watched tool call did: files it writes, or the todo list it sets."""
    parsed = _json_object(arguments)
    if name in _PATH_TOOLS:
        path = parsed.get(_PATH_TOOLS[name]) if parsed is not None else None
        if isinstance(path, str) and 0 < len(path) <= _MAX_PATH:
            effects.files.add(path)
    elif name in _PATCH_TOOLS:
        # Codex: a freeform (custom) tool whose input is the patch, or a function with {"input": patch}.
        patch = arguments if parsed is None else parsed.get("input", parsed.get("patch"))
        if isinstance(patch, str):
            effects.files.update(p for p in _PATCH_FILE.findall(patch) if len(p) <= _MAX_PATH)
    elif name in _TODO_TOOLS and parsed is not None:
        todos = _todos(parsed, *_TODO_TOOLS[name])
        if todos is not None:
            effects.todos = todos


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _todos(arguments: dict[str, Any], list_field: str, text_field: str) -> tuple[tuple[str, str], ...] | None:
    items = arguments.get(list_field)
    if not isinstance(items, list):
        return None
    todos = []
    for item in items[:_MAX_TODOS]:
        if isinstance(item, dict) and isinstance(item.get(text_field), str):
            status = _STATUSES.get(str(item.get("status")), "pending")
            todos.append((status, _truncate(" ".join(item[text_field].split()), _MAX_TODO_TEXT)))
    return tuple(todos)


class ResponseObserver:
    """Watches a response (streamed or not) and produces the ``ProgressDelta`` it adds to the record.

    Text is never buffered: only the arguments of ``WATCHED_TOOLS`` calls are accumulated, up to
    ``MAX_ARGS_BYTES`` each. Feed every canonical stream event in order, or a whole ``Response``.
    """

    def __init__(self) -> None:
        self._calls: dict[str, int] = {}
        self._open: dict[int, tuple[str, list[str], int]] = {}
        """Watched tool blocks being streamed: index -> (name, argument chunks, size so far)."""
        self._skipped: set[int] = set()
        self._effects = _Effects()
        self._usage: Usage | None = None
        self._stop: str | None = None

    def feed(self, event: StreamEvent) -> None:
        if isinstance(event, BlockStart) and event.kind == "tool_call":
            name = event.name or "(unnamed)"
            self._calls[name] = self._calls.get(name, 0) + 1
            if name in WATCHED_TOOLS:
                self._open[event.index] = (name, [], 0)
        elif isinstance(event, ToolArgsDelta) and event.index in self._open:
            self._add_args(event.index, event.partial_json)
        elif isinstance(event, BlockStop) and event.index in self._open:
            name, chunks, _ = self._open.pop(event.index)
            _apply_tool(self._effects, name, "".join(chunks))
        elif isinstance(event, MessageStart) and self._usage is None:
            self._usage = event.usage
        elif isinstance(event, Finish):
            self._usage = event.usage  # cumulative
            self._stop = event.stop_reason.value if event.stop_reason is not None else None

    def feed_response(self, response: Response) -> None:
        for part in response.content:
            if isinstance(part, ToolCall):
                self._calls[part.name] = self._calls.get(part.name, 0) + 1
                if part.name in WATCHED_TOOLS and len(part.arguments) <= MAX_ARGS_BYTES:
                    _apply_tool(self._effects, part.name, part.arguments)
        self._usage = response.usage
        self._stop = response.stop_reason.value if response.stop_reason is not None else None

    def delta(self) -> ProgressDelta:
        usage = self._usage or Usage()
        return ProgressDelta(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.output_tokens,
            tool_calls=tuple(sorted(self._calls.items())),
            files=tuple(sorted(self._effects.files)),
            todos=self._effects.todos,
            stop_reason=self._stop,
        )

    def _add_args(self, index: int, chunk: str) -> None:
        name, chunks, size = self._open[index]
        size += len(chunk)
        if size > MAX_ARGS_BYTES:
            log.debug("progress: arguments of %s over %d chars, not parsed", name, MAX_ARGS_BYTES)
            del self._open[index]
            return
        chunks.append(chunk)
        self._open[index] = (name, chunks, size)


# ---------------------------------------------------------------------------------------------
# The tracker: the record in the store, and its rendering
# ---------------------------------------------------------------------------------------------

_TOOL = "tool:"
_FILE = "file:"


class ProgressTracker:
    """Reads and updates session records in a ``StateStore``; never lets a store failure fail a request.

    Store layout: one hash per session at ``llmp:progress:<session key>`` with fields ``started``,
    ``first``, ``requests``, ``in``, ``out``, ``failed``, ``stop``, ``todos`` (JSON),
    ``tool:<name>`` (counts) and ``file:<path>``. Every write refreshes the TTL.
    """

    def __init__(self, store: StateStore, ttl_s: float, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.failures = 0
        """Store operations that failed (each one meant a request went on without progress)."""
        self._clock = clock
        self._degraded = False

    async def render(self, key: str) -> str | None:
        """The progress section for this session, or None for a new session (or when the store is down)."""
        try:
            record = await self.store.hgetall(KEY_PREFIX + key)
        except StateUnavailable as exc:
            self._failed("read", exc)
            return None
        self._ok()
        return render_record(record) if record else None

    async def record_request(self, key: str, request: Request) -> None:
        incr = {"requests": 1}
        failed = failed_tool_results(request)
        if failed:
            incr["failed"] = failed
        put_if_absent = {"started": _iso(self._clock())}
        first = request_text(request)
        if first:
            put_if_absent["first"] = first
        await self._update(key, incr=incr, put={}, put_if_absent=put_if_absent)

    async def record_response(self, key: str, delta: ProgressDelta) -> None:
        incr = {_TOOL + name: count for name, count in delta.tool_calls}
        if delta.input_tokens:
            incr["in"] = delta.input_tokens
        if delta.output_tokens:
            incr["out"] = delta.output_tokens
        put = {_FILE + path: "1" for path in delta.files}
        if delta.todos is not None:
            put["todos"] = orjson.dumps([list(t) for t in delta.todos]).decode()
        if delta.stop_reason is not None:
            put["stop"] = delta.stop_reason
        if incr or put:
            await self._update(key, incr=incr, put=put, put_if_absent={})

    async def _update(
        self, key: str, *, incr: Mapping[str, int], put: Mapping[str, str], put_if_absent: Mapping[str, str]
    ) -> None:
        try:
            await self.store.hupdate(
                KEY_PREFIX + key, incr=incr, put=put, put_if_absent=put_if_absent, ttl_s=self.ttl_s
            )
        except StateUnavailable as exc:
            self._failed("update", exc)
            return
        self._ok()

    def _failed(self, action: str, exc: StateUnavailable) -> None:
        self.failures += 1
        # One warning per outage, not one per request.
        if not self._degraded:
            log.warning("session progress disabled while the state store is unavailable (%s failed): %s", action, exc)
            self._degraded = True
        else:
            log.debug("session progress %s failed: %s", action, exc)

    def _ok(self) -> None:
        if self._degraded:
            log.info("state store available again: session progress resumed")
            self._degraded = False


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

_MARKS = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]"}
_TOOLS_BUDGET = 300
_FILES_BUDGET = 350
_TODOS_BUDGET = 330
_ITEM_CHARS = 100


def render_record(record: Mapping[str, str]) -> str:
    """The injected text for a stored record: a pure function of it, at most ``MAX_CHARS`` characters."""
    lines = [HEADER]
    started = record.get("started")
    summary = [f"Started: {_truncate(started, 40)}."] if started else []
    summary.append(f"Requests so far: {_int(record.get('requests'))}.")
    summary.append(f"Tokens used: {_int(record.get('in')):,} in, {_int(record.get('out')):,} out.")
    lines.append(" ".join(summary))
    if first := record.get("first"):
        lines.append(f"First request: {_truncate(first, FIRST_REQUEST_CHARS)}")
    tools = sorted(
        (
            (name[len(_TOOL) :], _int(count))
            for name, count in record.items()
            if name.startswith(_TOOL) and name != _TOOL
        ),
        key=lambda item: (-item[1], item[0]),
    )
    if tools:
        items = [f"{_truncate(name, 60)} x{count}" for name, count in tools]
        lines.append(_bounded_line("Tool calls: ", items, _TOOLS_BUDGET))
    files = sorted(name[len(_FILE) :] for name in record if name.startswith(_FILE))
    if files:
        lines.append(_bounded_line("Files touched: ", [_truncate_start(f, _ITEM_CHARS) for f in files], _FILES_BUDGET))
    if failed := _int(record.get("failed")):
        lines.append(f"Failed tool results: {failed}")
    if stop := record.get("stop"):
        lines.append(f"Last stop reason: {_truncate(stop, 40)}")
    lines.extend(_todo_lines(record.get("todos")))
    return _truncate("\n".join(lines), MAX_CHARS)


def _todo_lines(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        todos = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(todos, list) or not todos:
        return []
    valid = [t for t in todos if isinstance(t, list) and len(t) == 2 and all(isinstance(x, str) for x in t)]
    done = sum(1 for status, _ in valid if status == "completed")
    lines = [f"Todo list ({done}/{len(valid)} done):"]
    used = len(lines[0])
    for shown, (status, text) in enumerate(valid):
        line = f"- {_MARKS.get(status, '[ ]')} {_truncate(text, _ITEM_CHARS)}"
        after = len(valid) - shown - 1
        # Keep room for the "(+N more)" line that would follow if the next item does not fit.
        reserve = len(f"- (+{after} more)") + 1 if after else 0
        if used + len(line) + 1 + reserve > _TODOS_BUDGET:
            lines.append(f"- (+{len(valid) - shown} more)")
            break
        lines.append(line)
        used += len(line) + 1
    return lines


def _bounded_line(label: str, items: list[str], budget: int) -> str:
    """``label`` + the items joined by ", ", as many as fit in ``budget`` with a ``(+N more)`` note."""
    for shown in range(len(items), 0, -1):
        line = label + ", ".join(items[:shown])
        if shown < len(items):
            line += f" (+{len(items) - shown} more)"
        if len(line) <= budget:
            return line
    return f"{label}({len(items)})"


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _truncate_start(path: str, limit: int) -> str:
    # A path's end (the file name) says more than its start.
    return path if len(path) <= limit else "…" + path[-(limit - 1) :]
