"""``python -m bench [--quick] [--out docs/benchmarks.md]``: run every scenario and write the report."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.contenders import CONTENDERS, FULL_CONTENDERS, QUICK_CONTENDERS, REPO
from bench.runner import Options, render_saved, run
from bench.settings import PRESETS


def parse(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", dest="mode", const="quick", help="1 run, short (< 2 min)")
    mode.add_argument("--smoke", action="store_const", dest="mode", const="smoke", help="tiny load, for the tests")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md", help="report path")
    parser.add_argument("--work-dir", type=Path, default=REPO / "bench" / "work", help="configs, logs, venvs")
    parser.add_argument(
        "--contenders",
        help=f"comma-separated, from: {', '.join(CONTENDERS)} (default: all; --quick: {', '.join(QUICK_CONTENDERS)})",
    )
    parser.add_argument("--no-install", action="store_true", help="never apt-get/pip install missing tools")
    parser.add_argument("--load-client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--render-from", type=Path, metavar="RESULTS", help="only write the report of a saved run")
    args = parser.parse_args(argv)
    chosen = args.contenders or ",".join(FULL_CONTENDERS if args.mode is None else QUICK_CONTENDERS)
    names = [n.strip() for n in chosen.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contender(s): {', '.join(unknown)}")
    return Options(
        render_from=args.render_from,
        settings=PRESETS[args.mode or "full"],
        out=args.out,
        work=args.work_dir,
        contenders=names,
        install=not args.no_install,
        load_client=args.load_client,
    )


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    options = parse(sys.argv[1:] if argv is None else argv)
    if options.render_from is not None:
        print(f"bench: report written to {render_saved(options.render_from, options.out)}")
        return 0
    try:
        out = run(options)
    except KeyboardInterrupt:
        print("bench: interrupted; every started process was stopped", file=sys.stderr)
        return 130
    print(f"bench: report written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
