"""Hot reload: a new config file swapped in while the proxy serves, on SIGHUP or when the file changes.

The file is loaded and validated exactly as at start. A bad file is one error line in the log, and the
running config stays. A good one is swapped in at once (``ProxyApp.apply``): requests in flight finish on
the routes they started with, new requests use the new routes. Server settings that cannot change while
serving (address, workers, state store, ...) keep their running values and are reported as needing a
restart. With ``workers > 1`` the supervisor restarts every worker gracefully on SIGHUP, and each one
loads the file. File watching uses ``watchfiles`` (imported only when ``server.watch_config`` is on).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import threading
from pathlib import Path
from typing import Protocol

from llm_proxy.config import Config, ServerConfig, load_config
from llm_proxy.errors import ConfigError

log = logging.getLogger("llm_proxy.reload")

DEBOUNCE_MS = 200
"""Changes closer together than this are one reload (editors write a file in several steps)."""


class Reloadable(Protocol):
    config: Config

    def apply(self, config: Config) -> None: ...


def changed_server_settings(old: ServerConfig, new: ServerConfig) -> list[str]:
    return [f.name for f in dataclasses.fields(ServerConfig) if getattr(old, f.name) != getattr(new, f.name)]


class Reloader:
    """Loads ``path`` into ``app`` on demand (``reload``), on SIGHUP and, when asked, on change."""

    def __init__(self, app: Reloadable, path: str, *, watch: bool) -> None:
        self._app = app
        self._path = path
        self._watch = watch
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._signal = False
        self.reloads = {"ok": 0, "failed": 0}
        """Outcomes so far (for metrics)."""

    def reload(self) -> bool:
        """Load the file and swap it in; False (the running config kept) when it is bad."""
        try:
            config = load_config(self._path)
        except ConfigError as exc:
            self.reloads["failed"] += 1
            log.error("config reload failed, the running config stays: %s", exc)
            return False
        restart = changed_server_settings(self._app.config.server, config.server)
        self._app.apply(config)
        self.reloads["ok"] += 1
        log.info("config reloaded from %s: %d route(s)", self._path, len(config.routes))
        if restart:
            log.warning("config reload: server settings need a restart to change: %s", ", ".join(restart))
        return True

    async def start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload)
            self._signal = True
        if self._watch:
            self._task = asyncio.create_task(self._follow())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        if self._signal:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    async def _follow(self) -> None:
        import watchfiles

        target = Path(self._path).resolve()
        # The folder is watched, not the file: editors and ConfigMaps replace the file by a rename.
        async for _ in watchfiles.awatch(
            target.parent,
            watch_filter=lambda _change, name: Path(name).resolve() == target,
            stop_event=self._stop,
            debounce=DEBOUNCE_MS,
            step=50,
            recursive=False,
        ):
            self.reload()
