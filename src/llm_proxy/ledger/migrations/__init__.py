"""Alembic migrations of the ledger's schema, applied at start by ``ledger.store`` (no ``alembic.ini``)."""
