"""The README's client examples, run against the demo config (so the README cannot drift)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from llm_proxy.config import load_config
from tests.e2e.test_readme_recipes import readme_recipe
from tests.servers import ServerThread, running_proxy, sdk_anthropic, sdk_openai

DEMO = Path(__file__).resolve().parents[1] / "config" / "demo.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    copy = tmp_path_factory.mktemp("demo") / DEMO.name  # its usage ledger (usage.db beside it) goes there too
    shutil.copy(DEMO, copy)
    with running_proxy(load_config(copy)) as proxy:
        yield proxy


def test_openai_sdk_example(demo: ServerThread) -> None:
    client = sdk_openai(base_url=f"{demo.url}/openai/v1", api_key="anything-or-your-key")
    reply = client.chat.completions.create(model="gpt-demo", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "mock reply: hi"


def test_anthropic_sdk_example(demo: ServerThread) -> None:
    client = sdk_anthropic(base_url=f"{demo.url}/claude", api_key="anything-or-your-key")
    reply = client.messages.create(model="claude-demo", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert reply.content[0].text == "mock reply: hi"


def test_codex_route_speaks_responses(demo: ServerThread) -> None:
    client = sdk_openai(base_url=f"{demo.url}/codex/v1", api_key="dummy")
    assert client.responses.create(model="gpt-test", input="hi").output_text == "mock reply: hi"


def test_boto3_example(demo: ServerThread, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.client(
        "bedrock-runtime",
        endpoint_url=f"{demo.url}/bedrock",
        region_name="us-east-1",
        aws_access_key_id="any",
        aws_secret_access_key="any",
    )
    try:
        reply = client.invoke_model(
            modelId="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            body=json.dumps(
                {
                    "anthropic_version": "bedrock-2023-05-31",
                    "max_tokens": 512,
                    "messages": [{"role": "user", "content": "Hello"}],
                }
            ),
        )
        assert json.loads(reply["body"].read())["content"][0]["text"] == "mock reply: Hello"
    finally:
        client.close()


def test_boto3_converse_readme_recipe(
    demo: ServerThread, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's ``**boto3 Converse**`` Python block, run as printed (only the port differs)."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    [code] = readme_recipe("boto3 Converse").blocks["python"]
    namespace: dict[str, Any] = {}
    try:
        exec(compile(code.replace("localhost:8080", demo.url.removeprefix("http://")), "README.md", "exec"), namespace)
    finally:
        if "client" in namespace:
            namespace["client"].close()
    assert capsys.readouterr().out == "mock reply: Hello end_turn True\nmock reply: Stream it\n"


def test_google_genai_example(demo: ServerThread, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's google-genai block itself, run against the demo proxy."""
    readme = (DEMO.parents[1] / "README.md").read_text()
    section = readme[readme.index("\n**google-genai**") :]
    code = section[section.index("```python\n") + 10 : section.index("\n```", section.index("```python\n"))]
    exec(compile(code.replace("http://localhost:8080", demo.url), "README.md", "exec"), {})  # noqa: S102
    assert capsys.readouterr().out == "mock reply: hi\n"
