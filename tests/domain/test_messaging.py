"""Secure messaging over HTTP on both backends: immutable content, receipts only from the
recipient and only forwards, server timestamps, the inbox (listConversations) and retention."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from mindharbor.domain.messaging import purge_expired_messages
from mindharbor.domain.registry import build_hooks
from mindharbor.security.auth import Auth
from mindharbor.settings import Settings
from mindharbor.storage.codec import utcnow
from mindharbor.storage.db import Store
from tests.support import LiveServer, ParseClient, live_server, make_settings, pointer

PASSWORD = "a long enough passphrase"


@dataclass
class Person:
    user_id: str
    token: str


@dataclass
class Clinic:
    live: LiveServer
    api: ParseClient

    def person(self, role: str) -> Person:
        name = f"{role}_{uuid.uuid4().hex[:8]}"
        made = self.api.post(
            "/users", {"username": name, "password": PASSWORD, "role": role}, master=True
        )
        assert made.status_code == 201, made.text
        login = self.api.post("/login", {"username": name, "password": PASSWORD})
        assert login.status_code == 200, login.text
        return Person(str(made.json()["objectId"]), str(login.json()["sessionToken"]))

    def patient(self, clinic: str | None = None) -> tuple[Person, str]:
        """A patient account and its profile."""
        person = self.person("patient")
        body: dict[str, Any] = {
            "user": pointer("_User", person.user_id),
            "medicalRecordNumber": uuid.uuid4().hex,
            "displayName": "Patient",
            "isActive": True,
        }
        if clinic is not None:
            body["primaryClinic"] = clinic
        return person, self.api.create("PatientProfile", body)

    def assign(self, profile: str, provider: Person) -> None:
        done = self.api.post(
            "/functions/assignProvider",
            {"patientId": profile, "providerId": provider.user_id},
            master=True,
        )
        assert done.status_code == 200, done.text

    def call(self, who: Person | None, method: str, path: str, **kw: Any) -> Any:
        headers = {"X-Parse-Session-Token": who.token} if who else {}
        return self.api.request(method, path, headers=headers, **kw)

    def send(
        self, sender: Person, to: Person, profile: str, conversation: str, text: str = "hi"
    ) -> str:
        sent = self.call(
            sender,
            "POST",
            "/classes/Message",
            json={
                "conversationId": conversation,
                "to": pointer("_User", to.user_id),
                "patient": pointer("PatientProfile", profile),
                "body": text,
            },
        )
        assert sent.status_code == 201, sent.text
        return str(sent.json()["objectId"])

    def message(self, object_id: str) -> dict[str, Any]:
        got = self.api.get(f"/classes/Message/{object_id}", master=True)
        assert got.status_code == 200, got.text
        return dict(got.json())

    def threads(self, who: Person | None, **params: Any) -> Any:
        return self.call(who, "POST", "/functions/listConversations", json=params)


def _settings(url: str, tmp: Path) -> Settings:
    return make_settings(url, tmp, mfa_required_roles="", login_rate_per_ip=100_000)


@pytest.fixture(scope="module")
def clinic(
    backend_url: str, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Clinic]:
    with live_server(_settings(backend_url, tmp_path_factory.mktemp("msg")), backend) as live:
        yield Clinic(live, live.client())


@pytest.fixture
def thread(clinic: Clinic) -> tuple[Person, Person, str, str]:
    """(patient, provider on their care team, patient profile id, a new conversation id)."""
    patient, profile = clinic.patient()
    provider = clinic.person("provider")
    clinic.assign(profile, provider)
    return patient, provider, profile, f"conv-{uuid.uuid4().hex[:8]}"


def _code(response: Any) -> int | None:
    return None if response.status_code in (200, 201) else response.json().get("code")


def test_sender_timestamps_and_receipts_are_the_servers(clinic: Clinic, thread: Any) -> None:
    patient, provider, profile, conv = thread
    base = {
        "conversationId": conv,
        "to": pointer("_User", provider.user_id),
        "patient": pointer("PatientProfile", profile),
        "body": "hello",
    }
    stamp = {"__type": "Date", "iso": "2020-01-01T00:00:00.000Z"}
    for extra in (
        {"from": pointer("_User", provider.user_id)},
        {"deliveredAt": stamp},
        {"readAt": stamp},
    ):
        refused = clinic.call(patient, "POST", "/classes/Message", json={**base, **extra})
        assert _code(refused) == 119, (extra, refused.text)
    for extra in ({"status": "read"}, {"status": "delivered"}, {"isRead": True}):
        refused = clinic.call(patient, "POST", "/classes/Message", json={**base, **extra})
        assert _code(refused) == 142, (extra, refused.text)
    before = utcnow().replace(microsecond=0)
    message = clinic.message(clinic.send(patient, provider, profile, conv))
    assert message["from"]["objectId"] == patient.user_id
    assert message["status"] == "sent" and message["isRead"] is False
    assert message["sentAt"]["iso"] >= before.isoformat()
    assert "deliveredAt" not in message and "readAt" not in message


def test_only_the_recipient_marks_delivered_and_read(clinic: Clinic, thread: Any) -> None:
    patient, provider, profile, conv = thread
    mine = clinic.send(patient, provider, profile, conv)
    path = f"/classes/Message/{mine}"
    for change in ({"isRead": True}, {"status": "delivered"}, {"status": "read"}):
        refused = clinic.call(patient, "PUT", path, json=change)
        assert _code(refused) == 119, (change, refused.text)
    assert clinic.message(mine)["status"] == "sent"
    delivered = clinic.call(provider, "PUT", path, json={"status": "delivered"})
    assert delivered.status_code == 200, delivered.text
    message = clinic.message(mine)
    assert message["status"] == "delivered" and message["isRead"] is False
    assert "deliveredAt" in message and "readAt" not in message
    read = clinic.call(provider, "PUT", path, json={"isRead": True})
    assert read.status_code == 200, read.text
    message = clinic.message(mine)
    assert message["status"] == "read" and message["isRead"] is True
    assert message["readAt"]["iso"] >= message["deliveredAt"]["iso"]
    again = clinic.call(provider, "PUT", path, json={"isRead": True})  # idempotent
    assert again.status_code == 200, again.text
    assert clinic.message(mine)["readAt"] == message["readAt"]


def test_status_only_moves_forward(clinic: Clinic, thread: Any) -> None:
    patient, provider, profile, conv = thread
    theirs = clinic.send(provider, patient, profile, conv)
    path = f"/classes/Message/{theirs}"
    assert _code(clinic.call(patient, "PUT", path, json={"status": "unknown"})) == 142
    assert _code(clinic.call(patient, "PUT", path, json={"status": "read"})) is None
    message = clinic.message(theirs)
    assert message["isRead"] is True  # status read implies isRead
    assert message["deliveredAt"] == message["readAt"]  # read implies delivered
    for change in (
        {"status": "delivered"},
        {"status": "sent"},
        {"isRead": False},
        {"isRead": True, "status": "delivered"},
    ):
        refused = clinic.call(patient, "PUT", path, json=change)
        assert _code(refused) == 142, (change, refused.text)
    assert clinic.message(theirs)["status"] == "read"


def test_a_sent_message_is_immutable(clinic: Clinic, thread: Any) -> None:
    patient, provider, profile, conv = thread
    colleague = clinic.person("provider")
    _, other_profile = clinic.patient()
    for team in (profile, other_profile):
        clinic.assign(team, provider)
        clinic.assign(team, colleague)
    # New values the care-team rules accept, so it is immutability that refuses them.
    changes = (
        {"body": "edited"},
        {"conversationId": "elsewhere"},
        {"attachments": []},
        {"to": pointer("_User", colleague.user_id)},
    )
    theirs = clinic.send(provider, patient, profile, conv, "original text")
    for change in changes:
        for who in (provider, patient):  # the sender and the recipient
            refused = clinic.call(who, "PUT", f"/classes/Message/{theirs}", json=change)
            assert _code(refused) == 119, (change, refused.text)
    between_staff = clinic.send(provider, colleague, profile, conv, "handover note")
    moved = clinic.call(
        colleague,
        "PUT",
        f"/classes/Message/{between_staff}",
        json={"patient": pointer("PatientProfile", other_profile)},
    )
    assert _code(moved) == 119, moved.text
    by_master = clinic.api.put(f"/classes/Message/{theirs}", {"body": "edited"}, master=True)
    assert _code(by_master) == 119, by_master.text
    assert clinic.message(theirs)["body"] == "original text"
    assert clinic.message(between_staff)["patient"]["objectId"] == profile


def test_list_conversations(clinic: Clinic) -> None:
    patient, profile = clinic.patient()
    provider = clinic.person("provider")
    clinic.assign(profile, provider)
    first, second = f"c1-{uuid.uuid4().hex[:6]}", f"c2-{uuid.uuid4().hex[:6]}"
    clinic.send(patient, provider, profile, first, "question")
    clinic.send(provider, patient, profile, first, "answer 1")
    last_of_first = clinic.send(provider, patient, profile, first, "answer 2")
    last_of_second = clinic.send(provider, patient, profile, second, "reminder")
    # A second patient with their own provider and thread.
    other, other_profile = clinic.patient()
    other_provider = clinic.person("provider")
    clinic.assign(other_profile, other_provider)
    other_conv = f"c3-{uuid.uuid4().hex[:6]}"
    other_last = clinic.send(other_provider, other, other_profile, other_conv, "other")

    listed = clinic.threads(patient)
    assert listed.status_code == 200, listed.text
    threads = listed.json()["result"]
    assert [t["conversationId"] for t in threads] == [second, first]  # newest first
    assert [t["unreadCount"] for t in threads] == [1, 2]
    assert [t["lastMessage"]["objectId"] for t in threads] == [last_of_second, last_of_first]
    # The last message is exactly what the REST API gives the same caller.
    rest = clinic.call(patient, "GET", f"/classes/Message/{last_of_first}").json()
    assert threads[1]["lastMessage"] == rest
    assert threads[1]["patient"] == pointer("PatientProfile", profile)

    provider_view = clinic.threads(provider).json()["result"]
    assert {t["conversationId"]: t["unreadCount"] for t in provider_view} == {first: 1, second: 0}

    other_view = clinic.threads(other).json()["result"]
    assert [t["conversationId"] for t in other_view] == [other_conv]
    assert other_view[0]["lastMessage"]["objectId"] == other_last
    assert [t["conversationId"] for t in clinic.threads(other_provider).json()["result"]] == [
        other_conv
    ]

    paged = [clinic.threads(patient, limit=1, skip=n).json()["result"] for n in (0, 1, 2)]
    assert [[t["conversationId"] for t in page] for page in paged] == [[second], [first], []]
    assert _code(clinic.threads(patient, limit=-1)) == 141
    assert _code(clinic.threads(None)) == 119

    # Reading a thread clears its unread count.
    for message in clinic.call(
        patient, "GET", "/classes/Message", params={"where": {"conversationId": first}}
    ).json()["results"]:
        if message["to"]["objectId"] == patient.user_id:
            path = f"/classes/Message/{message['objectId']}"
            assert clinic.call(patient, "PUT", path, json={"isRead": True}).status_code == 200
    assert [t["unreadCount"] for t in clinic.threads(patient).json()["result"]] == [1, 0]

    # The inbox is a PHI read like any other: the ids it returned are in the access log.
    reads = clinic.api.get(
        "/classes/AuditLog",
        master=True,
        params={
            "where": {"actor": pointer("_User", other.user_id), "action": "phi.read"},
            "order": "-createdAt",
            "limit": "1",
        },
    ).json()["results"]
    assert reads and reads[0]["metadata"]["ids"] == {"Message": [other_last]}


# -- retention ---------------------------------------------------------------------------------
async def _purge(settings: Settings, days_ahead: int) -> dict[str, Any]:
    store = Store(settings, build_hooks(settings))
    try:
        await store.reload_schemas()
        async with store.unit_of_work(Auth.system()) as repo:
            return await purge_expired_messages(repo, now=utcnow() + timedelta(days=days_ahead))
    finally:
        await store.close()


def test_purge_removes_only_expired_unheld_messages_and_audits_it(
    fresh_backend_url: str, tmp_path: Path
) -> None:
    backend = "postgres" if fresh_backend_url.startswith("postgres") else "sqlite"
    settings = _settings(fresh_backend_url, tmp_path)
    with live_server(settings, backend) as live:
        clinic = Clinic(live, live.client())
        admin, provider = clinic.person("admin"), clinic.person("provider")
        north, north_profile = clinic.patient("North")
        south, south_profile = clinic.patient("South")
        nowhere, nowhere_profile = clinic.patient()
        for profile in (north_profile, south_profile, nowhere_profile):
            clinic.assign(profile, provider)
        n1 = clinic.send(provider, north, north_profile, "n", "secret north one")
        n2 = clinic.send(provider, north, north_profile, "n", "secret north two")
        s1 = clinic.send(provider, south, south_profile, "s", "secret south")
        z1 = clinic.send(provider, nowhere, nowhere_profile, "z", "secret nowhere")

        def fn(who: Person, name: str, params: dict[str, Any]) -> Any:
            return clinic.call(who, "POST", f"/functions/{name}", json=params)

        north_policy = {"clinic": "North", "days": 30}
        assert _code(fn(provider, "setRetentionPolicy", north_policy)) == 119
        assert _code(fn(admin, "setRetentionPolicy", {"clinic": "North", "days": 0})) == 141
        assert _code(fn(admin, "setRetentionPolicy", north_policy)) is None
        assert _code(fn(admin, "setRetentionPolicy", {"clinic": "*", "days": 90})) is None
        hold = {"messageId": n2, "hold": True, "reason": "litigation 2026-17"}
        assert _code(fn(provider, "setLegalHold", hold)) == 119
        assert _code(fn(admin, "setLegalHold", {**hold, "reason": ""})) == 141
        assert _code(fn(admin, "setLegalHold", {**hold, "messageId": "missing000"})) == 101
        assert _code(fn(admin, "setLegalHold", hold)) is None

        def exists(object_id: str) -> bool:
            return clinic.api.get(f"/classes/Message/{object_id}", master=True).status_code == 200

        first = asyncio.run(_purge(settings, 31))  # North's 30 days have passed, not the 90
        assert first == {"purged": 1, "ids": [n1], "more": False}
        assert [exists(m) for m in (n1, n2, s1, z1)] == [False, True, True, True]
        second = asyncio.run(_purge(settings, 91))  # the default ("*") now applies too
        assert sorted(second["ids"]) == sorted([s1, z1])
        assert exists(n2)  # held
        release = {"messageId": n2, "hold": False}
        assert _code(fn(admin, "setLegalHold", release)) is None
        assert asyncio.run(_purge(settings, 91))["ids"] == [n2]
        assert asyncio.run(_purge(settings, 91))["ids"] == []

        entries = clinic.api.get(
            "/classes/AuditLog",
            master=True,
            params={"where": {"action": "message.purge"}, "order": "createdAt"},
        ).json()["results"]
        assert [e["metadata"]["count"] for e in entries] == [1, 2, 1]  # none for empty runs
        assert entries[0]["metadata"]["ids"] == [n1]
        assert entries[0]["entityId"] == n1 and entries[1]["entityId"] == "*"
        actions = {
            e["action"]
            for e in clinic.api.get(
                "/classes/AuditLog", master=True, params={"limit": "1000"}
            ).json()["results"]
        }
        assert {
            "message.retention.set",
            "message.legalHold.place",
            "message.legalHold.release",
        } <= actions
        dump = orjson.dumps(
            clinic.api.get("/classes/AuditLog", master=True, params={"limit": "1000"}).json()
        ).decode()
        assert "secret" not in dump and "litigation" not in dump
