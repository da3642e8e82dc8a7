"""An app factory for serving llm-proxy under servers its CLI does not offer (granian, uvicorn workers).

The proxy app is plain ASGI; this factory builds it from the config named by ``BENCH_PROXY_CONFIG`` so
that ``uvicorn --factory --workers 2`` and ``granian --factory`` can serve the very same app the CLI
serves. It exists for measurement only: it does not change the proxy.
"""

from __future__ import annotations

import logging
import os

from llm_proxy.config import load_config
from llm_proxy.server import ProxyApp


def proxy_app() -> ProxyApp:
    config = load_config(os.environ["BENCH_PROXY_CONFIG"])
    if not config.server.access_log:
        logging.getLogger("llm_proxy.access").setLevel(logging.WARNING)
    return ProxyApp(config)
