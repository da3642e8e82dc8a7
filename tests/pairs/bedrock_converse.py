"""The pair-matrix driver of ``bedrock-converse``: boto3's ``converse`` and ``converse_stream``.

boto3 signs with its own (fake) credentials for ``us-east-1``; the proxy checks none of it and signs anew
toward an AWS upstream. Stop reasons other than ``tool_use`` and ``max_tokens`` read as ``end_turn``.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config

from tests.pairs import TOOL_DESCRIPTION, TOOL_NAME, TOOL_PARAMETERS, Call, Outcome

_STOPS = {"tool_use": "tool_use", "max_tokens": "max_tokens"}
TOOL_CONFIG = {
    "tools": [
        {"toolSpec": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "inputSchema": {"json": TOOL_PARAMETERS}}}
    ]
}


def _client(base_url: str) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=base_url,
        region_name="us-east-1",
        aws_access_key_id="AKIDPAIRS",
        aws_secret_access_key="pairs-secret",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=30),
    )


def _outcome(content: list[dict[str, Any]], stop: str, usage: dict[str, Any]) -> Outcome:
    calls = tuple(
        Call(id=b["toolUse"]["toolUseId"], name=b["toolUse"]["name"], arguments=b["toolUse"]["input"])
        for b in content
        if "toolUse" in b
    )
    cached = usage.get("cacheReadInputTokens", 0) + usage.get("cacheWriteInputTokens", 0)
    return Outcome(
        text="".join(b.get("text", "") for b in content),
        stop=_STOPS.get(stop, "end_turn"),
        input_tokens=usage.get("inputTokens", 0) + cached,
        output_tokens=usage.get("outputTokens", 0),
        calls=calls,
    )


def _collect(events: Any) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    """A streamed answer as the content blocks, stop reason and usage a whole answer would have."""
    blocks: dict[int, dict[str, Any]] = {}
    stop, usage = "", {}
    for event in events:
        if "contentBlockStart" in event:
            start = event["contentBlockStart"]
            tool = start["start"].get("toolUse")
            if tool:
                blocks[start["contentBlockIndex"]] = {"tool": tool, "input": ""}
        elif "contentBlockDelta" in event:
            delta = event["contentBlockDelta"]
            block = blocks.setdefault(delta["contentBlockIndex"], {"text": ""})
            if "text" in delta["delta"]:
                block["text"] = block.get("text", "") + delta["delta"]["text"]
            elif "toolUse" in delta["delta"]:
                block["input"] += delta["delta"]["toolUse"]["input"]
        elif "messageStop" in event:
            stop = event["messageStop"]["stopReason"]
        elif "metadata" in event:
            usage = event["metadata"]["usage"]
    content: list[dict[str, Any]] = []
    for _, block in sorted(blocks.items()):
        if "tool" in block:
            use = {**block["tool"], "input": json.loads(block["input"] or "{}")}
            content.append({"toolUse": use})
        elif "text" in block:
            content.append({"text": block["text"]})
    return content, stop, usage


class ConverseDriver:
    def _send(self, base_url: str, model: str, messages: list[dict[str, Any]], stream: bool, tool: bool) -> Outcome:
        client = _client(base_url)
        extra: dict[str, Any] = {"toolConfig": TOOL_CONFIG} if tool else {}
        try:
            if not stream:
                answer = client.converse(modelId=model, messages=messages, **extra)
                return _outcome(answer["output"]["message"]["content"], answer["stopReason"], answer["usage"])
            events = client.converse_stream(modelId=model, messages=messages, **extra)["stream"]
            try:
                return _outcome(*_collect(events))
            finally:
                events.close()
        finally:
            client.close()

    def ask(self, base_url: str, model: str, prompt: str, *, stream: bool, tool: bool) -> Outcome:
        return self._send(base_url, model, [{"role": "user", "content": [{"text": prompt}]}], stream, tool)

    def answer_tool(
        self, base_url: str, model: str, prompt: str, first: Outcome, result: str, *, stream: bool
    ) -> Outcome:
        assistant: list[dict[str, Any]] = [{"text": first.text}] if first.text else []
        assistant += [{"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.arguments}} for c in first.calls]
        answer = {"toolResult": {"toolUseId": first.calls[0].id, "content": [{"text": result}]}}
        messages = [
            {"role": "user", "content": [{"text": prompt}]},
            {"role": "assistant", "content": assistant},
            {"role": "user", "content": [answer]},
        ]
        return self._send(base_url, model, messages, stream, tool=True)


DRIVER = ConverseDriver()
