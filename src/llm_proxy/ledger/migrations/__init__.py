"""Alembic migrations of the ledger's schema, applied by ``ledger.store`` (no ``alembic.ini``): at start in the
``prepare`` child process, and by ``llm-proxy usage``."""
