"""The centralised, append-only, tamper-evident audit log."""

from typing import Any

from mindharbor.domain.audit import writer
from mindharbor.domain.audit.seal import VerifyReport, seal_pending, verify
from mindharbor.domain.audit.writer import AUDIT_ACL, flush, record
from mindharbor.hooks import Hooks, JobRequest

__all__ = ["AUDIT_ACL", "VerifyReport", "flush", "record", "register", "seal_pending", "verify"]


def register(hooks: Hooks) -> None:
    writer.register(hooks)

    @hooks.job("sealAuditLog")
    async def seal(job: JobRequest) -> dict[str, Any]:
        return {"sealed": await seal_pending(job.repo)}
