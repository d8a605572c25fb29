"""A small clinic over HTTP for workflow tests: a patient, their provider, an outsider."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import ParseClient, live_server, make_settings, pointer

PASSWORD = "a long enough passphrase"


@dataclass
class Clinic:
    api: ParseClient
    tokens: dict[str, str]
    users: dict[str, str]
    patient: str  # PatientProfile id

    def as_(self, who: str) -> dict[str, str]:
        return {"X-Parse-Session-Token": self.tokens[who]}

    def call(self, who: str, name: str, **params: Any) -> Any:
        return self.api.post(f"/functions/{name}", params, headers=self.as_(who))

    def entries(self, **where: Any) -> list[dict[str, Any]]:
        found = self.api.get(
            "/classes/AuditLog", master=True, params={"where": where, "limit": "1000"}
        )
        return list(found.json()["results"])


def make_user(api: ParseClient, role: str) -> tuple[str, str]:
    name = f"{role}_{uuid.uuid4().hex[:8]}"
    made = api.post("/users", {"username": name, "password": PASSWORD, "role": role}, master=True)
    assert made.status_code == 201, made.text
    login = api.post("/login", {"username": name, "password": PASSWORD})
    return str(made.json()["objectId"]), str(login.json()["sessionToken"])


@contextmanager
def clinic(backend_url: str, backend: str, tmp_path: Path, **settings: Any) -> Iterator[Clinic]:
    config = make_settings(
        backend_url, tmp_path, mfa_required_roles="", login_rate_per_ip=100_000, **settings
    )
    with live_server(config, backend) as live:
        api = live.client()
        users, tokens = {}, {}
        for who, role in (
            ("patient", "patient"),
            ("other", "patient"),
            ("provider", "provider"),
            ("outsider", "provider"),
            ("admin", "admin"),
            ("compliance", "compliance"),
        ):
            users[who], tokens[who] = make_user(api, role)
        profile = api.create(
            "PatientProfile",
            {
                "user": pointer("_User", users["patient"]),
                "medicalRecordNumber": uuid.uuid4().hex,
                "displayName": "Pat",
                "isActive": True,
            },
        )
        assigned = api.post(
            "/functions/assignProvider",
            {"patientId": profile, "providerId": users["provider"]},
            master=True,
        )
        assert assigned.status_code == 200, assigned.text
        yield Clinic(api, tokens, users, profile)
