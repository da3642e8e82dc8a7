"""Keeping tests away from the machine's AWS setup: no credentials, config files or instance metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

AWS_ENV_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_BEARER_TOKEN_BEDROCK",
)


def isolate_aws_env(env: pytest.MonkeyPatch, home: Path) -> None:
    """Unset every AWS variable, point config and credential files into ``home``, disable IMDS."""
    for name in AWS_ENV_VARS:
        env.delenv(name, raising=False)
    env.setenv("HOME", str(home))
    env.setenv("AWS_CONFIG_FILE", str(home / "config"))
    env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    env.setenv("AWS_EC2_METADATA_DISABLED", "true")
