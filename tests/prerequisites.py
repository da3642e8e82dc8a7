"""System pieces some tests need that ``pip install -e ".[dev]"`` cannot provide, and what happens without them.

On a developer's machine a missing piece SKIPS the test with one line naming the piece and the command
that installs it, so the seed's ``pip install -e ".[dev]"`` then ``pytest`` passes on a fresh clone. When
the environment variable ``CI`` is set (``.ci/run`` exports ``CI=true``), a missing piece FAILS instead:
CI must never go green with a suite that did not run.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True when ``CI`` is set to anything but an explicit no (``""``, ``0``, ``false``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(piece: str, install: str) -> NoReturn:
    """Skip the test (fail it under CI): ``piece`` is not available; ``install`` is the command that fixes it."""
    message = f"needs {piece}: {install}"
    if in_ci():
        pytest.fail(f"{message} (CI is set: a missing piece fails, never skips)", pytrace=False)
    pytest.skip(message)


def command(name: str, piece: str, install: str) -> str:
    """The path of the executable ``name``; when it is not on PATH, ``missing(piece, install)``."""
    path = shutil.which(name)
    if path is None:
        missing(piece, install)
    return path
