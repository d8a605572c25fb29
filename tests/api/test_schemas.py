"""``/schemas`` and ``/purge``: master key only, Parse's shapes and validation errors."""

from __future__ import annotations

import json

from tests.support import ParseClient, unique_class


def test_schemas_need_the_master_key(client: ParseClient) -> None:
    for method, path in (
        ("GET", "/schemas"),
        ("GET", "/schemas/Message"),
        ("POST", "/schemas/Foo"),
        ("PUT", "/schemas/Message"),
        ("DELETE", "/schemas/Message"),
        ("DELETE", "/purge/Message"),
    ):
        response = client.request(method, path, json={} if method != "GET" else None)
        assert response.status_code == 403, (method, path, response.text)


def test_builtin_schema_lists_the_reconciled_model(client: ParseClient) -> None:
    body = client.get("/schemas", master=True).json()
    names = {s["className"] for s in body["results"]}
    assert {
        "_User",
        "_Role",
        "_Session",
        "PatientProfile",
        "ProviderProfile",
        "IntakeAssessment",
        "CrisisInterventionLog",
        "Message",
        "Appointment",
        "AuditLog",
    } <= names
    message = client.get("/schemas/Message", master=True).json()
    assert message["fields"]["to"] == {"type": "Pointer", "targetClass": "_User", "required": True}
    assert message["fields"]["objectId"] == {"type": "String"}
    assert message["fields"]["ACL"] == {"type": "ACL"}
    assert message["classLevelPermissions"]["find"] == {"requiresAuthentication": True}
    audit = client.get("/schemas/AuditLog", master=True).json()
    assert audit["classLevelPermissions"]["create"] == {}


def test_create_add_field_delete_field_delete_class(client: ParseClient) -> None:
    cls = unique_class()
    created = client.post(
        f"/schemas/{cls}",
        {
            "className": cls,
            "fields": {
                "name": {"type": "String", "required": True},
                "owner": {"type": "Pointer", "targetClass": "_User"},
                "members": {"type": "Relation", "targetClass": "_User"},
            },
        },
        master=True,
    )
    assert created.status_code == 200, created.text
    assert created.json()["fields"]["owner"] == {"type": "Pointer", "targetClass": "_User"}
    again = client.post(f"/schemas/{cls}", {"className": cls}, master=True)
    assert again.json() == {"code": 103, "error": f"Class {cls} already exists."}

    added = client.put(f"/schemas/{cls}", {"fields": {"age": {"type": "Number"}}}, master=True)
    assert added.json()["fields"]["age"] == {"type": "Number"}
    oid = client.create(cls, {"name": "x", "age": 3})
    exists = client.put(f"/schemas/{cls}", {"fields": {"age": {"type": "String"}}}, master=True)
    assert exists.json() == {"code": 255, "error": "Field age exists, cannot update."}
    resent = client.put(
        f"/schemas/{cls}",
        {"fields": {"age": {"type": "Number"}, "b": {"type": "Boolean"}}},
        master=True,
    )
    assert resent.status_code == 200 and "b" in resent.json()["fields"]  # SDK resends fields

    not_empty = client.delete(f"/schemas/{cls}", master=True)
    assert not_empty.json() == {
        "code": 255,
        "error": f"Class {cls} is not empty, contains 1 objects, cannot drop schema.",
    }

    dropped = client.put(f"/schemas/{cls}", {"fields": {"age": {"__op": "Delete"}}}, master=True)
    assert "age" not in dropped.json()["fields"]
    assert "age" not in client.get(f"/classes/{cls}/{oid}", master=True).json()
    missing = client.put(f"/schemas/{cls}", {"fields": {"nope": {"__op": "Delete"}}}, master=True)
    assert missing.json()["code"] == 255

    assert client.delete(f"/purge/{cls}", master=True).json() == {}
    assert client.find(cls, count=1, limit=0)["count"] == 0
    assert client.delete(f"/schemas/{cls}", master=True).json() == {}
    gone = client.get(f"/schemas/{cls}", master=True)
    assert gone.json() == {"code": 103, "error": f"Class {cls} does not exist."}


def test_schema_validation_errors(client: ParseClient) -> None:
    cls = unique_class()
    cases = [
        ({"className": "1bad"}, 103),
        ({"className": cls, "fields": {"bad-name": {"type": "String"}}}, 105),
        ({"className": cls, "fields": {"objectId": {"type": "String"}}}, 105),
        ({"className": cls, "fields": {"x": {"type": "Nope"}}}, 111),
        ({"className": cls, "fields": {"x": {"type": "Pointer"}}}, 103),
        ({"className": cls, "classLevelPermissions": {"steal": {"*": True}}}, 107),
        ({"className": cls, "indexes": {"i": {"missing": 1}}}, 102),  # as Parse
    ]
    for body, code in cases:
        response = client.post("/schemas", body, master=True)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["code"] == code, (body, response.json())
    assert client.get(f"/schemas/{cls}", master=True).json()["code"] == 103


def test_builtin_classes_and_fields_cannot_be_removed(client: ParseClient) -> None:
    assert client.delete("/schemas/PatientProfile", master=True).json()["code"] == 255
    response = client.put(
        "/schemas/PatientProfile",
        {"fields": {"medicalRecordNumber": {"__op": "Delete"}}},
        master=True,
    )
    assert response.json()["code"] == 255


def test_a_query_on_a_class_that_does_not_exist_is_still_validated(client: ParseClient) -> None:
    """As Parse (it pretends the class exists and validates the query): an empty answer for a
    well-formed query, 102/107 for a malformed one, never an empty answer hiding the error."""
    cls = unique_class()

    def find(where: dict[str, object]) -> tuple[int, object]:
        response = client.get(f"/classes/{cls}", master=True, params={"where": json.dumps(where)})
        body = response.json()
        return response.status_code, body.get("code", body.get("results"))

    assert find({"myString": {"$regex": "football"}}) == (200, [])
    assert find({"myString": {"$regex": "football", "$options": "some invalid thing"}}) == (
        400,
        102,
    )
    assert find({"location": {"$geoWithin": {"$polygon": 1234}}}) == (400, 107)
    assert client.get(f"/schemas/{cls}", master=True).status_code == 400  # still no class


def test_clients_cannot_create_classes_or_fields(client: ParseClient) -> None:
    cls = unique_class()
    for path in (f"/classes/{cls}", f"/classes/{cls}/abcdefghij"):
        read = client.get(path)
        assert read.json() == {
            "code": 119,
            "error": f"This user is not allowed to access non-existent class: {cls}",
        }
    assert client.get(f"/classes/{cls}", master=True).json() == {"results": []}
    refused = client.post(f"/classes/{cls}", {"a": 1})
    assert refused.status_code == 400
    assert refused.json() == {
        "code": 119,
        "error": f"This user is not allowed to access non-existent class: {cls}",
    }
    client.create_class(cls, {"a": {"type": "Number"}})
    new_field = client.post(f"/classes/{cls}", {"a": 1, "b": 2})
    assert new_field.json()["code"] == 119
    assert client.post(f"/classes/{cls}", {"a": 1}).status_code == 201
    assert "b" not in client.get(f"/schemas/{cls}", master=True).json()["fields"]
