"""Reading the deployment files as data: the Dockerfile's instructions, the Kubernetes manifests, the proxy config.

Both the static checks and the container test read the image's facts (port, config path, user, probe client)
from here, so a change to the Dockerfile is seen by every test that depends on it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
KUBERNETES = REPO / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAY = KUBERNETES / "overlays" / "example"
CACHE = REPO / ".cache"
"""Work-tree cache (gitignored): the checkov venv, the debootstrap base, dockerd's data."""


def require_system(binary: str, install: str) -> str:
    """The path of ``binary``; without it, skip on a developer's machine, fail when ``CI`` is set."""
    path = shutil.which(binary)
    if path is None:
        message = f"{binary} is not installed: {install}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    """Upper case: FROM, RUN, CMD, ..."""
    text: str
    """The rest of the instruction, continuation lines joined."""

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form CMD/ENTRYPOINT (or the CMD of a HEALTHCHECK)."""
        start = self.text.index("[")
        words: list[str] = json.loads(self.text[start:])
        return words


def dockerfile() -> list[Instruction]:
    """The Dockerfile's instructions in order, without comments (enough for the checks here, not a full parser)."""
    instructions: list[Instruction] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, text = whole.partition(" ")
        instructions.append(Instruction(keyword.upper(), text.strip()))
    return instructions


def final_stage() -> list[Instruction]:
    """The instructions of the runtime stage (after the last FROM)."""
    steps = dockerfile()
    last_from = max(i for i, step in enumerate(steps) if step.keyword == "FROM")
    return steps[last_from + 1 :]


def one(steps: list[Instruction], keyword: str) -> Instruction:
    found = [step for step in steps if step.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the runtime stage, found {len(found)}"
    return found[0]


def flag(words: list[str], name: str) -> str:
    """The value following ``name`` in a command line."""
    assert name in words, f"{name} missing from {words}"
    return words[words.index(name) + 1]


def load_yaml_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifests(directory: Path) -> list[dict[str, Any]]:
    """Every Kubernetes object listed as a resource by the kustomization in ``directory`` (not generated ones)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        path = directory / resource
        if path.is_dir():
            objects.extend(manifests(path))
        else:
            objects.extend(load_yaml_documents(path))
    return objects


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    found = [c for c in containers if c["name"] == name]
    assert len(found) == 1, f"expected one container {name!r}"
    return found[0]


def port_number(container_spec: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port, resolved through the container's named ports."""
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container_spec["ports"] if p.get("name") == port]
    assert len(numbers) == 1, f"no container port named {port!r}"
    number: int = numbers[0]
    return number
