"""What the proxy knows about the ``openai-chat`` dialect (Chat Completions) without loading its codec."""

from llm_proxy.dialects.base import DialectSpec, Endpoint

SPEC = DialectSpec(name="openai-chat", endpoints=(Endpoint("/chat/completions"),))
