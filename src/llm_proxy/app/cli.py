"""Command line: parse flags, load the config, run the server. Nothing else lives here.

llm-proxy --config FILE [--host H] [--port P]      serve (also: llm-proxy serve ...)
llm-proxy check --config FILE                       validate and print the route table
llm-proxy mock-upstream --port N [options]          run the mock upstream on its own
llm-proxy usage --config FILE [--since 7d] [--by client,model] [--json]   the usage ledger's totals

``COMMANDS`` is the one list of subcommands: ``llm-proxy --help`` (and ``llm-proxy`` alone) prints it.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import secrets
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from llm_proxy import __version__
from llm_proxy.config import Config, Route, load_config, mask_key
from llm_proxy.dialects import get_spec
from llm_proxy.errors import ConfigError, ListenError

EXIT_CONFIG = 2
"""Exit code for a start that cannot happen: a bad config, or an address that cannot be bound."""

COMMANDS: dict[str, str] = {
    "serve": "run the proxy (the default: `llm-proxy --config FILE` means `llm-proxy serve --config FILE`)",
    "check": "validate a config file and print its route table, keys masked",
    "mock-upstream": "run the embedded mock LLM upstream on its own (tests, benchmarks)",
    "keys": "`keys new NAME`: make a client key and print the config lines for it",
    "usage": "requests, tokens and cost from the usage ledger, grouped by client, model, backend or day",
}
"""Every subcommand with its one-line description, in the order ``--help`` lists them."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(_serve_parser("llm-proxy").format_help(), end="")
        return 0
    command = args.pop(0) if args[0] in COMMANDS else "serve"
    if command == "mock-upstream":
        return _mock_upstream(args)
    if command == "keys":
        return _keys(args)
    if command == "usage":
        return _usage(args)
    parser = _serve_parser("llm-proxy") if command == "serve" else _check_parser()
    options = parser.parse_args(args)
    try:
        config = load_config(options.config)
    except ConfigError as exc:
        print(f"llm-proxy: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if command == "check":
        print(route_table(config))
        for warning in key_warnings(config):
            print(f"warning: {warning}", file=sys.stderr)
        return 0
    try:
        return _serve(config, options.host, options.port)
    except ListenError as exc:
        print(f"llm-proxy: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _serve_parser(prog: str) -> argparse.ArgumentParser:
    """The parser of ``llm-proxy [serve]``, whose help is also the program's overview of every command."""
    width = max(len(name) for name in COMMANDS) + 2
    listing = "\n".join(f"  {name.ljust(width)}{text}" for name, text in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog=prog,
        usage="llm-proxy [serve] --config FILE [--host H] [--port P]\n       llm-proxy COMMAND [options]",
        description=f"A reverse proxy for LLM APIs.\n\ncommands:\n{listing}",
        epilog="`llm-proxy COMMAND --help` describes a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="path to the YAML config file")
    parser.add_argument("--version", action="version", version=f"llm-proxy {__version__}")
    parser.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: server.port, 8080)")
    return parser


def _check_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-proxy check", description=COMMANDS["check"].capitalize() + ".")
    parser.add_argument("--config", required=True, metavar="FILE", help="path to the YAML config file")
    parser.add_argument("--version", action="version", version=f"llm-proxy {__version__}")
    return parser


def _serve(config: Config, host: str | None, port: int | None) -> int:
    from llm_proxy.app.serve import configure_logging, run
    from llm_proxy.app.server import ProxyApp
    from llm_proxy.config import exposure_warning
    from llm_proxy.observe.redact import Redactor

    redactor = Redactor(config.secrets)
    configure_logging(config.server.log_level, config.server.access_log, redactor, config.server.log_format)
    warning = exposure_warning(config, host or config.server.host)
    if warning is not None:
        logging.getLogger("llm_proxy").warning("%s", warning)
    run(
        ProxyApp(config, redactor=redactor),
        host=host or config.server.host,
        port=config.server.port if port is None else port,
        grace=config.server.shutdown_grace_period,
        log_level=config.server.log_level,
        workers=config.server.workers,
        config_path=config.path,
        interface=config.server.interface,
    )
    return 0


def route_table(config: Config) -> str:
    """The routes as a table, with keys masked."""
    rows = [("PREFIX", "MODEL", "BACKEND", "BACKEND MODEL", "MODE", "AUTH")]
    for route in config.routes:
        several = len(route.pool) > 1 or bool(route.fallbacks)
        members = (
            [(f"pool {b.name} (weight {b.weight:g})", b) for b in route.pool] if several else [("", route.pool[0])]
        )
        members += [(f"fallback {b.name}", b) for b in route.fallbacks]
        for i, (role, backend) in enumerate(members):
            attempt = route.using(backend)
            mode = f"{route.frontend_dialect} -> {attempt.backend_dialect}" if route.translating else "proxy"
            first = (route.frontend_base_url or "/", route.frontend_model_name) if i == 0 else ("", f"  {role}")
            if i == 0 and role:
                rows.append((*first, "", "", "", f"retries {route.retries}"))
                first = ("", f"  {role}")
            rows.append((*first, attempt.backend_base_url, attempt.backend_model_name, mode, _auth_label(attempt)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    return f"{config.path}: {len(config.routes)} route(s) OK\n" + "\n".join(lines)


def _auth_label(route: Route) -> str:
    """How the route authenticates upstream, keys masked (see ``llm_proxy.upstream.auth``)."""
    if route.is_mock:
        return "none (mock)"
    if route.backend_api_key:
        schema = f"{route.backend_auth_schema} " if route.backend_auth_schema else ""
        return f"{route.backend_auth_header}: {schema}{mask_key(route.backend_api_key)}"
    if route.aws_access_key_id:
        sigv4 = f"SigV4 (key {mask_key(route.aws_access_key_id)})"
    else:
        sigv4 = f"SigV4 (profile {route.aws_profile})" if route.aws_profile else "SigV4 (default AWS credential chain)"
    if route.backend_dialect is not None and get_spec(route.backend_dialect).sigv4:
        return sigv4
    from llm_proxy.upstream.sigv4 import region_from_host  # botocore (0.1 s to import) only for `check`, never to serve

    host = urlsplit(route.backend_base_url).hostname or ""
    if not route.translating and (region_from_host(host) or route.aws_access_key_id or route.aws_profile):
        return f"{sigv4} on Bedrock paths"  # proxy mode signs only /model/{id}/invoke... requests
    return "client's own credentials"


KEY_PREFIX = "lpk-"
"""Client keys made by ``keys new`` start with this, so that a leaked one is recognisable."""


def new_client_key() -> str:
    """A fresh client key: the prefix and 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _keys(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llm-proxy keys", description=COMMANDS["keys"])
    parser.add_argument("action", choices=["new"])
    parser.add_argument("name", help="the key's name, shown in logs and metrics")
    options = parser.parse_args(args)
    key = new_client_key()
    digest = hashlib.sha256(key.encode()).hexdigest()
    print(f"key (shown once, give it to {options.name}): {key}")
    print()
    print("config lines (the file then holds only the key's hash):")
    print("client_keys:")
    print(f"  - name: {options.name}")
    print(f'    key_sha256: "{digest}"')
    print("or, for a key Bedrock (SigV4) clients sign with, from the environment:")
    print(f"  - name: {options.name}")
    print(f"    key: ${{{options.name.upper().replace('-', '_').replace('.', '_')}_PROXY_KEY}}")
    return 0


def key_warnings(config: Config) -> list[str]:
    """What ``check`` should say about client keys that cannot work where they are allowed."""
    warnings: list[str] = []
    sigv4_prefixes = sorted(
        {r.frontend_base_url or "/" for r in config.routes if r.frontend_dialect and get_spec(r.frontend_dialect).sigv4}
    )
    for key in config.client_keys:
        if key.key is not None:
            continue
        usable = [p for p in sigv4_prefixes if not key.prefixes or p in key.prefixes]
        if usable:
            warnings.append(
                f"client key {key.name!r} is given as key_sha256 only: Bedrock clients on {', '.join(usable)} sign "
                "with SigV4, which needs the key itself (`key: ${ENV_VAR}`)"
            )
    return warnings


def _usage(args: list[str]) -> int:
    from llm_proxy.ledger.summary import DEFAULT_SINCE, GROUPS, ReportError, Summary, parse_by, parse_since

    parser = argparse.ArgumentParser(prog="llm-proxy usage", description=COMMANDS["usage"].capitalize() + ".")
    parser.add_argument("--config", required=True, metavar="FILE", help="the proxy's config (its usage_store)")
    parser.add_argument(
        "--since", default=DEFAULT_SINCE, help=f"a span (30m, 24h, 7d) or a date, YYYY-MM-DD (default {DEFAULT_SINCE})"
    )
    parser.add_argument("--by", default="", help=f"comma-separated groups: {', '.join(GROUPS)} (default: none)")
    parser.add_argument("--json", action="store_true", help="a JSON list of rows instead of a table")
    options = parser.parse_args(args)
    try:
        config = load_config(options.config)
    except ConfigError as exc:
        print(f"llm-proxy: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        summary = Summary(parse_since(options.since, time.time()), parse_by(options.by))
    except ReportError as exc:
        parser.error(str(exc))
    url = config.server.usage_store
    if url is None:
        print("llm-proxy usage: the usage ledger is off (server.usage_store: none)", file=sys.stderr)
        return 1
    from llm_proxy.ledger import report

    try:
        rows = report.rows(url, summary)
    except Exception as exc:  # the database cannot be reached or read: say which and why, no traceback
        from llm_proxy.ledger.service import shown_url

        print(f"llm-proxy usage: cannot read {shown_url(url)}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(report.as_json(rows) if options.json else report.as_table(rows, summary))
    return 0


def _mock_upstream(args: list[str]) -> int:
    from llm_proxy.app.serve import MockApp, configure_logging, run
    from llm_proxy.upstream.mock import MockOptions, MockUpstream

    parser = argparse.ArgumentParser(
        prog="llm-proxy mock-upstream", description=COMMANDS["mock-upstream"].capitalize() + "."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="delay before each streamed event")
    parser.add_argument("--events", type=int, help="number of text deltas per streamed reply")
    parser.add_argument("--response-bytes", type=int, help="size of the reply text (default: echo)")
    parser.add_argument(
        "--aws-secret",
        action="append",
        default=[],
        metavar="AKID=SECRET",
        help="require SigV4 on Bedrock paths, signed with this key pair (repeatable)",
    )
    parser.add_argument(
        "--bedrock-api-key", action="append", default=[], metavar="KEY", help="accept this Bedrock API key (repeatable)"
    )
    parser.add_argument("--log-level", default="warning")
    options = parser.parse_args(args)
    pairs = [item.partition("=") for item in options.aws_secret]
    if any(not key or not sep or not secret for key, sep, secret in pairs):
        parser.error("--aws-secret takes ACCESS_KEY_ID=SECRET")
    configure_logging(options.log_level)
    mock = MockUpstream(
        MockOptions(
            delay=options.delay_ms / 1000,
            events=options.events,
            response_bytes=options.response_bytes,
            aws_secrets={key: secret for key, _, secret in pairs},
            bedrock_api_keys=frozenset(options.bedrock_api_key),
        )
    )
    run(MockApp(mock), host=options.host, port=options.port, grace=5.0, log_level=options.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
