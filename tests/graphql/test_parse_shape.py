"""Parse Server's GraphQL shape beyond the guide's examples: the where operators of each field
type, Relay pagination, pointer and relation inputs, ACLs, unsetting, atomic nested writes and
write-only callers. Each answer is checked against what REST says about the same data."""

from __future__ import annotations

import uuid
from typing import Any

from mindharbor.api.graphql.ids import offset_to_cursor, to_global_id
from tests.graphql.conftest import Gql
from tests.graphql.support import error_code
from tests.support import pointer

PUBLIC = {op: {"*": True} for op in ("find", "count", "get", "create", "update", "delete")}


def _classes(g: Gql) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    owner, item = f"Owner{tag}", f"Thing{tag}"
    g.api.create_class(owner, {"name": {"type": "String", "required": True}}, PUBLIC)
    g.api.create_class(
        item,
        {
            "label": {"type": "String"},
            "size": {"type": "Number"},
            "done": {"type": "Boolean"},
            "due": {"type": "Date"},
            "tags": {"type": "Array"},
            "meta": {"type": "Object"},
            "owner": {"type": "Pointer", "targetClass": owner},
            "helpers": {"type": "Relation", "targetClass": owner},
        },
        PUBLIC,
    )
    return owner, item


def _field(cls: str) -> str:
    return cls[:1].lower() + cls[1:]


def _labels(g: Gql, item: str, where: str, extra: str = "") -> list[str]:
    data = g.client.data(
        f"{{ {_field(item)}s(where: {where} order: [label_ASC] {extra}) "
        "{ edges { node { label } } } }",
        master=True,
    )
    return [e["node"]["label"] for e in data[f"{_field(item)}s"]["edges"]]


def _seed(g: Gql) -> tuple[str, str, list[str]]:
    owner, item = _classes(g)
    boss = g.api.create(owner, {"name": "boss"})
    ids = []
    for n, (label, size, done, day, tags) in enumerate(
        [
            ("a", 1, True, "2030-01-01", ["x"]),
            ("b", 2, False, "2030-01-02", ["x", "y"]),
            ("c", 3, False, "2030-01-03", []),
            ("d", 4, True, "2030-01-04", ["y"]),
        ]
    ):
        body: dict[str, Any] = {
            "label": label,
            "size": size,
            "done": done,
            "due": {"__type": "Date", "iso": f"{day}T00:00:00.000Z"},
            "tags": tags,
            "meta": {"rank": n, "kind": "even" if n % 2 == 0 else "odd"},
        }
        if label in ("a", "c"):
            body["owner"] = pointer(owner, boss)
        ids.append(g.api.create(item, body))
    return owner, item, ids


def test_where_operators_of_each_field_type(gql: Gql) -> None:
    _owner, item, ids = _seed(gql)
    assert _labels(gql, item, '{label: {in: ["a", "c", "z"]}}') == ["a", "c"]
    assert _labels(gql, item, '{label: {notIn: ["a"]}}') == ["b", "c", "d"]
    assert _labels(gql, item, '{label: {matchesRegex: "^[A-B]", options: "i"}}') == ["a", "b"]
    assert _labels(gql, item, "{size: {greaterThan: 1, lessThanOrEqualTo: 3}}") == ["b", "c"]
    assert _labels(gql, item, "{done: {equalTo: true}}") == ["a", "d"]
    assert _labels(gql, item, '{due: {lessThan: "2030-01-03T00:00:00.000Z"}}') == ["a", "b"]
    assert _labels(gql, item, '{tags: {contains: ["x", "y"]}}') == ["b"]
    assert _labels(gql, item, '{tags: {containedBy: ["y"]}}') == ["c", "d"]
    assert _labels(gql, item, '{meta: {equalTo: {key: "kind", value: "odd"}}}') == ["b", "d"]
    assert _labels(gql, item, '{meta: {greaterThan: {key: "rank", value: 1}}}') == ["c", "d"]
    assert _labels(gql, item, "{owner: {exists: true}}") == ["a", "c"]
    assert _labels(gql, item, '{owner: {have: {name: {equalTo: "boss"}}}}') == ["a", "c"]
    assert _labels(gql, item, '{owner: {haveNot: {name: {equalTo: "boss"}}}}') == ["b", "d"]
    assert _labels(gql, item, '{OR: [{label: {equalTo: "a"}}, {size: {equalTo: 4}}]}') == [
        "a",
        "d",
    ]
    assert _labels(gql, item, "{NOR: [{done: {equalTo: true}}]}") == ["b", "c"]
    by_id = f'{{id: {{in: ["{to_global_id(item, ids[1])}", "{ids[2]}"]}}}}'
    assert _labels(gql, item, by_id) == ["b", "c"]
    # A where REST refuses is refused here with the same code.
    response = gql.client.post(
        f'{{ {_field(item)}s(where: {{label: {{matchesRegex: "a", options: "q"}}}}) {{ count }} }}',
        master=True,
    )
    rest = gql.api.get(
        f"/classes/{item}", params={"where": {"label": {"$regex": "a", "$options": "q"}}}
    )
    assert error_code(response) == rest.json()["code"], response.text


def test_relay_pagination_and_order(gql: Gql) -> None:
    _owner, item, _ids = _seed(gql)
    everything = "{}"
    assert _labels(gql, item, everything, "first: 2") == ["a", "b"]
    assert _labels(gql, item, everything, f'first: 2, after: "{offset_to_cursor(1)}"') == ["c", "d"]
    assert _labels(gql, item, everything, "last: 1") == ["d"]
    assert _labels(gql, item, everything, f'last: 2, before: "{offset_to_cursor(3)}"') == ["b", "c"]
    assert _labels(gql, item, everything, "skip: 3") == ["d"]
    data = gql.client.data(
        f"{{ {_field(item)}s(order: [done_DESC, size_DESC], first: 3) "
        "{ count pageInfo { hasNextPage hasPreviousPage } edges { node { label } } } }",
        master=True,
    )[f"{_field(item)}s"]
    assert [e["node"]["label"] for e in data["edges"]] == ["d", "a", "c"]
    assert data["count"] == 4 and data["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
    }
    bad = gql.client.post(f'{{ {_field(item)}s(after: "nope") {{ count }} }}', master=True)
    assert error_code(bad) == 102 and "not a valid cursor" in bad.text


def test_pointer_relation_and_acl_inputs(gql: Gql) -> None:
    owner, item = _classes(gql)
    boss = gql.api.create(owner, {"name": "boss"})
    user = gql.api.post(
        "/users", {"username": f"u{uuid.uuid4().hex[:8]}", "password": "a long passphrase 1"}
    )
    user_id = user.json()["objectId"]
    mutation = (
        f"mutation($f: Create{item}FieldsInput) {{ create{item}(input: {{fields: $f}}) "
        f"{{ {_field(item)} {{ objectId label owner {{ name }} "
        "helpers { count edges { node { name } } } ACL { users { userId read write } "
        "roles { roleName read } public { read write } } } } }"
    )
    fields = {
        "label": "linked",
        "owner": {"link": to_global_id(owner, boss)},
        "helpers": {"add": [boss], "createAndAdd": [{"name": "new helper"}]},
        "ACL": {
            "users": [{"userId": to_global_id("_User", user_id), "read": True, "write": True}],
            "roles": [{"roleName": "admin", "read": True, "write": False}],
            "public": {"read": True, "write": False},
        },
    }
    created = gql.client.data(mutation, {"f": fields}, master=True)[f"create{item}"][_field(item)]
    assert created["owner"] == {"name": "boss"}
    assert created["helpers"]["count"] == 2
    assert {e["node"]["name"] for e in created["helpers"]["edges"]} == {"boss", "new helper"}
    acl = gql.api.get(f"/classes/{item}/{created['objectId']}", master=True).json()["ACL"]
    assert acl == {
        user_id: {"read": True, "write": True},
        "role:admin": {"read": True},
        "*": {"read": True},
    }
    assert created["ACL"]["users"] == [
        {"userId": to_global_id("_User", user_id), "read": True, "write": True}
    ]
    assert created["ACL"]["public"] == {"read": True, "write": False}
    # createAndLink, remove from a relation, and null unsets a field.
    update = (
        f"mutation($id: ID!, $f: Update{item}FieldsInput) "
        f"{{ update{item}(input: {{id: $id, fields: $f}}) "
        f"{{ {_field(item)} {{ label owner {{ name }} helpers {{ count }} }} }} }}"
    )
    changed = gql.client.data(
        update,
        {
            "id": created["objectId"],
            "f": {
                "label": None,
                "owner": {"createAndLink": {"name": "other"}},
                "helpers": {"remove": [boss]},
            },
        },
        master=True,
    )[f"update{item}"][_field(item)]
    assert changed == {"label": None, "owner": {"name": "other"}, "helpers": {"count": 1}}
    stored = gql.api.get(f"/classes/{item}/{created['objectId']}", master=True).json()
    assert "label" not in stored


def test_a_failed_nested_create_leaves_nothing(gql: Gql) -> None:
    owner, item = _classes(gql)
    response = gql.client.post(
        f'mutation {{ create{item}(input: {{fields: {{label: "x", '
        f"owner: {{createAndLink: {{}}}}}}}}) {{ {_field(item)} {{ objectId }} }} }}",
        master=True,
    )
    assert error_code(response) == 142, response.text  # Owner.name is required
    assert response.json()["data"] is None
    assert gql.api.find(item, count="1", limit="0")["count"] == 0
    assert gql.api.find(owner, count="1", limit="0")["count"] == 0
    both = gql.client.post(
        f'mutation {{ create{item}(input: {{fields: {{owner: {{link: "x", '
        f'createAndLink: {{name: "y"}}}}}}}}) {{ {_field(item)} {{ objectId }} }} }}',
        master=True,
    )
    assert error_code(both) == 106, both.text


def test_a_caller_who_may_write_but_not_read_gets_the_echo(gql: Gql) -> None:
    name = f"Drop{uuid.uuid4().hex[:8]}"
    closed = {op: {} for op in ("find", "count", "get", "update", "delete")}
    gql.api.create_class(name, {"note": {"type": "String"}}, {**closed, "create": {"*": True}})
    data = gql.client.data(
        f'mutation {{ create{name}(input: {{fields: {{note: "secret"}}}}) '
        f"{{ {_field(name)} {{ id objectId createdAt note ACL {{ public {{ read }} }} }} }} }}"
    )
    created = data[f"create{name}"][_field(name)]
    assert created["id"] == to_global_id(name, created["objectId"])
    assert created["note"] is None and created["ACL"] is None  # nothing read back
    stored = gql.api.get(f"/classes/{name}/{created['objectId']}", master=True).json()
    assert stored["note"] == "secret"
    denied = gql.client.post(f'{{ {_field(name)}(id: "{created["objectId"]}") {{ id }} }}')
    assert error_code(denied) == 119, denied.text
