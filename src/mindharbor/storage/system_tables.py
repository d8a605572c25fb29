"""The server's own tables (created by the Alembic migrations) and their small helpers."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from mindharbor.storage.codec import utcnow
from mindharbor.storage.schema import ClassSchema

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_metadata = sa.MetaData()

schema_table = sa.Table(
    "_SCHEMA",
    _metadata,
    sa.Column("className", sa.String(64), primary_key=True),
    sa.Column("schema", _JSON, nullable=False),
    sa.Column("updatedAt", sa.DateTime, nullable=False),
)
idempotency_table = sa.Table(
    "_Idempotency",
    _metadata,
    sa.Column("reqId", sa.String(200), primary_key=True),
    sa.Column("expire", sa.DateTime, nullable=False),
)


async def write_schema_row(conn: AsyncConnection, schema: ClassSchema, *, exists: bool) -> None:
    values = {"schema": schema.to_store(), "updatedAt": utcnow()}
    if exists:
        await conn.execute(
            schema_table.update().where(schema_table.c.className == schema.name).values(values)
        )
    else:
        await conn.execute(schema_table.insert().values(className=schema.name, **values))


invitation_table = sa.Table(
    "_Invitation",
    _metadata,
    sa.Column("tokenHash", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("email", sa.Text),
    sa.Column("createdBy", sa.String(32)),
    sa.Column("expiresAt", sa.DateTime, nullable=False),
    sa.Column("usedAt", sa.DateTime),
    sa.Column("usedBy", sa.String(32)),
)

audit_seal_table = sa.Table(
    "_AuditSeal",
    _metadata,
    sa.Column("block", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("entries", _JSON, nullable=False),
    sa.Column("prevRoot", sa.String(64), nullable=False),
    sa.Column("root", sa.String(64), nullable=False),
    sa.Column("sealedAt", sa.DateTime, nullable=False),
)

identity_epoch_table = sa.Table(  # one row; see storage/identity.py
    "_IdentityEpoch",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("epoch", sa.BigInteger, nullable=False),
)
emergency_grant_table = sa.Table(
    "_EmergencyGrant",
    _metadata,
    sa.Column("objectId", sa.String(32), primary_key=True),
    sa.Column("userId", sa.String(32), nullable=False),
    sa.Column("patientId", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("createdAt", sa.DateTime, nullable=False),
    sa.Column("expiresAt", sa.DateTime, nullable=False),
)
audit_patient_table = sa.Table(  # built by the audit sealer; see storage/audit_index.py
    "_AuditPatient",
    _metadata,
    sa.Column("patientId", sa.String(32), primary_key=True),
    sa.Column("entryId", sa.String(32), primary_key=True),  # the sitting's first entry
    sa.Column("actorId", sa.String(32), nullable=False),
    sa.Column("createdAt", sa.DateTime, nullable=False),  # when the sitting began
    sa.Column("emergency", sa.Boolean, nullable=False),
    sa.Index("ix__AuditPatient_patient_time", "patientId", "createdAt"),
    sa.Index("ix__AuditPatient_pair_time", "patientId", "actorId", "createdAt"),
)
audit_index_backfill_table = sa.Table(  # one row, id 1: blocks sealed before the index existed
    "_AuditIndexBackfill",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("throughBlock", sa.Integer, nullable=False),  # indexed up to this block
    sa.Column("untilBlock", sa.Integer, nullable=False),  # the last block sealed before
)
auth_identity_table = sa.Table(  # kept by triggers on _User; see storage/auth_identities.py
    "_AuthIdentity",
    _metadata,
    sa.Column("provider", sa.Text, primary_key=True),
    sa.Column("subject", sa.Text, primary_key=True),
    sa.Column("userId", sa.String(32), nullable=False),
)
global_config_table = sa.Table(  # one row, objectId "1"; see storage/global_config.py
    "_GlobalConfig",
    _metadata,
    sa.Column("objectId", sa.String(32), primary_key=True),
    sa.Column("params", _JSON, nullable=False),
    sa.Column("masterKeyOnly", _JSON, nullable=False),
    sa.Column("updatedAt", sa.DateTime, nullable=False),
)
