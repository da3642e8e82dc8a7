"""The ``bedrock`` client: boto3's bedrock-runtime ``invoke_model`` and ``invoke_model_with_response_stream``.

The bodies are Anthropic Messages documents (``anthropic_version: bedrock-2023-05-31``), so they are built and
read with the Claude driver's functions. boto3 signs with its own dummy keys; the proxy does not check them.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from tests.pairs import Clients, Outcome
from tests.pairs.claude import MAX_TOKENS, TOOLS, MessagesStream, first_turn, message_outcome, tool_turns

ANTHROPIC_VERSION = "bedrock-2023-05-31"


def _client(base_url: str) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=base_url,
        region_name="us-east-1",
        aws_access_key_id="AKIDPAIRCLIENT",
        aws_secret_access_key="pair-client-secret",
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=20),
    )


class BedrockDriver:
    def __init__(self) -> None:
        self._clients: Clients[Any] = Clients(_client, lambda client: client.close())

    def close(self) -> None:
        self._clients.close()

    def ask(self, base_url: str, model: str, prompt: str, *, stream: bool, tool: bool) -> Outcome:
        return self._invoke(base_url, model, first_turn(prompt), stream=stream, tool=tool)

    def answer_tool(
        self, base_url: str, model: str, prompt: str, first: Outcome, result: str, *, stream: bool
    ) -> Outcome:
        return self._invoke(base_url, model, tool_turns(prompt, first, result), stream=stream, tool=True)

    def _invoke(self, base_url: str, model: str, turns: list[Any], *, stream: bool, tool: bool) -> Outcome:
        client = self._clients.get(base_url)
        doc: dict[str, Any] = {"anthropic_version": ANTHROPIC_VERSION, "max_tokens": MAX_TOKENS, "messages": turns}
        if tool:
            doc["tools"] = TOOLS
        body = json.dumps(doc).encode()
        kwargs = {"modelId": model, "body": body, "contentType": "application/json", "accept": "application/json"}
        if not stream:
            result = client.invoke_model(**kwargs)
            return message_outcome(json.loads(result["body"].read()))
        result = client.invoke_model_with_response_stream(**kwargs)
        reader = MessagesStream()
        events = result["body"]
        try:
            for event in events:
                reader.feed(json.loads(event["chunk"]["bytes"]))
        finally:
            events.close()
        return reader.outcome()


DRIVER = BedrockDriver()
