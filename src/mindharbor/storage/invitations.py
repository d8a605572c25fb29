"""Staff invitations (``_Invitation``): stored by token hash only, claimed once, row locked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mindharbor.storage.codec import utcnow
from mindharbor.storage.repository import Repository
from mindharbor.storage.system_tables import invitation_table as invitations


async def insert_invitation(
    repo: Repository,
    *,
    token_hash: str,
    role: str,
    email: str | None,
    created_by: str | None,
    expires_at: datetime,
) -> None:
    await repo.conn.execute(
        invitations.insert().values(
            tokenHash=token_hash,
            role=role,
            email=email,
            createdBy=created_by,
            expiresAt=expires_at,
        )
    )


async def lock_invitation(repo: Repository, token_hash: str) -> dict[str, Any] | None:
    """The invitation of a token hash, locked until the transaction ends (None: unknown)."""
    stmt = sa.select(invitations).where(invitations.c.tokenHash == token_hash).with_for_update()
    row = (await repo.conn.execute(stmt)).mappings().first()
    return dict(row) if row is not None else None


async def mark_used(repo: Repository, token_hash: str, user_id: str) -> None:
    await repo.conn.execute(
        invitations.update()
        .where(invitations.c.tokenHash == token_hash)
        .values(usedAt=utcnow(), usedBy=user_id)
    )
