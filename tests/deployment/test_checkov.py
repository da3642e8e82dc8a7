"""checkov (static analysis of IaC) passes over the Dockerfile and deploy/, and every skip says why, inline.

checkov's dependencies clash with the project's dev extras, so it lives in a virtualenv of its own under
``.cache/checkov`` (made on first use, about 90 s; later runs reuse it). It runs with ``--skip-download`` and,
where ``unshare`` allows, in a network namespace with nothing in it: its reports need nothing from outside.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deployment.files import CACHE, DOCKERFILE, KUBERNETES, REPO, load_yaml_documents

CHECKOV_VERSION = "3.3.30"
VENV = CACHE / "checkov"


@pytest.fixture(scope="module")
def checkov() -> list[str]:
    """The command that runs checkov (installed into its own venv when missing or of another version)."""
    binary = VENV / "bin" / "checkov"
    marker = VENV / f"checkov-{CHECKOV_VERSION}.installed"
    if not marker.exists():
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=120)
        install = subprocess.run(
            [str(VENV / "bin" / "pip"), "install", "-q", f"checkov=={CHECKOV_VERSION}"],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert install.returncode == 0, f"pip install checkov=={CHECKOV_VERSION} failed:\n{install.stderr[-3000:]}"
        marker.touch()
    isolate = _isolation()
    return [*isolate, str(binary), "--skip-download", "--compact", "--output", "json"]


def _isolation() -> list[str]:
    """``unshare -n`` when this user may make a network namespace (root here and in CI), else nothing."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, timeout=10, check=False)
    return [unshare, "-n"] if probe.returncode == 0 else []


def _reports(command: list[str], *target: str) -> list[dict[str, Any]]:
    result = subprocess.run([*command, *target], cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert result.stdout.strip(), f"checkov printed no report:\n{result.stderr[-3000:]}"
    parsed = json.loads(result.stdout)
    reports: list[dict[str, Any]] = parsed if isinstance(parsed, list) else [parsed]
    return reports


def _check_clean(reports: list[dict[str, Any]]) -> set[str]:
    """Assert no failure, no parsing error and a reason on every skip; return the files checkov looked at."""
    seen: set[str] = set()
    for report in reports:
        results, summary = report["results"], report["summary"]
        failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in results["failed_checks"]]
        assert failed == [], f"{report['check_type']}: checks failed: {failed}"
        assert summary["parsing_errors"] == 0, f"{report['check_type']}: parsing errors"
        for skipped in results["skipped_checks"]:
            reason = skipped["check_result"].get("suppress_comment") or ""
            assert reason.strip(), f"{skipped['check_id']} on {skipped['resource']} is skipped without a reason"
        for kind in ("passed_checks", "skipped_checks"):
            seen.update(c["file_path"] for c in results[kind])
    return seen


def test_dockerfile_is_clean(checkov: list[str]) -> None:
    reports = _reports(checkov, "--framework", "dockerfile", "--file", str(DOCKERFILE.relative_to(REPO)))
    assert [r["check_type"] for r in reports] == ["dockerfile"]
    assert reports[0]["summary"]["passed"] > 50
    assert any(path.endswith("Dockerfile") for path in _check_clean(reports))


def test_kubernetes_manifests_are_clean(checkov: list[str]) -> None:
    reports = _reports(checkov, "--framework", "kubernetes", "kustomize", "secrets", "--directory", "deploy")
    seen = {Path(path).name for path in _check_clean(reports)}
    # checkov drops a manifest it cannot parse without saying so in its summary: every file with a workload or a
    # Service must show up among the checked ones.
    checked_kinds = {"Deployment", "Service"}
    expected = {
        path.name
        for path in KUBERNETES.rglob("*.yaml")
        if any(isinstance(doc, dict) and doc.get("kind") in checked_kinds for doc in load_yaml_documents(path))
    }
    assert expected == {"deployment.yaml", "service.yaml", "redis.yaml"}
    assert expected <= seen
    if shutil.which("kubectl"):  # checkov renders the kustomizations with it: the deployed objects are checked too
        assert "kustomize" in {r["check_type"] for r in reports}
