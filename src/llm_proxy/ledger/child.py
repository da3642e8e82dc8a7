"""The ledger's short-lived child processes, run from the serving process without blocking its event loop.

What needs SQLAlchemy and Alembic (``prepare``: migrations, the budgets' seed) or genai-prices
(``prices_lookup``) runs in a child, ``python -m MODULE`` with this interpreter and the same environment, so
that the serving process never loads them (together some 50 MB). The child reads its input on stdin (a database
URL's password never appears in a process listing) and answers on stdout; a child that fails exits 1 with
``{"error": "one line"}`` on stdout (``fail``: stderr may hold a library's noise). It is always reaped: killed
when it outlives its timeout or its caller is cancelled.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import orjson


class ChildFailed(RuntimeError):
    """A child exited with an error, or did not finish in time; the message says why (the child's own words)."""


async def run_child(module: str, args: Sequence[str], given: bytes, timeout: float) -> bytes:
    """Run ``python -m module *args`` with ``given`` on its stdin; its stdout once it exited 0."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(given), timeout)
    except TimeoutError:
        raise ChildFailed(f"{module} did not finish within {timeout:g} s") from None
    finally:
        if proc.returncode is None:  # timed out or cancelled: never leave it running, always reap it
            proc.kill()
            await asyncio.shield(proc.wait())
    if proc.returncode != 0:
        raise ChildFailed(_why(module, proc.returncode, out, err))
    return out


def _why(module: str, status: int | None, out: bytes, err: bytes) -> str:
    try:
        said = orjson.loads(out)
    except orjson.JSONDecodeError:
        said = None
    if isinstance(said, dict) and isinstance(said.get("error"), str):
        return str(said["error"])
    lines = [line.strip() for line in err.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else f"{module} exited with status {status}"


def fail(message: str) -> int:
    """In a child: report ``message`` (one line) to the parent; the exit status to return."""
    sys.stdout.buffer.write(orjson.dumps({"error": " ".join(message.split())}))
    return 1
