"""Configuration: ``model`` holds the frozen objects, ``load`` reads and validates a file into them."""

from llm_proxy.config.load import load_config, parse_config
from llm_proxy.config.model import (
    BACKEND_FIELDS,
    LOOPBACK_HOSTS,
    MOCK_SCHEME,
    Backend,
    ClientKey,
    Config,
    Cooldown,
    Rates,
    Route,
    ServerConfig,
    Timeouts,
    exposure_warning,
    mask_key,
)

__all__ = [
    "BACKEND_FIELDS",
    "LOOPBACK_HOSTS",
    "MOCK_SCHEME",
    "Backend",
    "ClientKey",
    "Config",
    "Cooldown",
    "Rates",
    "Route",
    "ServerConfig",
    "Timeouts",
    "exposure_warning",
    "load_config",
    "mask_key",
    "parse_config",
]
