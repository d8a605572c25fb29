"""Drop indexes that cost every write and serve no query.

A pointer that leads a declared compound index (``Message.to`` in ``(to, isRead, createdAt)``)
is served by that index; and every ``AuditLog`` row carries the same readers, so a GIN index on
its ``_rperm`` matches every row. ``storage/tables.py`` no longer creates them; this removes
them from databases created before. Indexes of classes added through ``/schemas`` are left as
they are (the rule applies to tables created from now on).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"

REDUNDANT = (
    "ix_IntakeAssessment_patient",
    "ix_CrisisInterventionLog_patient",
    "ix_AssessmentVersion_assessment",
    "ix_CrisisLogEvent_crisisLog",
    "ix_CareAlert_patient",
    "ix_Message_to",
    "ix_Appointment_provider",
    "ix_AuditLog_actor",
    "ix_AuditLog__rperm",
)


def upgrade() -> None:
    for name in REDUNDANT:
        op.execute(f'DROP INDEX IF EXISTS "{name}"')


def downgrade() -> None:
    """Nothing to do: the schema sync recreates whatever indexes the current code declares."""
