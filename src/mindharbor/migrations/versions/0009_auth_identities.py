"""One account per sign-in identity: ``_AuthIdentity`` holds each ``authData`` entry of every
``_User`` as (provider, subject), unique, kept by database triggers (``storage/auth_identities.py``,
created with the class tables), so two concurrent links or first SSO log-ins of one identity can
never give it two accounts.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "_AuthIdentity",
        sa.Column("provider", sa.Text, primary_key=True),
        sa.Column("subject", sa.Text, primary_key=True),
        sa.Column("userId", sa.String(32), nullable=False),
    )
    op.create_index("ix__AuthIdentity_userId", "_AuthIdentity", ["userId"])


def downgrade() -> None:
    op.drop_index("ix__AuthIdentity_userId", "_AuthIdentity")
    op.drop_table("_AuthIdentity")
