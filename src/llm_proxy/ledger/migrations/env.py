"""Alembic's entry point: run the migrations on the connection ``ledger.store`` hands over (``_migrate``)."""

from __future__ import annotations

from alembic import context

from llm_proxy.ledger.schema import METADATA


def run() -> None:
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=METADATA)
    with context.begin_transaction():
        context.run_migrations()


run()
