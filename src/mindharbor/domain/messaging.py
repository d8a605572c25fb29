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

from datetime import datetime
from typing import Any

from mindharbor.domain import audit
from mindharbor.domain.audit.writer import MAX_IDS_PER_ENTRY
from mindharbor.errors import (
    ObjectNotFound,
    OperationForbidden,
    ScriptFailed,
    ValidationFailed,
)
from mindharbor.hooks import FunctionRequest, Hooks, JobRequest, SaveRequest
from mindharbor.security.roles import is_admin
from mindharbor.storage import mailbox
from mindharbor.storage.codec import is_object_id, iso, utcnow
from mindharbor.storage.repository import Repository
from mindharbor.storage.schema import ClassSchema
from mindharbor.storage.server_fields import same_as_stored

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
    return is_admin(request.auth)


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
    for name in same_as_stored(request.schema, body, original, IMMUTABLE_FIELDS):
        del body[name]  # re-sent unchanged (a client saving the whole message): no change
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
    threads = []
    for last, unread in await mailbox.latest_per_thread(repo, schema, limit=limit, skip=skip):
        threads.append(
            {
                "conversationId": last.get("conversationId"),
                "patient": last.get("patient"),
                "lastMessage": last,
                "unreadCount": unread,
            }
        )
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
    repo = request.repo
    previous = await mailbox.set_retention(repo, clinic, days, request.auth.user_id)
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
    repo = request.repo
    held = await mailbox.set_hold(
        repo,
        _message_schema(repo),
        str(message_id),
        hold=hold,
        reason=str(reason or "").strip()[:2000],
        by=request.auth.user_id,
    )
    if held is None:
        raise ObjectNotFound("Message not found.")
    if hold != held:
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
    policies = await mailbox.retention_policies(system)
    default_days = policies.pop(DEFAULT_CLINIC, DEFAULT_RETENTION_DAYS)
    profile_schema = system.schema_or_none("PatientProfile")
    if profile_schema is None:
        raise RuntimeError("PatientProfile class is missing: run `mindharbor migrate`")
    ids = await mailbox.expired_messages(
        system,
        _message_schema(system),
        profile_schema,
        policies=policies,
        default_days=default_days,
        now=now,
        limit=batch_size + 1,
    )
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
