"""Server tables: the class registry and the idempotency ledger.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "_SCHEMA",
        sa.Column("className", sa.String(64), primary_key=True),
        sa.Column("schema", JSONType, nullable=False),
        sa.Column("updatedAt", sa.DateTime, nullable=False),
    )
    op.create_table(
        "_Idempotency",
        sa.Column("reqId", sa.String(200), primary_key=True),
        sa.Column("expire", sa.DateTime, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("_Idempotency")
    op.drop_table("_SCHEMA")
