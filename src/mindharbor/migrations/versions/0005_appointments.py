"""Message retention policies and legal holds; btree_gist for the no-double-booking constraint.

The exclusion constraint itself is added after the schema sync has created the ``Appointment``
table (see ``BOOKING_GUARDS`` in ``storage/db.py``); this revision only makes sure the extension
it needs exists (``btree_gist`` ships with PostgreSQL's contrib and is a trusted extension, so
the database owner may create it).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "_MessageRetention",
        sa.Column("clinic", sa.String(200), primary_key=True),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("updatedAt", sa.DateTime, nullable=False),
        sa.Column("updatedBy", sa.String(32)),
    )
    op.create_table(
        "_MessageLegalHold",
        sa.Column("messageId", sa.String(32), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("heldBy", sa.String(32)),
        sa.Column("heldAt", sa.DateTime, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")


def downgrade() -> None:
    op.drop_table("_MessageLegalHold")
    op.drop_table("_MessageRetention")
