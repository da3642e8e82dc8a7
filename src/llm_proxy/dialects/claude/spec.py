"""What the proxy knows about the ``claude`` dialect (Anthropic Messages) without loading its codec."""

from llm_proxy.dialects.base import DialectSpec, Endpoint

SPEC = DialectSpec(
    name="claude",
    endpoints=(Endpoint("/messages"), Endpoint("/messages/count_tokens", action="count_tokens")),
    detect_header="anthropic-version",
    thinking="signed",
    count_tokens_path="/v1/messages/count_tokens",
)
