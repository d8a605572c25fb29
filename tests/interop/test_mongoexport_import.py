"""A Parse-on-MongoDB app's data, as ``mongoexport`` writes it, imported into MindHarbor.

No MongoDB runs here, so the collections are written as Parse Server's MongoDB adapter stores
them (``MongoTransform``: ``_id``, ``_created_at``/``_updated_at`` dates, ``_p_<field>`` =
``"Class$id"`` pointers, ``_acl`` with ``r``/``w`` plus the ``_rperm``/``_wperm`` arrays,
``_hashed_password`` bcrypt, ``_SCHEMA`` documents with ``"*Target"`` pointer types, and
``_Join:<field>:<Class>`` collections) in both of mongoexport's encodings: relaxed extended
JSON, one document per line (its default), and canonical (``--jsonFormat=canonical``,
``{"$date": {"$numberLong"}}``, ``{"$numberInt"}``) as one ``--jsonArray``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bcrypt
import orjson

from tests.interop.support import import_export
from tests.support import live_server, make_settings

PATIENT, DOCTOR, OTHER = "pUser00001", "dUser00001", "oUser00001"
PROFILE, OTHER_PROFILE, ASSESSMENT, ROLE = "pProf00001", "pProf00002", "asmt000001", "role000001"
PASSWORDS = {"mongo.patient": "patient's old passphrase", "mongo.doctor": "doctor's passphrase"}


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def _relaxed(iso: str) -> dict[str, str]:
    return {"$date": iso}


def _canonical(millis: int) -> dict[str, dict[str, str]]:
    return {"$date": {"$numberLong": str(millis)}}


def _lines(docs: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(doc) + b"\n" for doc in docs)


def _own(*owners: str) -> dict[str, Any]:
    return {
        "_acl": {owner: {"r": True, "w": True} for owner in owners},
        "_rperm": list(owners),
        "_wperm": list(owners),
    }


def _write_export(directory: Path) -> None:
    directory.mkdir()
    schema = [
        {
            "_id": "PatientProfile",
            "objectId": "string",
            "user": "*_User",
            "medicalRecordNumber": "string",
            "displayName": "string",
            "isActive": "boolean",
            "dateOfBirth": "date",
            "_metadata": {"class_permissions": {}},
        },
        {
            "_id": "IntakeAssessment",
            "patient": "*PatientProfile",
            "assessor": "*_User",
            "assessmentDate": "date",
            "instrument": "string",
            "status": "string",
            "responses": "object",
        },
    ]
    (directory / "_SCHEMA.json").write_bytes(_lines(schema))
    users = [
        {
            "_id": uid,
            "username": name,
            "email": f"{name}@example.org",
            "_hashed_password": _hash(PASSWORDS[name]) if name in PASSWORDS else None,
            "_created_at": _relaxed("2025-03-01T09:00:00.000Z"),
            "_updated_at": _relaxed("2025-03-02T09:00:00.000Z"),
            "_email_verify_token": "never imported",
            **_own(uid),
        }
        for uid, name in (
            (PATIENT, "mongo.patient"),
            (DOCTOR, "mongo.doctor"),
            (OTHER, "mongo.other"),
        )
    ]
    users[2].pop("_hashed_password")
    (directory / "_User.json").write_bytes(_lines(users))
    role = {
        "_id": ROLE,
        "name": "provider",
        "_created_at": _relaxed("2025-03-01T09:00:00.000Z"),
        "_updated_at": _relaxed("2025-03-01T09:00:00.000Z"),
        "_acl": {"*": {"r": True}},
        "_rperm": ["*"],
        "_wperm": [],
    }
    (directory / "_Role.json").write_bytes(_lines([role]))
    join = [{"_id": "j1", "owningId": ROLE, "relatedId": DOCTOR}]
    (directory / "_Join-users-_Role.json").write_bytes(_lines(join))
    # PatientProfile in the canonical encoding, as one --jsonArray document.
    profiles = [
        {
            "_id": oid,
            "_p_user": f"_User${uid}",
            "medicalRecordNumber": mrn,
            "displayName": name,
            "isActive": True,
            "dateOfBirth": _canonical(638_928_000_000),  # 1990-04-01T00:00:00Z
            "_created_at": _canonical(1_740_819_600_000),
            "_updated_at": _canonical(1_740_819_600_000),
            **_own(uid, DOCTOR),
        }
        for oid, uid, mrn, name in (
            (PROFILE, PATIENT, "MRN-M1", "Mongo Patient"),
            (OTHER_PROFILE, OTHER, "MRN-M2", "Other Patient"),
        )
    ]
    (directory / "PatientProfile.json").write_bytes(orjson.dumps(profiles))
    assessment = {
        "_id": ASSESSMENT,
        "_p_patient": f"PatientProfile${PROFILE}",
        "_p_assessor": f"_User${DOCTOR}",
        "assessmentDate": _relaxed("2026-01-10T10:00:00.000Z"),
        "instrument": "PHQ-9",
        "status": "final",
        "responses": {f"item{i}": {"$numberInt": "1"} for i in range(1, 10)},
        "_created_at": _relaxed("2026-01-10T10:05:00.000Z"),
        "_updated_at": _relaxed("2026-01-10T10:05:00.000Z"),
        **_own(PATIENT, DOCTOR),
    }
    (directory / "IntakeAssessment.json").write_bytes(_lines([assessment]))


def test_mongoexport_imports_with_passwords_pointers_acls_and_dates(
    fresh_backend_url: str, tmp_path: Path
) -> None:
    backend = "postgres" if fresh_backend_url.startswith("postgres") else "sqlite"
    source = tmp_path / "mongo"
    _write_export(source)
    settings = make_settings(fresh_backend_url, tmp_path, mfa_required_roles="")

    report = import_export(settings, source)

    assert not report.failed, report.failed
    assert report.imported["_User"] == 3
    assert report.users_with_password == 2 and report.users_without_password == 1
    assert report.imported["PatientProfile"] == 2 and report.imported["IntakeAssessment"] == 1
    assert report.scored == 1
    assert report.roles_merged == ["provider"] and report.memberships == 1
    assert "_User._email_verify_token" in report.dropped_fields
    again = import_export(settings, source)  # idempotent
    assert not again.imported and again.already_present["_User"] == 3

    with live_server(settings, backend) as live:
        api = live.client()
        tokens = {}
        for name, password in PASSWORDS.items():
            login = api.post("/login", {"username": name, "password": password})
            assert login.status_code == 200, (name, login.text)
            tokens[name] = login.json()["sessionToken"]
            assert api.post("/login", {"username": name, "password": "wrong"}).status_code == 404
        assert tokens  # the bcrypt hashes from MongoDB verified
        as_patient = {"X-Parse-Session-Token": tokens["mongo.patient"]}
        as_doctor = {"X-Parse-Session-Token": tokens["mongo.doctor"]}

        mine = api.get(f"/classes/PatientProfile/{PROFILE}", headers=as_patient)
        assert mine.status_code == 200, mine.text
        body = mine.json()
        assert body["medicalRecordNumber"] == "MRN-M1"
        assert body["user"] == {"__type": "Pointer", "className": "_User", "objectId": PATIENT}
        assert body["dateOfBirth"] == {"__type": "Date", "iso": "1990-04-01T00:00:00.000Z"}
        assert body["createdAt"] == "2025-03-01T09:00:00.000Z"
        # The _acl came along: another patient's profile stays hidden from this one.
        theirs = api.get(f"/classes/PatientProfile/{OTHER_PROFILE}", headers=as_patient)
        assert theirs.status_code == 404

        scored = api.get(f"/classes/IntakeAssessment/{ASSESSMENT}", headers=as_doctor)
        assert scored.status_code == 200, scored.text
        got = scored.json()
        assert got["patient"]["objectId"] == PROFILE and got["score"] == 9
        assert got["responses"]["item1"] == 1  # {"$numberInt": "1"} read as a number
        assert got["assessmentDate"]["iso"] == "2026-01-10T10:00:00.000Z"

        # The doctor's membership came from the _Join collection into the merged role.
        provider = api.find("_Role", where={"name": "provider"})["results"]
        assert len(provider) == 1
        members = api.find(
            "_User",
            where={
                "$relatedTo": {
                    "object": {
                        "__type": "Pointer",
                        "className": "_Role",
                        "objectId": provider[0]["objectId"],
                    },
                    "key": "users",
                }
            },
        )["results"]
        assert DOCTOR in {m["objectId"] for m in members}
