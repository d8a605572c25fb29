"""Who viewed which patient's chart, and when: ``_AuditPatient``, one row per sitting (a staff
member's reads of one chart within ten minutes), so a patient's "who viewed my record" finds
every staff read of their chart by an index instead of scanning the newest entries of the whole
clinic (``storage/audit_index.py``).
Blocks sealed before this revision are indexed a few at a time by later sealing runs, from
``_AuditIndexBackfill``.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.create_table(
        "_AuditPatient",
        sa.Column("patientId", sa.String(32), primary_key=True),
        sa.Column("entryId", sa.String(32), primary_key=True),
        sa.Column("actorId", sa.String(32), nullable=False),
        sa.Column("createdAt", sa.DateTime, nullable=False),
        sa.Column("emergency", sa.Boolean, nullable=False),
    )
    op.create_index("ix__AuditPatient_patient_time", "_AuditPatient", ["patientId", "createdAt"])
    op.create_index(
        "ix__AuditPatient_pair_time", "_AuditPatient", ["patientId", "actorId", "createdAt"]
    )
    op.create_table(
        "_AuditIndexBackfill",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("throughBlock", sa.Integer, nullable=False),
        sa.Column("untilBlock", sa.Integer, nullable=False),
    )
    op.execute(
        'INSERT INTO "_AuditIndexBackfill" (id, "throughBlock", "untilBlock") '
        'SELECT 1, 0, COALESCE(MAX(block), 0) FROM "_AuditSeal"'
    )


def downgrade() -> None:
    op.drop_table("_AuditIndexBackfill")
    op.drop_index("ix__AuditPatient_pair_time", "_AuditPatient")
    op.drop_index("ix__AuditPatient_patient_time", "_AuditPatient")
    op.drop_table("_AuditPatient")
