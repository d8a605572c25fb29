"""Parse's global config (``GET/PUT /config``, ``Parse.Config``): one row of parameters and the
names of those only the master key may read.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "_GlobalConfig",
        sa.Column("objectId", sa.String(32), primary_key=True),
        sa.Column("params", _JSON, nullable=False),
        sa.Column("masterKeyOnly", _JSON, nullable=False),
        sa.Column("updatedAt", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("_GlobalConfig")
