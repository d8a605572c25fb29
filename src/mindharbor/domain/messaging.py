"""Secure messaging: the lifecycle of a message, the inbox view, retention and legal holds.

Why these rules (``careteam`` has already run for the same save: it set ``from`` to the session's
user, checked that both parties are the patient or their care team, and decided the ACL):

* A sent message is part of the clinical record. What a clinician told a patient, or a patient
  disclosed, must read the same later as when it was sent, so its content and its parties
  (``body``, ``attachments``, ``conversationId``, ``patient``, ``from``, ``to``) can never be
  changed, not even with the master key: a correction is a new message (119).
* Delivery and read receipts are statements made *by the recipient*. If a sender could mark their
  own message read, a clinician could appear to have been acknowledged by a patient in crisis who
  never saw the message, so only ``to`` may touch ``status`` / ``isRead`` (119). The master key
  keeps its operator override here, as everywhere in Parse.
* A receipt never moves backwards (``sent → delivered → read``; 142): "the patient read it at
  10:02" must stay true. Setting ``isRead`` means ``read``; the timestamps ``sentAt``,
  ``deliveredAt`` and ``readAt`` are the server's clock, never the client's (the repository already
  refuses them from clients with 119; the server sets them through ``server_values``).
* ``listConversations`` is the inbox: one SQL statement with window functions over exactly the rows
  the access policy lets the caller read (``repo.readable``), so the thread list, the last message
  and the unread counts can never include a message the caller may not see, and nothing is
  filtered in Python. Threads are keyed by ``(conversationId, patient)`` so two patients' messages
  never merge into one thread even if a client reuses a conversation id.
* Retention: messages are kept for their clinic's ``messageRetentionDays`` (the clinic is the
  patient's ``PatientProfile.primaryClinic``; the policy named ``*`` is the default, else
  ``DEFAULT_RETENTION_DAYS``) and then purged by ``purge_expired_messages`` as the server. Messages
  under legal hold are never purged. Policies and holds live in server tables (migration 0005)
  rather than on the message: a hold is invisible to the message's parties (a hold can concern
  litigation they are part of), it carries who/when/why for compliance, and the purge excludes
  held rows in SQL. Every change of policy or hold and every purge run is audited; the audit
  metadata carries ids, counts and day numbers, never message text or the free-text hold reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mindharbor.domain import audit
from mindharbor.domain.audit.writer import MAX_IDS_PER_ENTRY
from mindharbor.errors import (
    ObjectNotFound,
    OperationForbidden,
    ScriptFailed,
    ValidationFailed,
)
from mindharbor.hooks import FunctionRequest, Hooks, JobRequest, SaveRequest
from mindharbor.storage.codec import is_object_id, iso, utcnow
from mindharbor.storage.repository import Repository
from mindharbor.storage.schema import ClassSchema

# -- server tables (created by migration 0005) -------------------------------------------------
_metadata = sa.MetaData()
retention_table = sa.Table(
    "_MessageRetention",
    _metadata,
    sa.Column("clinic", sa.String(200), primary_key=True),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("updatedAt", sa.DateTime, nullable=False),
    sa.Column("updatedBy", sa.String(32)),
)
legal_hold_table = sa.Table(
    "_MessageLegalHold",
    _metadata,
    sa.Column("messageId", sa.String(32), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("heldBy", sa.String(32)),
    sa.Column("heldAt", sa.DateTime, nullable=False),
)

DEFAULT_CLINIC = "*"
# Deleting too early is irreversible and deleting too late is not, so the default errs long:
# seven years (plus leap days) covers HIPAA's six-year documentation rule and most US state
# medical-record rules for adults. A clinic sets its own with setRetentionPolicy.
DEFAULT_RETENTION_DAYS = 7 * 365 + 2
MAX_RETENTION_DAYS = 100 * 366
MIN_HOLD_REASON = 5

# Content and parties of a sent message: part of the record, never edited.
IMMUTABLE_FIELDS = frozenset({"body", "attachments", "conversationId", "patient", "from", "to"})
RECEIPT_FIELDS = frozenset({"status", "isRead"})
STATUS_ORDER = {"sent": 0, "delivered": 1, "read": 2}


def _pointer_id(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("__type") == "Pointer":
        return str(value.get("objectId"))
    return value if isinstance(value, str) else None


def _date(value: datetime) -> dict[str, str]:
    return {"__type": "Date", "iso": iso(value)}


def _is_admin(request: FunctionRequest) -> bool:
    return bool(request.auth.is_master or "admin" in request.auth.roles)


def _message_schema(repo: Repository) -> ClassSchema:
    schema = repo.schema_or_none("Message")
    if schema is None:
        raise RuntimeError("Message class is missing: run `mindharbor migrate`")
    return schema


# -- the lifecycle of one message --------------------------------------------------------------
def _check_new_message(request: SaveRequest) -> None:
    """A message starts life as sent and unread; the server stamps ``sentAt``."""
    body = request.body
    if body.get("status", "sent") != "sent" or body.get("isRead", False) is not False:
        raise ValidationFailed(
            "A new message is sent and unread; receipts come from its recipient."
        )
    body["status"] = "sent"
    body["isRead"] = False
    if not (request.auth.is_master and "sentAt" in body):  # master: an import keeps its time
        request.server_values["sentAt"] = _date(utcnow())


def _check_message_update(request: SaveRequest) -> None:
    body, original = request.body, request.original or {}
    touched = {key.partition(".")[0] for key in body}
    frozen = sorted(touched & IMMUTABLE_FIELDS)
    if frozen:
        raise OperationForbidden(
            f"A sent message cannot be changed ({', '.join(frozen)}); send a new message instead."
        )
    if not touched & RECEIPT_FIELDS:
        return
    recipient = original.get("to")
    if not request.auth.is_master and request.auth.user_id != recipient:
        raise OperationForbidden("Only the recipient can mark a message delivered or read.")

    current = original.get("status") or "sent"
    was_read = bool(original.get("isRead")) or current == "read"
    wanted = body.get("status", current)
    if not isinstance(wanted, str) or wanted not in STATUS_ORDER:
        raise ValidationFailed(f"status must be one of {', '.join(STATUS_ORDER)}.")
    if "isRead" in body:
        is_read = body["isRead"]
        if not isinstance(is_read, bool):
            raise ValidationFailed("isRead must be true or false.")
        if is_read:
            if "status" in body and wanted != "read":
                raise ValidationFailed("isRead true means status read.")
            wanted = "read"
        elif was_read or wanted == "read":
            raise ValidationFailed("A message that was read cannot become unread.")
    if STATUS_ORDER[wanted] < STATUS_ORDER[current]:
        raise ValidationFailed(f"A message's status cannot go back from {current} to {wanted}.")

    body["status"] = wanted
    body["isRead"] = wanted == "read"
    now = _date(utcnow())
    if STATUS_ORDER[wanted] >= STATUS_ORDER["delivered"] and original.get("deliveredAt") is None:
        request.server_values["deliveredAt"] = now  # read implies delivered
    if wanted == "read" and original.get("readAt") is None:
        request.server_values["readAt"] = now


async def message_before_save(request: SaveRequest) -> None:
    if request.is_new:
        _check_new_message(request)
    else:
        _check_message_update(request)


# -- the inbox ---------------------------------------------------------------------------------
def _int_param(params: dict[str, Any], name: str, default: int, maximum: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ScriptFailed(f"{name} must be an integer between 0 and {maximum}.")
    return value


async def list_conversations(request: FunctionRequest) -> list[dict[str, Any]]:
    """The caller's threads, newest first: last message and unread count, in one statement."""
    repo = request.repo
    settings = repo.store.settings
    limit = _int_param(request.params, "limit", settings.default_limit, settings.max_limit)
    skip = _int_param(request.params, "skip", 0, settings.max_skip)
    schema = await repo.lookup_schema("Message")
    if schema is None:
        return []
    table = repo.table(schema)
    thread = (table.c.conversationId, table.c.patient)
    newest_first = (table.c.createdAt.desc(), table.c.objectId.desc())
    unread_for_me = sa.case(
        (sa.and_(table.c["to"] == repo.auth.user_id, table.c.isRead == sa.false()), 1),
        else_=0,
    )
    ranked = (
        sa.select(
            *table.c,
            sa.func.row_number()
            .over(partition_by=thread, order_by=newest_first)
            .label("_thread_rank"),
            sa.func.sum(unread_for_me).over(partition_by=thread).label("_thread_unread"),
        )
        # The access policy's own predicate, applied before ranking and counting: a message the
        # caller may not read is neither a thread's last message nor counted as unread.
        .where(repo.readable(schema, table, "find"))
        .subquery("ranked")
    )
    stmt = (
        sa.select(ranked)
        .where(ranked.c._thread_rank == 1)
        .order_by(ranked.c.createdAt.desc(), ranked.c.objectId.desc())
        .limit(limit)
        .offset(skip)
    )
    rows = [dict(r) for r in (await repo.conn.execute(stmt)).mappings()]
    threads = []
    for row in rows:
        last = repo.encode(schema, row)
        threads.append(
            {
                "conversationId": row["conversationId"],
                "patient": last.get("patient"),
                "lastMessage": last,
                "unreadCount": int(row["_thread_unread"] or 0),
            }
        )
    # The last messages left the server: they belong in the request's PHI access entry.
    repo._note_reads(schema, [t["lastMessage"]["objectId"] for t in threads])
    return threads


# -- retention and legal holds -----------------------------------------------------------------
async def set_retention_policy(request: FunctionRequest) -> dict[str, Any]:
    if not _is_admin(request):
        raise OperationForbidden("Only an admin can set a retention policy.")
    clinic, days = request.params.get("clinic"), request.params.get("days")
    if not isinstance(clinic, str) or not clinic.strip() or len(clinic) > 200:
        raise ScriptFailed('clinic is required (a clinic name, or "*" for the default).')
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RETENTION_DAYS:
        raise ScriptFailed(f"days must be an integer between 1 and {MAX_RETENTION_DAYS}.")
    repo, t = request.repo, retention_table
    previous = await repo.conn.scalar(
        sa.select(t.c.days).where(t.c.clinic == clinic).with_for_update()
    )
    values = {"days": days, "updatedAt": utcnow(), "updatedBy": request.auth.user_id}
    if previous is None:
        await repo.conn.execute(t.insert().values(clinic=clinic, **values))
    else:
        await repo.conn.execute(t.update().where(t.c.clinic == clinic).values(values))
    await audit.record(
        repo,
        "message.retention.set",
        entity_type="_MessageRetention",
        entity_id=clinic,
        summary=f"Message retention set to {days} day(s)",
        metadata={"days": days, "previousDays": previous},
    )
    return {"clinic": clinic, "days": days}


async def set_legal_hold(request: FunctionRequest) -> dict[str, Any]:
    if not _is_admin(request):
        raise OperationForbidden("Only an admin can place or release a legal hold.")
    message_id, hold = request.params.get("messageId"), request.params.get("hold")
    reason = request.params.get("reason")
    if not is_object_id(message_id) or not isinstance(hold, bool):
        raise ScriptFailed("messageId and hold (true or false) are required.")
    if hold and (not isinstance(reason, str) or len(reason.strip()) < MIN_HOLD_REASON):
        raise ScriptFailed(f"State the reason for the hold ({MIN_HOLD_REASON}+ characters).")
    repo, t = request.repo, legal_hold_table
    messages = repo.table(_message_schema(repo))
    if repo.dialect == "postgresql":
        # Ordered against a running purge (which holds a stronger lock on this table): either
        # the purge sees this hold, or this call sees that the message is gone.
        await repo.conn.execute(sa.text(f'LOCK TABLE "{t.name}" IN ROW EXCLUSIVE MODE'))
    # An admin is no party to the message and cannot read it: the server checks it exists.
    found = await repo.conn.scalar(
        sa.select(messages.c.objectId).where(messages.c.objectId == message_id)
    )
    if found is None:
        raise ObjectNotFound("Message not found.")
    held = await repo.conn.scalar(sa.select(t.c.messageId).where(t.c.messageId == message_id))
    if hold and held is None:
        await repo.conn.execute(
            t.insert().values(
                messageId=message_id,
                reason=str(reason).strip()[:2000],
                heldBy=request.auth.user_id,
                heldAt=utcnow(),
            )
        )
    elif not hold and held is not None:
        await repo.conn.execute(t.delete().where(t.c.messageId == message_id))
    if hold != (held is not None):
        await audit.record(
            repo,
            "message.legalHold.place" if hold else "message.legalHold.release",
            entity_type="Message",
            entity_id=str(message_id),
            summary="Legal hold placed on message" if hold else "Legal hold released",
            metadata={"hold": hold},
        )
    return {"messageId": message_id, "hold": hold}


async def purge_expired_messages(
    repo: Repository, *, now: datetime | None = None, batch_size: int = MAX_IDS_PER_ENTRY
) -> dict[str, Any]:
    """Delete (as the server) messages older than their clinic's retention and not held.

    Registered as the job ``purgeExpiredMessages`` (``job_schedule`` runs it hourly); call it in
    a unit of work, ``more`` says another batch is due. A run that removes messages writes one
    audit entry with their number and ids (ids are not PHI); every run is in ``_JobStatus``.
    """
    system = repo if repo.auth.is_system else repo.system()
    now = now or utcnow()
    batch_size = max(1, min(batch_size, MAX_IDS_PER_ENTRY))
    if system.dialect == "postgresql":
        # Holds placed while the purge runs wait for it; holds committed before it are seen.
        await system.conn.execute(
            sa.text(f'LOCK TABLE "{legal_hold_table.name}" IN SHARE ROW EXCLUSIVE MODE')
        )
    policies = {
        clinic: days
        for clinic, days in (
            await system.conn.execute(sa.select(retention_table.c.clinic, retention_table.c.days))
        ).all()
    }
    default_days = policies.pop(DEFAULT_CLINIC, DEFAULT_RETENTION_DAYS)
    messages = system.table(_message_schema(system))
    profile_schema = system.schema_or_none("PatientProfile")
    if profile_schema is None:
        raise RuntimeError("PatientProfile class is missing: run `mindharbor migrate`")
    profiles = system.table(profile_schema)
    clinic = profiles.c.primaryClinic

    def older_than(days: int) -> sa.ColumnElement[bool]:
        return messages.c.createdAt < now - timedelta(days=days)

    expired = sa.or_(
        *(sa.and_(clinic == name, older_than(days)) for name, days in policies.items()),
        # No clinic, an unknown clinic, or a patient profile that is gone: the default.
        sa.and_(sa.or_(clinic.is_(None), clinic.not_in(list(policies))), older_than(default_days)),
    )
    held = sa.exists().where(legal_hold_table.c.messageId == messages.c.objectId)
    stmt = (
        sa.select(messages.c.objectId)
        .select_from(messages.outerjoin(profiles, profiles.c.objectId == messages.c.patient))
        .where(expired, ~held)
        .order_by(messages.c.createdAt, messages.c.objectId)
        .limit(batch_size + 1)
    )
    ids = list((await system.conn.scalars(stmt)).all())
    more = len(ids) > batch_size
    ids = ids[:batch_size]
    if not ids:
        return {"purged": 0, "ids": [], "more": False}  # the run itself is in _JobStatus
    for message_id in ids:
        await system.delete("Message", message_id)  # before/after-delete hooks still apply
    await audit.record(
        system,
        "message.purge",
        entity_type="Message",
        entity_id=ids[0] if len(ids) == 1 else "*",
        summary=f"Purged {len(ids)} message(s) past their retention period",
        metadata={
            "count": len(ids),
            "ids": ids,
            "more": more,
            "retentionDays": {**policies, DEFAULT_CLINIC: default_days},
            "now": iso(now),
        },
    )
    return {"purged": len(ids), "ids": ids, "more": more}


async def purge_job(job: JobRequest) -> dict[str, Any]:
    result = await purge_expired_messages(job.repo)
    return {"purged": result["purged"], "more": result["more"]}  # ids: in the audit entry


def register(hooks: Hooks) -> None:
    hooks.on_before_save("Message")(message_before_save)
    hooks.function("listConversations")(list_conversations)
    hooks.function("setRetentionPolicy")(set_retention_policy)
    hooks.function("setLegalHold")(set_legal_hold)
    hooks.job("purgeExpiredMessages")(purge_job)
