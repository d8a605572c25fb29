"""The identity epoch: on SQLite, every process compares it before trusting its cached
sessions, and every transaction that changes a session, a role or a grant bumps it
(``storage/identity.py``; PostgreSQL uses NOTIFY instead, but the table exists on both).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    table = op.create_table(
        "_IdentityEpoch",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "epoch": 0}])


def downgrade() -> None:
    op.drop_table("_IdentityEpoch")
