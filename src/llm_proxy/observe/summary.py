"""What a proxy-mode JSON answer says about itself: model, token usage, stop reason, and nothing more.

Proxy mode relays answers untouched, but metrics, the access line and the span want their usage. Decoding the
whole answer (``Dialect.decode_response``: every content part) cost more than the rest of the proxy's
per-request observability together, so when nothing else needs the content (no session progress), only these
fields are read, with each dialect's own usage and stop-reason readers.
"""

from __future__ import annotations

from typing import Any

from llm_proxy.canonical import Response, StopReason, Usage


def summarize(dialect: str, doc: Any) -> Response | None:
    """A ``Response`` without content for the answer ``doc`` in ``dialect``; None when it is not one."""
    if not isinstance(doc, dict):
        return None
    model = doc.get("model")
    usage: Usage
    stop: StopReason | None
    if dialect == "openai-chat":
        from llm_proxy.dialects.openai_chat.response import decode_stop_reason, decode_usage

        choices = doc.get("choices")
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        usage, stop = decode_usage(doc.get("usage")), decode_stop_reason(first.get("finish_reason"))
    elif dialect == "openai-responses":
        from llm_proxy.dialects.openai_responses.output import decode_stop_reason as responses_stop
        from llm_proxy.dialects.openai_responses.output import decode_usage as responses_usage

        output = doc.get("output")
        calls = isinstance(output, list) and any(
            isinstance(i, dict) and i.get("type") == "function_call" for i in output
        )
        usage = responses_usage(doc.get("usage"))
        stop = responses_stop(doc.get("status"), doc.get("incomplete_details"), calls)
    elif dialect in ("claude", "bedrock"):  # Bedrock's invoke answers are Anthropic Messages
        from llm_proxy.dialects.claude.response import decode_stop_reason as claude_stop
        from llm_proxy.dialects.claude.response import merge_usage

        usage, stop = merge_usage(Usage(), doc.get("usage")), claude_stop(doc.get("stop_reason"))
    else:
        return None
    return Response(id="", model=model if isinstance(model, str) else "", content=(), stop_reason=stop, usage=usage)
