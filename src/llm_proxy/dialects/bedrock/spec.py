"""What the proxy knows about the ``bedrock`` dialect (InvokeModel) without loading its codec or botocore."""

from llm_proxy.dialects.base import DialectSpec, Endpoint

SPEC = DialectSpec(
    name="bedrock",
    endpoints=(
        Endpoint("/model/{model}/invoke", versioned=False),
        Endpoint("/model/{model}/invoke-with-response-stream", streaming=True, versioned=False),
    ),
    sigv4=True,
    thinking="signed",
)
