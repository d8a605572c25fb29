"""Alembic environment: always run programmatically, with a connection from ``Store``."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table="_alembic_version")
with context.begin_transaction():
    context.run_migrations()
