"""The centralised, append-only, tamper-evident audit log."""

from typing import Any

from mindharbor.domain.audit import writer
from mindharbor.domain.audit.seal import VerifyReport, seal_pending, verify
from mindharbor.domain.audit.writer import (
    AUDIT_ACL,
    DENIED_CODES,
    flush,
    record,
    record_denial,
    record_refusal,
)
from mindharbor.hooks import Hooks, JobRequest

__all__ = [
    "AUDIT_ACL",
    "DENIED_CODES",
    "VerifyReport",
    "flush",
    "record",
    "record_denial",
    "record_refusal",
    "register",
    "seal_pending",
    "verify",
]


def register(hooks: Hooks) -> None:
    writer.register(hooks)

    @hooks.job("sealAuditLog")
    async def seal(job: JobRequest) -> dict[str, Any]:
        return {"sealed": await seal_pending(job.repo)}
