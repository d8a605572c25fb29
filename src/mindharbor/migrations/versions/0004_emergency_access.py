"""Emergency ("break the glass") access grants: time-limited read access outside a care team.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "_EmergencyGrant",
        sa.Column("objectId", sa.String(32), primary_key=True),
        sa.Column("userId", sa.String(32), nullable=False, index=True),
        sa.Column("patientId", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("createdAt", sa.DateTime, nullable=False),
        sa.Column("expiresAt", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("_EmergencyGrant")
