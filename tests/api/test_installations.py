"""``_Installation`` over REST as Parse Server's RestWrite handles it (create or update by
installationId, deviceToken dedup, 135/136/132), each client confined to its own installation,
and ``/push`` answering Parse's "push not configured"."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.support import ParseClient


def _iid() -> str:
    return str(uuid.uuid4())


def _as(iid: str) -> dict[str, str]:
    return {"X-Parse-Installation-Id": iid}


def _code(response: Any) -> int | None:
    return None if response.status_code in (200, 201) else response.json().get("code")


@pytest.mark.parametrize("base", ["/installations", "/classes/_Installation"])
def test_a_client_creates_then_updates_its_installation_by_installation_id(
    client: ParseClient, base: str
) -> None:
    iid = _iid()
    made = client.post(base, {"installationId": iid.upper(), "deviceType": "ios"})
    assert made.status_code == 201, made.text
    object_id = made.json()["objectId"]
    again = client.post(base, {"installationId": iid, "channels": ["news"]})
    assert again.status_code == 200, again.text  # the same device: an update, not a new row
    assert again.json()["objectId"] == object_id and "updatedAt" in again.json()
    stored = client.get(f"/installations/{object_id}", master=True).json()
    assert stored["installationId"] == iid  # lower-cased, as Parse
    assert (stored["deviceType"], stored["channels"]) == ("ios", ["news"])
    mine = client.get(f"{base}/{object_id}", headers=_as(iid))
    assert mine.status_code == 200 and mine.json()["channels"] == ["news"], mine.text
    put = client.put(f"{base}/{object_id}", {"badge": 3}, headers=_as(iid))
    assert put.status_code == 200, put.text
    assert client.get(f"/installations/{object_id}", master=True).json()["badge"] == 3


def test_another_client_neither_reads_nor_writes_it(client: ParseClient) -> None:
    iid = _iid()
    object_id = client.post("/installations", {"installationId": iid, "deviceType": "web"}).json()[
        "objectId"
    ]
    stranger = _as(_iid())
    assert _code(client.get(f"/installations/{object_id}", headers=stranger)) == 101
    assert _code(client.get(f"/installations/{object_id}")) == 101
    assert _code(client.put(f"/installations/{object_id}", {"badge": 1}, headers=stranger)) == 101
    listed = client.get("/installations", headers=_as(iid))
    assert _code(listed) == 119 and "find" in listed.json()["error"]
    assert _code(client.get("/classes/_Installation", headers=_as(iid))) == 119
    assert _code(client.delete(f"/installations/{object_id}", headers=_as(iid))) == 119
    assert client.get("/installations", master=True).status_code == 200
    assert client.delete(f"/installations/{object_id}", master=True).status_code == 200


def test_parse_validation_codes(client: ParseClient) -> None:
    assert _code(client.post("/installations", {"deviceType": "ios"})) == 135
    assert _code(client.post("/installations", {"installationId": _iid()})) == 135
    iid = _iid()
    object_id = client.post("/installations", {"installationId": iid, "deviceType": "ios"}).json()[
        "objectId"
    ]
    changed = client.put(f"/installations/{object_id}", {"deviceType": "android"}, master=True)
    assert _code(changed) == 136, changed.text
    moved = client.put(f"/installations/{object_id}", {"installationId": _iid()}, master=True)
    assert _code(moved) == 136, moved.text
    acl = client.post("/installations", {"installationId": _iid(), "deviceType": "ios", "ACL": {}})
    assert _code(acl) == 119
    someone = {"__type": "Pointer", "className": "_User", "objectId": "someoneElse"}
    linked = client.post(
        "/installations", {"installationId": _iid(), "deviceType": "ios", "user": someone}
    )
    assert _code(linked) == 119


def test_a_device_token_names_one_device(client: ParseClient) -> None:
    token = uuid.uuid4().hex * 2  # 64 characters: an iOS token, lower-cased
    first = client.post(
        "/installations", {"installationId": _iid(), "deviceType": "ios", "deviceToken": token}
    ).json()["objectId"]
    second = client.post(
        "/installations",
        {"installationId": _iid(), "deviceType": "ios", "deviceToken": token.upper()},
    )
    assert second.status_code == 201, second.text
    assert _code(client.get(f"/installations/{first}", master=True)) == 101  # deleted, as Parse
    held = client.get(
        "/installations", master=True, params={"where": json.dumps({"deviceToken": token})}
    ).json()["results"]
    assert [row["objectId"] for row in held] == [second.json()["objectId"]]
    # A token alone (no installationId) updates the one installation that holds it.
    by_token = client.post(
        "/installations", {"deviceToken": token, "deviceType": "ios", "badge": 5}, master=True
    )
    assert by_token.status_code == 200, by_token.text
    assert by_token.json()["objectId"] == second.json()["objectId"]


def test_push_is_not_configured(client: ParseClient) -> None:
    refused = client.post("/push", {"channels": ["news"], "data": {"alert": "hi"}}, master=True)
    assert refused.status_code == 400 and refused.json() == {
        "code": 115,
        "error": "Missing push configuration",
    }
    both = client.post("/push", {"channels": ["a"], "where": {}, "data": {}}, master=True)
    assert both.json()["error"] == "Channels and query can not be set at the same time."
    assert client.post("/push", {"channels": ["a"], "data": {}}).status_code == 403
