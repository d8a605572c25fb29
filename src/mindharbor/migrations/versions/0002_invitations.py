"""Invitation tokens for staff accounts (stored hashed, single use, expiring).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "_Invitation",
        sa.Column("tokenHash", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("createdBy", sa.String(32)),
        sa.Column("expiresAt", sa.DateTime, nullable=False),
        sa.Column("usedAt", sa.DateTime),
        sa.Column("usedBy", sa.String(32)),
    )


def downgrade() -> None:
    op.drop_table("_Invitation")
