"""Sealed blocks of audit entries: the tamper evidence for the append-only AuditLog.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "_AuditSeal",
        sa.Column("block", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("entries", JSONType, nullable=False),
        sa.Column("prevRoot", sa.String(64), nullable=False),
        sa.Column("root", sa.String(64), nullable=False),
        sa.Column("sealedAt", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("_AuditSeal")
