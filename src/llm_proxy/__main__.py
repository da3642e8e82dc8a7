"""``python -m llm_proxy`` is the ``llm-proxy`` command."""

from llm_proxy.app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
