"""Housekeeping jobs that keep server tables small."""

from __future__ import annotations

from typing import Any

from mindharbor.hooks import Hooks, JobRequest
from mindharbor.storage.codec import utcnow
from mindharbor.storage.system_tables import idempotency_table


def register(hooks: Hooks) -> None:
    @hooks.job("purgeIdempotencyKeys")
    async def purge_idempotency_keys(job: JobRequest) -> dict[str, Any]:
        """Expired request ids no longer protect anything; drop them."""
        table = idempotency_table
        result = await job.repo.conn.execute(table.delete().where(table.c.expire < utcnow()))
        return {"removed": int(result.rowcount or 0)}
