"""Alembic migrations for the server's own tables (class tables follow the schema registry)."""
