"""Nested roles, pointer permissions and protected fields configured through /schemas."""

from __future__ import annotations

import uuid

from tests.support import ParseClient, pointer, unique_class

PASSWORD = "a long enough passphrase"


def _user(client: ParseClient, role: str = "patient") -> tuple[str, str]:
    name = f"u_{uuid.uuid4().hex[:10]}"
    created = client.post(
        "/users", {"username": name, "password": PASSWORD, "role": role}, master=True
    )
    assert created.status_code == 201, created.text
    token = client.post("/login", {"username": name, "password": PASSWORD}).json()
    return str(created.json()["objectId"]), str(token["sessionToken"])


def _as(token: str) -> dict[str, str]:
    return {"X-Parse-Session-Token": token}


def test_nested_roles_grant_inherited_rights_and_changes_apply_at_once(client: ParseClient) -> None:
    user_id, token = _user(client)
    cls = unique_class()
    client.create_class(cls, {"v": {"type": "Number"}})
    parent, child = f"parent_{uuid.uuid4().hex[:6]}", f"child_{uuid.uuid4().hex[:6]}"
    admin_acl = {"role:admin": {"read": True, "write": True}}
    parent_id = client.post("/roles", {"name": parent, "ACL": admin_acl}, master=True).json()[
        "objectId"
    ]
    child_id = client.post(
        "/roles",
        {
            "name": child,
            "ACL": admin_acl,
            "users": {"__op": "AddRelation", "objects": [pointer("_User", user_id)]},
        },
        master=True,
    ).json()["objectId"]
    obj = client.create(cls, {"v": 1, "ACL": {f"role:{parent}": {"read": True}}})
    assert client.get(f"/classes/{cls}/{obj}", headers=_as(token)).status_code == 404
    # parent.roles contains child: members of child inherit parent's rights.
    linked = client.put(
        f"/roles/{parent_id}",
        {"roles": {"__op": "AddRelation", "objects": [pointer("_Role", child_id)]}},
        master=True,
    )
    assert linked.status_code == 200, linked.text
    assert client.get(f"/classes/{cls}/{obj}", headers=_as(token)).status_code == 200
    client.put(
        f"/roles/{child_id}",
        {"users": {"__op": "RemoveRelation", "objects": [pointer("_User", user_id)]}},
        master=True,
    )
    assert client.get(f"/classes/{cls}/{obj}", headers=_as(token)).status_code == 404


def test_roles_are_managed_by_admins_and_validated(client: ParseClient) -> None:
    _, patient = _user(client)
    _, admin = _user(client, "admin")
    acl = {"role:admin": {"read": True, "write": True}}
    refused = client.post(
        "/roles", {"name": f"r{uuid.uuid4().hex[:6]}", "ACL": acl}, headers=_as(patient)
    )
    assert refused.json()["code"] == 119
    bad = client.post("/roles", {"name": "bad/name", "ACL": acl}, headers=_as(admin))
    assert bad.json()["code"] == 139
    name = f"r{uuid.uuid4().hex[:6]}"
    made = client.post("/roles", {"name": name, "ACL": acl}, headers=_as(admin))
    assert made.status_code == 201, made.text
    renamed = client.put(f"/roles/{made.json()['objectId']}", {"name": "other"}, headers=_as(admin))
    assert renamed.json()["code"] == 139
    team = client.post("/roles", {"name": "careTeam_x", "ACL": acl}, headers=_as(admin))
    assert team.json()["code"] == 119


def test_pointer_permissions_and_protected_fields_via_schemas(client: ParseClient) -> None:
    owner_id, owner = _user(client)
    _, other = _user(client)
    cls = unique_class()
    client.create_class(
        cls,
        {
            "owner": {"type": "Pointer", "targetClass": "_User"},
            "secret": {"type": "String"},
            "label": {"type": "String"},
        },
        clp={
            "find": {"requiresAuthentication": True},
            "get": {"requiresAuthentication": True},
            "readUserFields": ["owner"],
            "protectedFields": {"*": ["secret"], "userField:owner": []},
        },
    )
    # readUserFields: with requiresAuthentication granted the class, pointer perms do not narrow.
    client.put(
        f"/schemas/{cls}",
        {
            "classLevelPermissions": {
                "find": {"pointerFields": ["owner"]},
                "get": {"pointerFields": ["owner"]},
                "protectedFields": {"*": ["secret"]},
            }
        },
        master=True,
    )
    obj = client.create(
        cls,
        {
            "owner": pointer("_User", owner_id),
            "secret": "s",
            "label": "l",
            "ACL": {"*": {"read": True}},
        },
    )
    mine = client.get(f"/classes/{cls}", headers=_as(owner)).json()["results"]
    assert [o["objectId"] for o in mine] == [obj]
    assert "secret" not in mine[0] and mine[0]["label"] == "l"
    assert client.get(f"/classes/{cls}", headers=_as(other)).json()["results"] == []
    probe = client.get(
        f"/classes/{cls}", params={"where": {"secret": {"$regex": "^s"}}}, headers=_as(owner)
    )
    assert probe.json()["code"] == 119
    assert client.get(f"/classes/{cls}/{obj}", master=True).json()["secret"] == "s"
