"""Fixtures for the container tests: a private dockerd, the base image, the wheelhouse and the proxy image.

They need ``dockerd`` (and a docker client) and ``debootstrap``: ``.ci/run`` installs them with apt. Without
them a developer's run skips with the command to install them; with ``CI`` set a missing piece fails. The only
skip CI accepts is a dockerd that cannot start on this machine (its log says why).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.deployment.docker import (
    CONTAINER_CACHE,
    IMAGE_TAG,
    Dockerd,
    DockerUnavailable,
    build_base_image,
    build_image,
    build_wheelhouse,
)
from tests.deployment.files import require_system

APT = "apt-get install -y docker.io debootstrap"


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    daemon = Dockerd(binary=require_system("dockerd", APT), docker=require_system("docker", APT))
    try:
        daemon.start()
    except DockerUnavailable as exc:
        pytest.skip(f"dockerd cannot start on this machine: {exc}")
    try:
        yield daemon
    finally:
        daemon.stop()
        if daemon.timings:
            CONTAINER_CACHE.mkdir(parents=True, exist_ok=True)
            (CONTAINER_CACHE / "timings.json").write_text(json.dumps(daemon.timings, indent=2) + "\n")


@pytest.fixture(scope="session")
def image(dockerd: Dockerd) -> str:
    """The proxy image, built air-gapped from a debootstrap base and a wheelhouse for its Python."""
    rootfs = build_base_image(dockerd, require_system("debootstrap", APT))
    build_wheelhouse(rootfs, dockerd.timings)
    build_image(dockerd)
    return IMAGE_TAG
