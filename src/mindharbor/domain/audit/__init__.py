"""The centralised, append-only, tamper-evident audit log."""

from mindharbor.domain.audit.seal import VerifyReport, seal_pending, verify
from mindharbor.domain.audit.writer import AUDIT_ACL, flush, record, register

__all__ = ["AUDIT_ACL", "VerifyReport", "flush", "record", "register", "seal_pending", "verify"]
