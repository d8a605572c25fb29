"""Alembic environment: always run programmatically, with a connection from ``Store``."""

from alembic import context

from mindharbor.storage.migration_steps import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
