"""What the proxy knows about the ``openai-responses`` dialect (Responses API) without loading its codec."""

from llm_proxy.dialects.base import DialectSpec, Endpoint

SPEC = DialectSpec(
    name="openai-responses",
    endpoints=(Endpoint("/responses"),),
    thinking="encrypted",
    server_side_conversations=True,
)
