"""Update operators and write validation over HTTP (parse-rest-reference.md §3.1, §6)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from tests.support import ParseClient, pointer, unique_class

FIELDS: dict[str, Any] = {
    "name": {"type": "String"},
    "n": {"type": "Number"},
    "flag": {"type": "Boolean"},
    "when": {"type": "Date"},
    "arr": {"type": "Array"},
    "meta": {"type": "Object"},
}


def make_class(client: ParseClient, extra: dict[str, Any] | None = None) -> str:
    cls = unique_class("Ops")
    client.create_class(cls, {**FIELDS, **(extra or {})})
    return cls


def put(client: ParseClient, cls: str, oid: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.put(f"/classes/{cls}/{oid}", body, master=True)
    assert response.status_code == 200, response.text
    return dict(response.json())


def fetch(client: ParseClient, cls: str, oid: str) -> dict[str, Any]:
    response = client.get(f"/classes/{cls}/{oid}", master=True)
    assert response.status_code == 200, response.text
    return dict(response.json())


def error(response: Any) -> tuple[int, int]:
    return response.status_code, response.json().get("code")


def inc(amount: float) -> dict[str, Any]:
    return {"__op": "Increment", "amount": amount}


# -- Increment ----------------------------------------------------------------------------------


def test_increment_echoes_new_value(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"n": 1})
    body = put(client, cls, oid, {"n": inc(5)})
    assert body["n"] == 6
    assert set(body) == {"n", "updatedAt"}
    assert fetch(client, cls, oid)["n"] == 6
    assert put(client, cls, oid, {"n": inc(1)})["n"] == 7
    assert fetch(client, cls, oid)["n"] == 7


def test_increment_negative_amount(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"n": 6})
    assert put(client, cls, oid, {"n": inc(-10)})["n"] == -4
    assert fetch(client, cls, oid)["n"] == -4


def test_increment_fractional_amount(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"n": 1})
    assert put(client, cls, oid, {"n": inc(1.5)})["n"] == 2.5
    assert fetch(client, cls, oid)["n"] == 2.5


def test_increment_missing_field_counts_as_zero(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"name": "x"})
    assert put(client, cls, oid, {"n": inc(3)})["n"] == 3
    assert fetch(client, cls, oid)["n"] == 3


def test_increment_on_create(client: ParseClient) -> None:
    cls = make_class(client)
    response = client.post(f"/classes/{cls}", {"n": inc(2)}, master=True)
    assert response.status_code == 201, response.text
    assert response.json()["n"] == 2
    assert fetch(client, cls, response.json()["objectId"])["n"] == 2


def test_increment_dotted_path_in_object(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"meta": {"count": 1, "other": "x"}})
    put(client, cls, oid, {"meta.count": inc(2)})
    assert fetch(client, cls, oid)["meta"] == {"count": 3, "other": "x"}
    put(client, cls, oid, {"meta.fresh": inc(4)})
    assert fetch(client, cls, oid)["meta"] == {"count": 3, "other": "x", "fresh": 4}
    # A dotted plain value sets one key and keeps the others.
    put(client, cls, oid, {"meta.other": "y"})
    assert fetch(client, cls, oid)["meta"] == {"count": 3, "other": "y", "fresh": 4}


def test_increment_dotted_nested_path(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"meta": {"a": {"b": {"c": 1}}}})
    put(client, cls, oid, {"meta.a.b.c": inc(1)})
    assert fetch(client, cls, oid)["meta"] == {"a": {"b": {"c": 2}}}


def test_dotted_path_into_a_non_object_field_is_111(client: ParseClient) -> None:
    """Parse: a path writes an Object, so on a String field it is a schema mismatch (111), not
    an invalid field name (105); the SDK's own spec checks the code."""
    cls = make_class(client)
    oid = client.create(cls, {"hello": "world"})
    response = client.put(f"/classes/{cls}/{oid}", {"hello.dot": inc(15)}, master=True)
    assert error(response) == (400, 111)
    assert response.json()["error"] == (
        f"schema mismatch for {cls}.hello; expected String but got Object"
    )
    assert fetch(client, cls, oid)["hello"] == "world"


def test_increment_non_number_field_is_111(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"name": "x"})
    response = client.put(f"/classes/{cls}/{oid}", {"name": inc(1)}, master=True)
    assert error(response) == (400, 111)
    assert fetch(client, cls, oid)["name"] == "x"


def test_concurrent_increments_sum_exactly(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"n": 0})
    failures: list[str] = []

    def worker() -> None:
        api = client.server.client()
        try:
            for _ in range(5):
                response = api.put(f"/classes/{cls}/{oid}", {"n": inc(1)}, master=True)
                if response.status_code != 200:
                    failures.append(response.text)
        finally:
            api.http.close()

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert fetch(client, cls, oid)["n"] == 100


def test_concurrent_adds_keep_every_item(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"arr": []})
    failures: list[str] = []

    def worker(i: int) -> None:
        api = client.server.client()
        try:
            response = api.put(
                f"/classes/{cls}/{oid}", {"arr": {"__op": "Add", "objects": [i]}}, master=True
            )
            if response.status_code != 200:
                failures.append(response.text)
        finally:
            api.http.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(fetch(client, cls, oid)["arr"]) == list(range(20))


# -- array ops ----------------------------------------------------------------------------------


def test_add(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"arr": [1]})
    body = put(client, cls, oid, {"arr": {"__op": "Add", "objects": [2, 1]}})
    assert body["arr"] == [1, 2, 1]
    assert fetch(client, cls, oid)["arr"] == [1, 2, 1]
    put(client, cls, oid, {"arr": {"__op": "Add", "objects": [{"k": "v"}, "s"]}})
    assert fetch(client, cls, oid)["arr"] == [1, 2, 1, {"k": "v"}, "s"]


def test_add_creates_missing_array(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"name": "x"})
    assert put(client, cls, oid, {"arr": {"__op": "Add", "objects": ["a", "b"]}})["arr"] == [
        "a",
        "b",
    ]
    assert fetch(client, cls, oid)["arr"] == ["a", "b"]


def test_add_unique(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"arr": [1, 2]})
    body = put(client, cls, oid, {"arr": {"__op": "AddUnique", "objects": [2, 3, 3]}})
    assert body["arr"] == [1, 2, 3]
    assert fetch(client, cls, oid)["arr"] == [1, 2, 3]
    put(client, cls, oid, {"arr": {"__op": "AddUnique", "objects": [{"a": 1}]}})
    put(client, cls, oid, {"arr": {"__op": "AddUnique", "objects": [{"a": 1}, {"a": 2}]}})
    assert fetch(client, cls, oid)["arr"] == [1, 2, 3, {"a": 1}, {"a": 2}]


def test_add_unique_compares_pointers_by_class_and_id(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"arr": [pointer("A", "x1")]})
    put(
        client,
        cls,
        oid,
        {
            "arr": {
                "__op": "AddUnique",
                "objects": [pointer("A", "x1"), pointer("A", "y1"), pointer("B", "x1")],
            }
        },
    )
    assert fetch(client, cls, oid)["arr"] == [
        pointer("A", "x1"),
        pointer("A", "y1"),
        pointer("B", "x1"),
    ]
    # Key order in the pointer JSON does not matter.
    put(
        client,
        cls,
        oid,
        {
            "arr": {
                "__op": "AddUnique",
                "objects": [{"objectId": "y1", "className": "A", "__type": "Pointer"}],
            }
        },
    )
    assert len(fetch(client, cls, oid)["arr"]) == 3


def test_remove(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"arr": [1, 2, 1, 3, "1"]})
    body = put(client, cls, oid, {"arr": {"__op": "Remove", "objects": [1]}})
    assert body["arr"] == [2, 3, "1"]
    assert fetch(client, cls, oid)["arr"] == [2, 3, "1"]
    put(client, cls, oid, {"arr": {"__op": "Remove", "objects": [9, 3, "1"]}})
    assert fetch(client, cls, oid)["arr"] == [2]


def test_remove_pointers_by_class_and_id(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"arr": [pointer("A", "x1"), pointer("B", "x1"), pointer("A", "y1")]})
    put(client, cls, oid, {"arr": {"__op": "Remove", "objects": [pointer("A", "x1")]}})
    assert fetch(client, cls, oid)["arr"] == [pointer("B", "x1"), pointer("A", "y1")]


def test_array_op_on_non_array_is_111(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"n": 1, "name": "x"})
    for body in (
        {"n": {"__op": "Add", "objects": [1]}},
        {"name": {"__op": "AddUnique", "objects": ["a"]}},
        {"n": {"__op": "Remove", "objects": [1]}},
    ):
        response = client.put(f"/classes/{cls}/{oid}", body, master=True)
        assert error(response) == (400, 111), body
    got = fetch(client, cls, oid)
    assert (got["n"], got["name"]) == (1, "x")


# -- Delete -------------------------------------------------------------------------------------


def test_delete_op_unsets_field(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"name": "x", "n": 1, "arr": [1]})
    put(client, cls, oid, {"name": {"__op": "Delete"}, "arr": {"__op": "Delete"}})
    got = fetch(client, cls, oid)
    assert "name" not in got and "arr" not in got
    assert got["n"] == 1
    found = client.find(cls, where={"name": {"$exists": False}})["results"]
    assert [r["objectId"] for r in found] == [oid]


# -- relations ----------------------------------------------------------------------------------


def relation_fixture(client: ParseClient) -> tuple[str, str, str, list[str]]:
    member = unique_class("Mem")
    client.create_class(member, {"label": {"type": "String"}})
    ids = [client.create(member, {"label": f"m{i}"}) for i in range(4)]
    owner = unique_class("Own")
    client.create_class(owner, {"members": {"type": "Relation", "targetClass": member}})
    oid = client.create(owner, {})
    return owner, oid, member, ids


def members(client: ParseClient, owner: str, oid: str, member: str) -> list[str]:
    where = {"$relatedTo": {"object": pointer(owner, oid), "key": "members"}}
    return sorted(r["objectId"] for r in client.find(member, where=where)["results"])


def test_add_and_remove_relation(client: ParseClient) -> None:
    owner, oid, member, ids = relation_fixture(client)
    put(
        client,
        owner,
        oid,
        {
            "members": {
                "__op": "AddRelation",
                "objects": [pointer(member, ids[0]), pointer(member, ids[1])],
            }
        },
    )
    assert members(client, owner, oid, member) == sorted(ids[:2])
    # Adding again is idempotent.
    put(
        client,
        owner,
        oid,
        {"members": {"__op": "AddRelation", "objects": [pointer(member, ids[0])]}},
    )
    assert members(client, owner, oid, member) == sorted(ids[:2])
    put(
        client,
        owner,
        oid,
        {"members": {"__op": "RemoveRelation", "objects": [pointer(member, ids[0])]}},
    )
    assert members(client, owner, oid, member) == [ids[1]]
    assert fetch(client, owner, oid)["members"] == {"__type": "Relation", "className": member}


def test_batch_relation_op(client: ParseClient) -> None:
    owner, oid, member, ids = relation_fixture(client)
    put(
        client,
        owner,
        oid,
        {
            "members": {
                "__op": "AddRelation",
                "objects": [pointer(member, ids[0]), pointer(member, ids[1])],
            }
        },
    )
    put(
        client,
        owner,
        oid,
        {
            "members": {
                "__op": "Batch",
                "ops": [
                    {
                        "__op": "AddRelation",
                        "objects": [pointer(member, ids[2]), pointer(member, ids[3])],
                    },
                    {"__op": "RemoveRelation", "objects": [pointer(member, ids[1])]},
                ],
            }
        },
    )
    assert members(client, owner, oid, member) == sorted([ids[0], ids[2], ids[3]])


def test_add_relation_on_create(client: ParseClient) -> None:
    owner, _, member, ids = relation_fixture(client)
    oid = client.create(
        owner, {"members": {"__op": "AddRelation", "objects": [pointer(member, ids[3])]}}
    )
    assert members(client, owner, oid, member) == [ids[3]]


def test_add_relation_wrong_class_is_111(client: ParseClient) -> None:
    owner, oid, member, ids = relation_fixture(client)
    response = client.put(
        f"/classes/{owner}/{oid}",
        {"members": {"__op": "AddRelation", "objects": [pointer("SomethingElse", ids[0])]}},
        master=True,
    )
    assert error(response) == (400, 111)
    assert members(client, owner, oid, member) == []


def test_add_relation_on_new_field_fixes_target_class(client: ParseClient) -> None:
    member = unique_class("Mem")
    client.create_class(member, {"label": {"type": "String"}})
    m = client.create(member, {"label": "m"})
    owner = unique_class("Own")
    client.create_class(owner, {"title": {"type": "String"}})
    oid = client.create(owner, {"title": "t"})
    put(client, owner, oid, {"friends": {"__op": "AddRelation", "objects": [pointer(member, m)]}})
    schema = client.get(f"/schemas/{owner}", master=True).json()
    assert schema["fields"]["friends"] == {"type": "Relation", "targetClass": member}
    where = {"$relatedTo": {"object": pointer(owner, oid), "key": "friends"}}
    assert [r["objectId"] for r in client.find(member, where=where)["results"]] == [m]


# -- type mismatches and schema on write --------------------------------------------------------


def test_type_mismatches_are_111(client: ParseClient) -> None:
    target = unique_class("Tgt")
    client.create_class(target, {"x": {"type": "String"}})
    cls = make_class(client, {"ref": {"type": "Pointer", "targetClass": target}})
    oid = client.create(cls, {"name": "x", "n": 1})
    for body in (
        {"n": "str"},
        {"name": 5},
        {"flag": "yes"},
        {"when": "2024-01-01T00:00:00.000Z"},
        {"arr": {"a": 1}},
        {"meta": [1, 2]},
        {"ref": pointer("OtherClass", "abc")},
        {"ref": "notapointer"},
    ):
        response = client.put(f"/classes/{cls}/{oid}", body, master=True)
        assert error(response) == (400, 111), (body, response.text)
        response = client.post(f"/classes/{cls}", body, master=True)
        assert error(response) == (400, 111), (body, response.text)
    got = fetch(client, cls, oid)
    assert (got["name"], got["n"]) == ("x", 1)
    assert client.find(cls, count=1, limit=0)["count"] == 1


def test_master_write_to_undefined_field_adds_it(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"name": "x"})
    put(client, cls, oid, {"newField": "hello", "newNum": 3})
    schema = client.get(f"/schemas/{cls}", master=True).json()
    assert schema["fields"]["newField"] == {"type": "String"}
    assert schema["fields"]["newNum"] == {"type": "Number"}
    got = fetch(client, cls, oid)
    assert (got["newField"], got["newNum"]) == ("hello", 3)
    # The first write fixed the type.
    response = client.put(f"/classes/{cls}/{oid}", {"newField": 5}, master=True)
    assert error(response) == (400, 111)
    oid2 = client.create(cls, {"created": {"__type": "Date", "iso": "2024-01-01T00:00:00.000Z"}})
    assert client.get(f"/schemas/{cls}", master=True).json()["fields"]["created"] == {
        "type": "Date"
    }
    assert fetch(client, cls, oid2)["created"] == {
        "__type": "Date",
        "iso": "2024-01-01T00:00:00.000Z",
    }


def test_client_write_to_undefined_field_is_refused(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"name": "x"})
    response = client.put(f"/classes/{cls}/{oid}", {"sneaky": "x"})
    assert response.status_code == 400
    assert response.json()["code"] == 119
    assert "sneaky" not in client.get(f"/schemas/{cls}", master=True).json()["fields"]


def test_object_id_in_body_is_105(client: ParseClient) -> None:
    cls = make_class(client)
    response = client.post(f"/classes/{cls}", {"objectId": "abcdefghij", "name": "x"}, master=True)
    assert error(response) == (400, 105)
    assert client.find(cls, count=1, limit=0)["count"] == 0
    oid = client.create(cls, {"name": "x"})
    response = client.put(f"/classes/{cls}/{oid}", {"objectId": "zzzzzzzzzz"}, master=True)
    assert error(response) == (400, 105)
    assert fetch(client, cls, oid)["objectId"] == oid


def test_invalid_field_names_are_105(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"name": "x"})
    for bad in ("$foo", "bad-name", "1abc", "_private", "has space", "a..b"):
        response = client.post(f"/classes/{cls}", {bad: 1}, master=True)
        assert error(response) == (400, 105), (bad, response.text)
        response = client.put(f"/classes/{cls}/{oid}", {bad: 1}, master=True)
        assert error(response) == (400, 105), (bad, response.text)
    assert client.find(cls, count=1, limit=0)["count"] == 1


def test_required_field_missing_is_142(client: ParseClient) -> None:
    cls = unique_class("Req")
    client.create_class(
        cls, {"must": {"type": "String", "required": True}, "opt": {"type": "String"}}
    )
    response = client.post(f"/classes/{cls}", {"opt": "x"}, master=True)
    assert error(response) == (400, 142)
    assert client.find(cls, count=1, limit=0)["count"] == 0
    oid = client.create(cls, {"must": "here"})
    response = client.put(f"/classes/{cls}/{oid}", {"must": {"__op": "Delete"}}, master=True)
    assert error(response) == (400, 142)
    response = client.put(f"/classes/{cls}/{oid}", {"must": None}, master=True)
    assert error(response) == (400, 142)
    assert fetch(client, cls, oid)["must"] == "here"
    # Updating another field leaves the required one in place.
    put(client, cls, oid, {"opt": "y"})


def test_unique_violation_is_137(client: ParseClient) -> None:
    mrn = f"MRN-{uuid.uuid4().hex[:8]}"
    body = {
        "user": pointer("_User", uuid.uuid4().hex[:10]),
        "medicalRecordNumber": mrn,
        "displayName": "A",
        "isActive": True,
    }
    first = client.create("PatientProfile", body)
    response = client.post(
        "/classes/PatientProfile",
        {**body, "user": pointer("_User", uuid.uuid4().hex[:10])},
        master=True,
    )
    assert error(response) == (400, 137)
    other = client.create(
        "PatientProfile",
        {
            **body,
            "medicalRecordNumber": mrn + "-b",
            "user": pointer("_User", uuid.uuid4().hex[:10]),
        },
    )
    response = client.put(
        f"/classes/PatientProfile/{other}", {"medicalRecordNumber": mrn}, master=True
    )
    assert error(response) == (400, 137)
    found = client.find("PatientProfile", where={"medicalRecordNumber": mrn})["results"]
    assert [r["objectId"] for r in found] == [first]
    assert fetch(client, "PatientProfile", other)["medicalRecordNumber"] == mrn + "-b"


def test_update_missing_object_is_101(client: ParseClient) -> None:
    cls = make_class(client)
    response = client.put(f"/classes/{cls}/abcdefghij", {"n": inc(1)}, master=True)
    assert error(response) == (404, 101)


def test_unknown_op_is_rejected(client: ParseClient) -> None:
    cls = make_class(client)
    oid = client.create(cls, {"n": 1})
    response = client.put(f"/classes/{cls}/{oid}", {"n": {"__op": "Frobnicate"}}, master=True)
    assert response.status_code == 400
    assert fetch(client, cls, oid)["n"] == 1
