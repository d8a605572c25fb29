"""``mindharbor import-parse``: restore a Parse app's data into MindHarbor.

Objects keep their objectIds, timestamps and ACLs (so every pointer, ACL entry and role
membership still means what it meant), and arrive through ``Repository.restore`` as the server:
validated against MindHarbor's schema, with no hook re-run. What MindHarbor adds on top:

* **Passwords.** ``_hashed_password`` (bcrypt, as Parse stores it) is kept; the login path
  verifies bcrypt and replaces it with argon2id at the next successful login. Users exported
  without a hash (a REST or Dashboard export) are imported and counted: they reset their password.
* **Roles.** A role whose name already exists (the built-in ``patient``, ``provider``, ``admin``,
  ``compliance``) is merged into the existing one; its members and pointers follow.
* **Safety of PHI.** A PHI object whose ACL is missing or public would be readable by every
  signed-in user here: it gets MindHarbor's own default ACL (the patient reads, the care team
  reads and writes) instead, and the report counts it. Every patient gets a care-team role.
* **Scores.** A scored instrument without a server score is scored by MindHarbor's rules.

Idempotent and resumable: objects whose objectId exists are skipped, and each batch commits on
its own, so a run that stopped half-way is finished by running it again. The audit log of the
source is not rewritten into this one (it is append-only and sealed here): keep the export.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mindharbor.auth.roles import care_team_role, ensure_role
from mindharbor.domain import audit
from mindharbor.domain.assessments import scored_values
from mindharbor.domain.careteam import RW, emergency_role, record_acl
from mindharbor.errors import ParseError, ValidationFailed
from mindharbor.hooks import SaveRequest
from mindharbor.interop.parse_export import Export, Row, field_specs, normalize
from mindharbor.security.auth import Auth
from mindharbor.storage.codec import is_object_id, utcnow
from mindharbor.storage.db import Store
from mindharbor.storage.repository import FindQuery, Repository

BATCH = 200
# Restore order: what others point at first.
ORDER = (
    "_User",
    "_Role",
    "PatientProfile",
    "ProviderProfile",
    "IntakeAssessment",
    "AssessmentVersion",
    "CrisisInterventionLog",
    "CrisisLogEvent",
    "CareAlert",
    "Message",
    "Appointment",
)
NOT_IMPORTED = {
    "_Session": "sessions are not carried over: users log in again",
    "_Installation": "push installations have no MindHarbor counterpart",
    "_JobStatus": "job history of the source server",
    "_Audience": "push audiences have no MindHarbor counterpart",
    "_PushStatus": "push history of the source server",
    "_Hooks": "cloud code hooks of the source server",
    "_GlobalConfig": "server configuration of the source",
    "_Idempotency": "request ids of the source server",
    "BulkExport": "export jobs of the source server",
    "AuditLog": "the source's audit log stays in the export (this log is append-only and sealed)",
}


@dataclass
class Report:
    imported: Counter[str] = field(default_factory=Counter)
    already_present: Counter[str] = field(default_factory=Counter)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (class, objectId, why)
    not_imported: dict[str, str] = field(default_factory=dict)  # class -> why (with count)
    dropped_fields: Counter[str] = field(default_factory=Counter)  # "Class.field"
    users_with_password: int = 0
    users_without_password: int = 0
    acl_defaulted: Counter[str] = field(default_factory=Counter)
    scored: int = 0
    roles_merged: list[str] = field(default_factory=list)
    memberships: int = 0
    care_teams_created: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": dict(self.imported),
            "alreadyPresent": dict(self.already_present),
            "failed": [{"class": c, "objectId": o, "reason": r} for c, o, r in self.failed],
            "notImported": self.not_imported,
            "droppedFields": dict(self.dropped_fields),
            "usersWithPassword": self.users_with_password,
            "usersWithoutPassword": self.users_without_password,
            "aclDefaulted": dict(self.acl_defaulted),
            "scoredOnImport": self.scored,
            "rolesMerged": self.roles_merged,
            "memberships": self.memberships,
            "careTeamsCreated": self.care_teams_created,
        }


Progress = Callable[[str, int], Awaitable[None] | None]


class ParseImporter:
    """One import run into ``store``; ``progress(class, rows done)`` after each batch."""

    def __init__(self, store: Store, export: Export, progress: Progress | None = None) -> None:
        self.store = store
        self.export = export
        self.progress = progress
        self.report = Report()
        self.role_ids: dict[str, str] = {}  # exported role id -> id here (merged roles)
        self.patients: dict[str, str] = {}  # PatientProfile id -> the patient's user id

    async def run(self) -> Report:
        classes = sorted(
            self.export.classes,
            key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n),
        )
        self._index_patients()
        for name in classes:
            rows = self.export.classes[name].rows
            if name in NOT_IMPORTED or name.startswith("_Join"):
                self.report.not_imported[name] = f"{len(rows)} row(s): {NOT_IMPORTED.get(name, '')}"
                continue
            if self.store.schema_or_none(name) is None:
                self.report.not_imported[name] = (
                    f"{len(rows)} row(s): no such class in MindHarbor's schema"
                )
                continue
            for start in range(0, len(rows), BATCH):
                await self._batch(name, rows[start : start + BATCH])
                await self._tick(name, min(start + BATCH, len(rows)))
        await self._relations()
        await self._care_teams()
        async with self.store.unit_of_work(Auth.system()) as repo:
            await audit.record(
                repo,
                "import.parse",
                entity_type="multiple",
                entity_id="*",
                summary=f"Imported {sum(self.report.imported.values())} object(s) from Parse",
                metadata={
                    "imported": dict(self.report.imported),
                    "failed": len(self.report.failed),
                },
            )
        return self.report

    async def _tick(self, name: str, done: int) -> None:
        if self.progress is not None:
            result = self.progress(name, done)
            if result is not None:
                await result

    def _index_patients(self) -> None:
        rows = self.export.classes.get("PatientProfile")
        if rows is None:
            return
        specs = field_specs(
            self.export, self.store.schema_or_none("PatientProfile"), "PatientProfile"
        )
        for raw in rows.rows:
            row = normalize(raw, specs)
            user = row.fields.get("user")
            if isinstance(user, dict) and user.get("objectId"):
                self.patients[row.object_id] = str(user["objectId"])

    async def _batch(self, name: str, raws: list[dict[str, Any]]) -> None:
        schema = self.store.schema_or_none(name)
        specs = field_specs(self.export, schema, name)
        rows = [normalize(raw, specs) for raw in raws]
        good = [r for r in rows if is_object_id(r.object_id)]
        for bad in rows:
            if not is_object_id(bad.object_id):
                self.report.failed.append((name, bad.object_id[:40], "missing or invalid objectId"))
        async with self.store.unit_of_work(Auth.system()) as repo:
            existing = await repo.find(
                name,
                FindQuery(
                    where={"objectId": {"$in": [r.object_id for r in good]}},
                    limit=len(good),
                    keys=["objectId"],
                ),
            )
            present = {o["objectId"] for o in existing.results}
            for row in good:
                if row.object_id in present:
                    self.report.already_present[name] += 1
                    continue
                await self._restore_one(repo, name, row)

    async def _restore_one(self, repo: Repository, name: str, row: Row) -> None:
        schema = repo.schema_or_none(name)
        assert schema is not None
        body: dict[str, Any] = {}
        for key, value in row.fields.items():
            spec = schema.field(key)
            if spec is None or (name == "_User" and key == "authData"):
                self.report.dropped_fields[f"{name}.{key}"] += 1
                continue
            if spec.type == "Relation":
                continue  # members come from the _Join files
            body[key] = value
        for key in row.dropped:
            if key not in ("_hashed_password",):
                self.report.dropped_fields[f"{name}.{key}"] += 1
        if name == "_Role" and await self._merge_role(repo, row, body):
            return
        if name == "PatientProfile" and isinstance(body.get("careTeam"), dict):
            old = body["careTeam"].get("objectId")
            body["careTeam"] = {**body["careTeam"], "objectId": self.role_ids.get(old, old)}
        if name == "IntakeAssessment":
            self._score(body)
        acl = row.acl
        if schema.phi and (acl is None or "*" in acl):
            acl = self._default_acl(repo, name, row.object_id, body)
            self.report.acl_defaulted[name] += 1
        body["ACL"] = acl if acl is not None else {"*": {"read": True, "write": True}}
        now = utcnow()
        hidden = {k: v for k, v in row.hidden.items() if name == "_User"}
        try:
            async with repo.conn.begin_nested():
                await repo.system().restore(
                    name,
                    row.object_id,
                    body,
                    created_at=row.created_at or now,
                    updated_at=row.updated_at or row.created_at or now,
                    hidden=hidden,
                )
        except ParseError as exc:
            self.report.failed.append((name, row.object_id, exc.message))
            return
        self.report.imported[name] += 1
        if name == "_User":
            if hidden.get("_hashed_password"):
                self.report.users_with_password += 1
            else:
                self.report.users_without_password += 1

    async def _merge_role(self, repo: Repository, row: Row, body: dict[str, Any]) -> bool:
        """A role whose name exists here already: record the id mapping, import nothing."""
        found = await repo.find("_Role", FindQuery(where={"name": body.get("name")}, limit=1))
        if not found.results:
            return False
        self.role_ids[row.object_id] = found.results[0]["objectId"]
        self.report.roles_merged.append(str(body.get("name")))
        return True

    def _score(self, body: dict[str, Any]) -> None:
        if body.get("score") is not None or not body.get("responses"):
            return
        try:
            values, result = scored_values(body.get("instrument"), body.get("responses"))
        except ValidationFailed:
            return  # answers MindHarbor cannot score stay as they are, unscored
        if result is not None:
            body.update({k: v for k, v in values.items() if v is not None})
            self.report.scored += 1

    def _default_acl(
        self, repo: Repository, name: str, object_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """MindHarbor's own ACL for a PHI object (what its save hooks would have decided)."""
        if name == "PatientProfile":
            user = (body.get("user") or {}).get("objectId")
            acl: dict[str, Any] = {
                f"role:{care_team_role(object_id)}": dict(RW),
                "role:admin": dict(RW),
                f"role:{emergency_role(object_id)}": {"read": True},
            }
            if user:
                acl[user] = dict(RW)
            return acl
        patient = (body.get("patient") or {}).get("objectId")
        schema = repo.schema_or_none(name)
        if not patient or schema is None:
            return {}  # no patient: the master key alone
        request = SaveRequest(repo, schema, object_id, None, body)
        return record_acl(name, patient, self.patients.get(patient, ""), request)

    async def _relations(self) -> None:
        for (field_name, owner), pairs in sorted(self.export.joins.items()):
            schema = self.store.schema_or_none(owner)
            spec = schema.field(field_name) if schema is not None else None
            if spec is None or spec.type != "Relation":
                self.report.not_imported[f"_Join:{field_name}:{owner}"] = (
                    f"{len(pairs)} row(s): no such relation in MindHarbor's schema"
                )
                continue
            target = spec.target_class
            grouped: dict[str, list[str]] = {}
            for owning, related in pairs:
                if owner == "_Role":
                    owning = self.role_ids.get(owning, owning)
                if target == "_Role":
                    related = self.role_ids.get(related, related)
                grouped.setdefault(owning, []).append(related)
            async with self.store.unit_of_work(Auth.system()) as repo:
                for owning, members in grouped.items():
                    objects = [
                        {"__type": "Pointer", "className": target, "objectId": m} for m in members
                    ]
                    try:
                        async with repo.conn.begin_nested():
                            await repo.update(
                                owner,
                                owning,
                                {field_name: {"__op": "AddRelation", "objects": objects}},
                            )
                    except ParseError as exc:
                        self.report.failed.append(
                            (f"_Join:{field_name}:{owner}", owning, exc.message)
                        )
                        continue
                    self.report.memberships += len(members)
            await self._tick(f"_Join:{field_name}:{owner}", len(pairs))

    async def _care_teams(self) -> None:
        """Every imported patient gets its care-team role (MindHarbor's flows rely on it)."""
        if not self.report.imported.get("PatientProfile"):
            return
        async with self.store.unit_of_work(Auth.system()) as repo:
            skip = 0
            while True:
                found = await repo.find(
                    "PatientProfile",
                    FindQuery(where={"careTeam": {"$exists": False}}, limit=500, skip=skip),
                )
                for profile in found.results:
                    name = care_team_role(profile["objectId"])
                    role = await ensure_role(repo, name, {"role:admin": dict(RW)})
                    pointer = {"__type": "Pointer", "className": "_Role", "objectId": role}
                    await repo.update("PatientProfile", profile["objectId"], {"careTeam": pointer})
                    self.report.care_teams_created += 1
                if len(found.results) < 500:
                    return
