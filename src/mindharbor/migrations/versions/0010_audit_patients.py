"""Which patients' charts each disclosure concerns: ``_AuditPatient (patientId, entryId)``, so a
patient's "who viewed my record" finds every staff read of their chart in the audit log by an
index instead of scanning the newest entries of the whole clinic (``storage/audit_index.py``).
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
        sa.Column("createdAt", sa.DateTime, nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
    )
    op.create_index("ix__AuditPatient_patient_time", "_AuditPatient", ["patientId", "createdAt"])
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
    op.drop_index("ix__AuditPatient_patient_time", "_AuditPatient")
    op.drop_table("_AuditPatient")
