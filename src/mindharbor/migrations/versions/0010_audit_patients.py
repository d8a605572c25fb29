"""Which patients' charts each disclosure concerns: ``_AuditPatient (patientId, entryId)``, so a
patient's "who viewed my record" finds every staff read of their chart in the audit log by an
index instead of scanning the newest entries of the whole clinic (``storage/audit_index.py``).

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
    )
    op.create_index("ix__AuditPatient_patient_time", "_AuditPatient", ["patientId", "createdAt"])


def downgrade() -> None:
    op.drop_index("ix__AuditPatient_patient_time", "_AuditPatient")
    op.drop_table("_AuditPatient")
