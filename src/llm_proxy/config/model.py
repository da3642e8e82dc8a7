"""The config as the rest of the proxy sees it: frozen, typed objects (parsed by ``config.load``).

A route (``models:`` entry) owns a prefix and a client-facing model name (or a glob of names), and a
pool of backends (``backends:``, or the flat ``backend_*`` fields as a pool of one) with ordered
fallbacks. The route's own ``backend_*`` fields are those of the backend an attempt uses
(``Route.using``): planners, headers and signing read only those.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

MOCK_SCHEME = "mock://"
"""``backend_base_url`` value that makes the proxy answer in-process with the embedded mock upstream."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    host: str = "127.0.0.1"
    """Loopback unless the config or ``--host`` says otherwise: a proxy holding keys is not exposed by accident."""
    port: int = 8080
    connect_timeout: float = 10.0
    """Seconds to open a connection to an upstream."""
    read_timeout: float = 600.0
    """Seconds an upstream may stay silent (before its first byte, or between two chunks)."""
    shutdown_grace_period: float = 30.0
    """On SIGTERM, seconds in-flight requests get to finish before the process exits."""
    max_body_size: int = 32 * 1024 * 1024
    max_connections: int = 1000
    """Upper bound on open upstream connections (long streams hold one each)."""
    state_store: str | None = None
    """None/``memory``: in-process; ``redis://host:port/db``: shared by replicas."""
    state_ttl: float = 86400.0
    workers: int = 1
    """Server processes sharing the port (uvicorn workers). With more than one, use a Redis state store."""
    interface: str = "asgi"
    """The server underneath: ``asgi`` (uvicorn) or ``rsgi`` (granian, the ``granian`` extra); docs/benchmarks.md."""
    log_level: str = "info"
    access_log: bool = True
    log_format: str = "text"
    """``text`` lines or ``json`` (one object per line, the access record's fields as keys)."""
    watch_config: bool = False
    """Reload the config file when it changes (as on SIGHUP)."""
    usage_store: str | None = None
    """The usage ledger's database as a SQLAlchemy URL (``sqlite:///abs/path.db``, ``postgresql://...``); None: off.
    A config file without the field gets ``usage.db`` beside it (``config.load``)."""
    usage_queue: int = 10_000
    """Records the ledger holds while its database is slow or down; beyond that they are dropped (and counted)."""
    admin_key: str | None = field(default=None, repr=False)
    """The key of the admin API and dashboard (``/api/usage``, ``/dashboard``); None: those paths are 404."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Cooldown:
    """A backend that fails ``failures`` times within ``window`` seconds is skipped for ``seconds``."""

    failures: int = 3
    window: float = 60.0
    seconds: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Seconds a route's upstream calls may take; 0 means no limit. None: the ``server:`` default."""

    connect: float | None = None
    """To open the connection (else 502 and another attempt)."""
    first_byte: float | None = None
    """From the request to the response's first byte (else 504 and another attempt)."""
    idle: float | None = None
    """Between two chunks of the body (after the first byte: the dialect's in-stream error)."""
    total: float | None = None
    """The whole exchange, body included."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """One upstream of a route's pool or fallbacks: where requests go, in which dialect, with which key."""

    name: str
    """Shown in logs, metrics and the ``x-llm-proxy-backend`` header (default: its index, ``fallback-N``)."""
    backend_base_url: str
    backend_model_name: str
    backend_dialect: str | None = None
    backend_api_key: str = field(default="", repr=False)
    backend_auth_header: str = "Authorization"
    backend_auth_schema: str = "Bearer"
    default_max_tokens: int = 8192
    aws_region: str | None = None
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_profile: str | None = None
    weight: float = 1.0

    @property
    def secrets(self) -> tuple[str, ...]:
        values = (self.backend_api_key, self.aws_secret_access_key, self.aws_session_token)
        return tuple(v for v in values if v)

    @property
    def holds_credentials(self) -> bool:
        return bool(self.backend_api_key or self.aws_access_key_id or self.aws_profile)


BACKEND_FIELDS = (
    "backend_base_url",
    "backend_model_name",
    "backend_dialect",
    "backend_api_key",
    "backend_auth_header",
    "backend_auth_schema",
    "default_max_tokens",
    "aws_region",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_profile",
)
"""The fields a ``Backend`` gives to its route for one attempt (``Route.using``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One ``models:`` entry."""

    index: int
    frontend_model_name: str
    frontend_base_url: str
    """Normalized: starts with ``/``, no trailing ``/`` (the root prefix is ``""``)."""
    backend_model_name: str
    backend_base_url: str
    """Normalized: no trailing ``/``."""
    frontend_dialect: str | None = None
    backend_dialect: str | None = None
    backend_api_key: str = field(default="", repr=False)
    backend_auth_header: str = "Authorization"
    backend_auth_schema: str = "Bearer"
    system_replacements: tuple[tuple[str, str], ...] = ()
    system_append: str | None = None
    inject_progress: bool = False
    default_max_tokens: int = 8192
    aws_region: str | None = None
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_profile: str | None = None
    backend_name: str = "0"
    """The backend of the pool these ``backend_*`` fields come from (``using``); "0" for the flat form."""
    backends: tuple[Backend, ...] = ()
    """The pool that shares the load, from ``backends:``; empty for the flat form (see ``pool``)."""
    fallbacks: tuple[Backend, ...] = ()
    """Tried in order once the pool has failed; any dialect (a translation route)."""
    retries: int = 0
    """Extra attempts per request, across pool and fallbacks."""
    cooldown: Cooldown = field(default_factory=lambda: Cooldown())
    timeouts: Timeouts = field(default_factory=lambda: Timeouts())
    require_client_key: bool = False
    """Ask for a client key even though the route forwards the client's own credential (``x-llm-proxy-key``)."""
    pattern: bool = False
    """``frontend_model_name`` is a glob (``claude-*``) matched against the client's model name."""
    _views: dict[int, tuple[Backend, Route]] = field(default_factory=dict, init=False, repr=False, compare=False)
    """``using``'s routes, by the backend's id (the backend is kept beside its view, so its id stays its own).
    Not an init field: ``replace`` gives every new route an empty one."""

    @property
    def translating(self) -> bool:
        return self.frontend_dialect is not None

    @property
    def is_mock(self) -> bool:
        return self.backend_base_url.startswith(MOCK_SCHEME)

    @property
    def label(self) -> str:
        return f"models[{self.index}] ({self.frontend_model_name})"

    def auth_value(self, key: str) -> str:
        """The value of ``backend_auth_header`` for ``key``."""
        return f"{self.backend_auth_schema} {key}" if self.backend_auth_schema else key

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credentials this route holds (never to be logged or sent back to a client)."""
        values = (self.backend_api_key, self.aws_secret_access_key, self.aws_session_token)
        return tuple(v for v in values if v)

    @property
    def holds_credentials(self) -> bool:
        """Whether requests on this route spend a credential of the proxy's own."""
        return any(b.holds_credentials for b in (*self.backends, *self.fallbacks)) or bool(
            self.backend_api_key or self.aws_access_key_id or self.aws_profile
        )

    @property
    def all_secrets(self) -> tuple[str, ...]:
        """The credentials of every backend of the route (pool and fallbacks)."""
        every = (*self.secrets, *(s for b in (*self.backends, *self.fallbacks) for s in b.secrets))
        return tuple(dict.fromkeys(every))

    @property
    def pool(self) -> tuple[Backend, ...]:
        """The backends that share the load: ``backends``, or the flat ``backend_*`` fields as a pool of one."""
        if self.backends:
            return self.backends
        values = {name: getattr(self, name) for name in BACKEND_FIELDS}
        return (Backend(name=self.backend_name, **values),)

    def using(self, backend: Backend) -> Route:
        """This route as one attempt sees it: the ``backend_*`` fields of ``backend``."""
        if not self.backends and backend.name == self.backend_name:
            return self  # the flat form's own backend
        known = self._views.get(id(backend))
        if known is not None and known[0] is backend:
            return known[1]
        # made once per backend: ``replace`` of a route's 28 fields costs ~12 µs, and every attempt asks
        values = {name: getattr(backend, name) for name in BACKEND_FIELDS}
        view = replace(self, backend_name=backend.name, **values)
        self._views[id(backend)] = (backend, view)
        return view

    def for_model(self, model: str) -> Route:
        """A pattern route answering ``model``: ``{model}`` in backend model names becomes the client's model."""
        if "{model}" not in self.backend_model_name and not any(
            "{model}" in b.backend_model_name for b in (*self.backends, *self.fallbacks)
        ):
            return self

        def named(backend: Backend) -> Backend:
            return replace(backend, backend_model_name=backend.backend_model_name.replace("{model}", model))

        return replace(
            self,
            backend_model_name=self.backend_model_name.replace("{model}", model),
            backends=tuple(named(b) for b in self.backends),
            fallbacks=tuple(named(b) for b in self.fallbacks),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientKey:
    """A key the proxy's own clients present (``client_keys:``); known by its name in logs and metrics."""

    name: str
    key_sha256: str
    """Hex SHA-256 of the key: what a presented key is compared with."""
    key: str | None = field(default=None, repr=False)
    """The key itself, when given (``key: ${ENV}``): needed to verify SigV4 signatures of Bedrock clients."""
    models: tuple[str, ...] = ()
    """Frontend model names or globs this key may use (empty: all)."""
    prefixes: tuple[str, ...] = ()
    """Route prefixes this key may use (empty: all)."""
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    expires: dt.date | None = None
    """The last day the key works (UTC)."""
    budget_usd_per_day: float | None = None
    """Spend allowed per UTC day, in USD (priced answers only)."""
    budget_usd_per_month: float | None = None
    """Spend allowed per calendar month (UTC), in USD."""

    @property
    def budgeted(self) -> bool:
        return self.budget_usd_per_day is not None or self.budget_usd_per_month is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rates:
    """One model's prices (``prices:``), USD per million tokens by kind; cache kinds default to ``input``."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    server: ServerConfig
    routes: tuple[Route, ...]
    path: str = ""
    client_keys: tuple[ClientKey, ...] = ()
    prices: dict[str, Rates] = field(default_factory=dict)
    """``prices:``: rates by backend model name, before (and beyond) genai-prices' table."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every credential in the config, for redaction."""
        keys = tuple(k.key for k in self.client_keys if k.key)
        admin = (self.server.admin_key,) if self.server.admin_key else ()
        return (
            tuple(secret for route in self.routes for secret in route.all_secrets) + keys + admin + self._store_secret
        )

    @property
    def _store_secret(self) -> tuple[str, ...]:
        """The usage store's database password, when its URL holds one."""
        auth, at, _ = (self.server.usage_store or "").partition("://")[2].rpartition("@")
        password = auth.partition(":")[2] if at else ""
        return (password,) if password else ()


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def exposure_warning(config: Config, host: str) -> str | None:
    """A warning when the proxy listens beyond loopback while routes spend keys of its own, else None."""
    if host in LOOPBACK_HOSTS or host.startswith("127."):
        return None
    spending = [r.label for r in config.routes if r.holds_credentials]
    if not spending:
        return None
    return (
        f"listening on {host}, beyond loopback: anyone who can reach this port can spend the keys of "
        f"{len(spending)} route(s) ({', '.join(spending[:3])}{', ...' if len(spending) > 3 else ''}); "
        "bind to 127.0.0.1 or restrict access to the port"
    )


def mask_key(key: str) -> str:
    """``sk-abc...3f9a`` style: enough to recognise a key, never enough to use it."""
    if not key:
        return "(none)"
    if len(key) <= 8:
        return "…"
    return f"{key[:3]}…{key[-4:]}"
