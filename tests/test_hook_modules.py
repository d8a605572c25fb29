"""A deployer's cloud-code module (examples/clinic_rules.py) loaded through configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.domain.clinic import clinic
from tests.support import pointer

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_deployer_hooks_and_functions_run(
    backend_url: str, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    with clinic(backend_url, backend, tmp_path, hook_modules="clinic_rules") as c:
        hello = c.call("patient", "hello").json()
        assert hello == {"result": {"hello": c.users["patient"]}}
        body = {
            "patient": pointer("PatientProfile", c.patient),
            "provider": pointer("_User", c.users["provider"]),
            "startAt": {"__type": "Date", "iso": "2031-05-01T10:00:00.000Z"},
            "endAt": {"__type": "Date", "iso": "2031-05-01T11:00:00.000Z"},
            "status": "scheduled",
        }
        refused = c.api.post("/classes/Appointment", body, headers=c.as_("provider"))
        assert refused.json() == {"code": 142, "error": "Say why the visit is booked."}
        booked = c.api.post(
            "/classes/Appointment", {**body, "reason": "follow-up"}, headers=c.as_("provider")
        )
        assert booked.status_code == 201, booked.text
