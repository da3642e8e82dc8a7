"""The Dockerfile and the Kubernetes manifests agree with each other and with the proxy.

Ports, probe paths, the config path, the user and the grace periods are stated in several files; these tests
read every one of them (and the config defaults in ``llm_proxy.config``) and fail on the first disagreement.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from llm_proxy.app.server import ProxyApp
from llm_proxy.config import ServerConfig, load_config
from tests.deployment.files import (
    BASE,
    KUBERNETES,
    OVERLAY,
    REPO,
    container,
    dockerfile,
    final_stage,
    find,
    flag,
    load_yaml_documents,
    manifests,
    one,
    port_number,
    require_system,
)
from tests.test_readyz import get, lifespan

KEYS = {"OPENAI_API_KEY": "sk-test"}


def _version() -> str:
    project: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return str(project["version"])


def _image_command() -> list[str]:
    steps = final_stage()
    return one(steps, "ENTRYPOINT").exec_form() + one(steps, "CMD").exec_form()


def _image_port() -> int:
    return int(one(final_stage(), "EXPOSE").text)


def _proxy_deployment() -> dict[str, Any]:
    return find(manifests(BASE), "Deployment", "llm-proxy")


def _config_volume(deployment: dict[str, Any]) -> tuple[str, str]:
    """(mount path, ConfigMap name) of the volume that holds the proxy's config."""
    spec = deployment["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in container(deployment, "llm-proxy")["volumeMounts"]}
    maps = [(v["name"], v["configMap"]["name"]) for v in spec["volumes"] if "configMap" in v]
    assert len(maps) == 1, "one ConfigMap volume: the config"
    volume, config_map = maps[0]
    return mounts[volume], config_map


def _base_config_file() -> Path:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    generators = {g["name"]: g["files"] for g in kustomization["configMapGenerator"]}
    _, config_map = _config_volume(_proxy_deployment())
    (file,) = generators[config_map]
    return BASE / str(file)


def test_every_manifest_parses_and_names_itself() -> None:
    files = sorted(KUBERNETES.rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        docs = load_yaml_documents(path)
        assert docs, f"{path} is empty"
        if path.name == "config.yaml":
            continue  # the proxy's config, checked below
        for doc in docs:
            assert {"apiVersion", "kind"} <= set(doc), path
            if doc["kind"] != "Kustomization":
                assert doc["metadata"]["name"], path
    # Every file is reachable from the overlay, so nothing in deploy/ is dead.
    listed = {KUBERNETES / "base" / "kustomization.yaml", OVERLAY / "kustomization.yaml", _base_config_file()}
    for directory in (BASE, OVERLAY):
        resources = yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
        listed.update((directory / r).resolve() for r in resources)
    assert {p for p in files if p.suffix == ".yaml"} <= {p.resolve() for p in listed}


def test_image_listens_where_it_says() -> None:
    command = _image_command()
    assert command[0] == "/opt/llm-proxy/bin/llm-proxy"
    # The default listen host is not 0.0.0.0 everywhere: the image states it.
    assert flag(command, "--host") == "0.0.0.0"
    assert int(flag(command, "--port")) == _image_port() == 8080
    healthcheck = one(final_stage(), "HEALTHCHECK").exec_form()
    assert healthcheck[0] == "/opt/llm-proxy/bin/python"
    url = re.findall(r"http://[^'\"]+", healthcheck[-1])
    assert url == [f"http://127.0.0.1:{_image_port()}/healthz"]
    # The virtualenv that ENTRYPOINT and HEALTHCHECK use is the one the build stage makes.
    build = next(step.text for step in dockerfile() if step.keyword == "RUN" and "--without-pip" in step.text)
    assert "python3 -m venv --without-pip /opt/llm-proxy;" in build


def test_image_runs_as_a_fixed_non_root_user() -> None:
    user = one(final_stage(), "USER").text
    uid, _, gid = user.partition(":")
    assert int(uid) >= 10000 and int(gid) >= 10000
    context = _proxy_deployment()["spec"]["template"]["spec"]["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["runAsNonRoot"]) == (int(uid), int(gid), True)


def test_image_bakes_the_demo_config_where_the_command_reads_it() -> None:
    copies = [step.text.split() for step in final_stage() if step.keyword == "COPY" and "--from" not in step.text]
    assert copies == [["config/demo.yaml", flag(_image_command(), "--config")]]
    assert load_config(REPO / "config/demo.yaml").routes


def test_deployment_matches_the_image() -> None:
    deployment = _proxy_deployment()
    proxy = container(deployment, "llm-proxy")
    assert [p["containerPort"] for p in proxy["ports"]] == [_image_port()]
    assert proxy["image"] == f"llm-proxy:{_version()}"
    assert proxy.get("command") is None and proxy.get("args") is None, "the image's own command line"
    mount_path, _ = _config_volume(deployment)
    config_path = PurePosixPath(flag(_image_command(), "--config"))
    assert PurePosixPath(mount_path) == config_path.parent and _base_config_file().name == config_path.name
    probes = {kind: proxy[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert {kind: (p["path"], port_number(proxy, p["port"])) for kind, p in probes.items()} == {
        "livenessProbe": ("/healthz", 8080),
        "readinessProbe": ("/readyz", 8080),
    }
    assert proxy["lifecycle"]["preStop"]["exec"]["command"][0] == one(final_stage(), "HEALTHCHECK").exec_form()[0]
    security = proxy["securityContext"]
    assert security == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert deployment["spec"]["replicas"] == 2


def _pre_stop_pause(deployment: dict[str, Any]) -> float:
    command = container(deployment, "llm-proxy")["lifecycle"]["preStop"]["exec"]["command"]
    (seconds,) = re.findall(r"time\.sleep\((\d+(?:\.\d+)?)\)", command[-1])
    return float(seconds)


def test_grace_periods_nest() -> None:
    """preStop pause, then SIGTERM, then the proxy's own grace period: all inside the kubelet's."""
    deployment = _proxy_deployment()
    config = load_config(_base_config_file(), KEYS)
    pause = _pre_stop_pause(deployment)
    assert 0 < pause <= 10
    grace = config.server.shutdown_grace_period
    assert grace == ServerConfig().shutdown_grace_period == 30
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > pause + grace


def test_config_keys_come_from_the_secret() -> None:
    referenced = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", _base_config_file().read_text()))
    env = container(_proxy_deployment(), "llm-proxy")["env"]
    from_secret = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "secretKeyRef" in e.get("valueFrom", {})}
    assert referenced == set(from_secret) == {"OPENAI_API_KEY"}
    assert {ref["name"] for ref in from_secret.values()} == {"llm-proxy-keys"}
    assert {ref["key"] for ref in from_secret.values()} == referenced
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    (generator,) = kustomization["secretGenerator"]
    assert generator["name"] == "llm-proxy-keys"
    lines = (OVERLAY / generator["envs"][0]).read_text().split()
    assert {line.partition("=")[0] for line in lines} == referenced


def test_service_pdb_hpa_and_policy_select_the_pods() -> None:
    objects = manifests(BASE)
    deployment = _proxy_deployment()
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = find(objects, "Service", "llm-proxy")
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port_number(container(deployment, "llm-proxy"), port["targetPort"]) == _image_port()
    pdb = find(objects, "PodDisruptionBudget", "llm-proxy")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    hpa = find(objects, "HorizontalPodAutoscaler", "llm-proxy")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm-proxy"}
    assert hpa["spec"]["minReplicas"] == deployment["spec"]["replicas"]
    policy = find(objects, "NetworkPolicy", "llm-proxy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_state_store_points_at_the_example_redis() -> None:
    config = load_config(_base_config_file(), KEYS)
    assert config.server.state_store is not None
    url = urlsplit(config.server.state_store)
    objects = manifests(OVERLAY)
    service = find(objects, "Service", url.hostname or "")
    (port,) = service["spec"]["ports"]
    assert (url.scheme, port["port"]) == ("redis", url.port)
    redis = find(objects, "Deployment", "llm-proxy-redis")
    assert port_number(container(redis, "redis"), port["targetPort"]) == 6379
    assert service["spec"]["selector"].items() <= redis["spec"]["template"]["metadata"]["labels"].items()
    assert any(r.get("inject_progress") for r in yaml.safe_load(_base_config_file().read_text())["models"])


async def test_the_app_answers_the_probe_paths() -> None:
    """The paths the probes ask are served by the proxy built from the cluster config: 200 once started."""
    deployment = _proxy_deployment()
    proxy = container(deployment, "llm-proxy")
    app = ProxyApp(load_config(_base_config_file(), KEYS))
    async with lifespan(app):
        for kind in ("livenessProbe", "readinessProbe"):
            assert await get(app, proxy[kind]["httpGet"]["path"]) == (200, b"OK")


def test_kustomize_renders_the_overlay() -> None:
    kubectl = require_system(
        "kubectl",
        "apt-get install -y kubectl (from the Kubernetes apt repository: Debian's kubernetes-client is too old)",
    )
    rendered = subprocess.run(
        [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    objects = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objects)
    config_maps = [name for name in kinds if name.startswith("ConfigMap/llm-proxy-config-")]
    secrets = [name for name in kinds if name.startswith("Secret/llm-proxy-keys-")]
    assert len(config_maps) == len(secrets) == 1
    assert kinds == sorted(
        [
            "Namespace/llm-proxy",
            *config_maps,
            *secrets,
            "Deployment/llm-proxy",
            "Deployment/llm-proxy-redis",
            "Service/llm-proxy",
            "Service/llm-proxy-redis",
            "PodDisruptionBudget/llm-proxy",
            "HorizontalPodAutoscaler/llm-proxy",
            "NetworkPolicy/llm-proxy",
            "NetworkPolicy/llm-proxy-redis",
        ]
    )
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {"llm-proxy"}
    deployment = find(objects, "Deployment", "llm-proxy")
    proxy = container(deployment, "llm-proxy")
    assert proxy["image"] == f"registry.example.com/llm-proxy:{_version()}"
    # The generated names (with their content hash) are what the pod refers to.
    _, config_map = _config_volume(deployment)
    assert f"ConfigMap/{config_map}" == config_maps[0]
    assert f"Secret/{proxy['env'][0]['valueFrom']['secretKeyRef']['name']}" == secrets[0]


@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=["base", "overlay"])
def test_kustomizations_list_existing_files(directory: Path) -> None:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (directory / resource).exists(), resource
    for generator in kustomization.get("configMapGenerator", []) + kustomization.get("secretGenerator", []):
        for file in generator.get("files", []) + generator.get("envs", []):
            assert (directory / file).is_file(), file
