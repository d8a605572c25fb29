"""``include`` and dotted ``keys`` over HTTP (parse-rest-reference.md §4.1, §5)."""

from __future__ import annotations

from typing import Any

from tests.support import ParseClient, pointer, unique_class

PUBLIC_CLP: dict[str, Any] = {
    op: {"*": True} for op in ("find", "count", "get", "create", "update", "delete", "addField")
}


class Graph:
    """Leaf <- Target.sub <- Source.target; Source.other -> Leaf; Source.targets -> [Target]."""

    def __init__(self, client: ParseClient) -> None:
        self.client = client
        self.leaf = unique_class("Leaf")
        client.create_class(self.leaf, {"label": {"type": "String"}}, clp=PUBLIC_CLP)
        self.target = unique_class("Tgt")
        client.create_class(
            self.target,
            {
                "name": {"type": "String"},
                "extra": {"type": "Number"},
                "sub": {"type": "Pointer", "targetClass": self.leaf},
            },
            clp=PUBLIC_CLP,
        )
        self.source = unique_class("Src")
        client.create_class(
            self.source,
            {
                "title": {"type": "String"},
                "target": {"type": "Pointer", "targetClass": self.target},
                "other": {"type": "Pointer", "targetClass": self.leaf},
                "targets": {"type": "Array"},
            },
            clp=PUBLIC_CLP,
        )
        self.l1 = client.create(self.leaf, {"label": "leaf-1"})
        self.l2 = client.create(self.leaf, {"label": "leaf-2"})
        self.t1 = client.create(
            self.target, {"name": "t1", "extra": 1, "sub": pointer(self.leaf, self.l1)}
        )
        self.t2 = client.create(self.target, {"name": "t2", "extra": 2})
        self.s1 = client.create(
            self.source,
            {
                "title": "s1",
                "target": pointer(self.target, self.t1),
                "other": pointer(self.leaf, self.l2),
                "targets": [pointer(self.target, self.t2), pointer(self.target, self.t1)],
            },
        )
        self.s2 = client.create(self.source, {"title": "s2"})

    def find_one(self, master: bool = True, **params: Any) -> dict[str, Any]:
        rows = self.client.find(self.source, master=master, where={"title": "s1"}, **params)[
            "results"
        ]
        assert len(rows) == 1, rows
        return dict(rows[0])


def assert_object(value: Any, class_name: str, object_id: str, **fields: Any) -> None:
    assert isinstance(value, dict), value
    assert value["__type"] == "Object"
    assert value["className"] == class_name
    assert value["objectId"] == object_id
    assert isinstance(value["createdAt"], str) and isinstance(value["updatedAt"], str)
    for key, expected in fields.items():
        assert value[key] == expected, (key, value)


def test_without_include_pointers_stay_pointers(client: ParseClient) -> None:
    g = Graph(client)
    row = g.find_one()
    assert row["target"] == pointer(g.target, g.t1)
    assert row["other"] == pointer(g.leaf, g.l2)


def test_include_pointer(client: ParseClient) -> None:
    g = Graph(client)
    row = g.find_one(include="target")
    assert_object(row["target"], g.target, g.t1, name="t1", extra=1)
    # The included object's own pointers are not expanded.
    assert row["target"]["sub"] == pointer(g.leaf, g.l1)
    assert row["other"] == pointer(g.leaf, g.l2)
    assert row["title"] == "s1"


def test_include_several_paths(client: ParseClient) -> None:
    g = Graph(client)
    row = g.find_one(include="target,other")
    assert_object(row["target"], g.target, g.t1, name="t1")
    assert_object(row["other"], g.leaf, g.l2, label="leaf-2")


def test_include_nested_path(client: ParseClient) -> None:
    g = Graph(client)
    row = g.find_one(include="target.sub")
    assert_object(row["target"], g.target, g.t1, name="t1")
    assert_object(row["target"]["sub"], g.leaf, g.l1, label="leaf-1")


def test_include_star(client: ParseClient) -> None:
    g = Graph(client)
    row = g.find_one(include="*")
    assert_object(row["target"], g.target, g.t1, name="t1")
    assert_object(row["other"], g.leaf, g.l2, label="leaf-2")
    assert row["target"]["sub"] == pointer(g.leaf, g.l1)


def test_include_all_parameter(client: ParseClient) -> None:
    g = Graph(client)
    row = g.find_one(includeAll="true")
    assert_object(row["target"], g.target, g.t1, name="t1")
    assert_object(row["other"], g.leaf, g.l2, label="leaf-2")


def test_include_array_of_pointers(client: ParseClient) -> None:
    g = Graph(client)
    row = g.find_one(include="targets")
    assert len(row["targets"]) == 2
    assert_object(row["targets"][0], g.target, g.t2, name="t2", extra=2)
    assert_object(row["targets"][1], g.target, g.t1, name="t1", extra=1)
    assert row["target"] == pointer(g.target, g.t1)


def test_include_on_get(client: ParseClient) -> None:
    g = Graph(client)
    response = client.get(
        f"/classes/{g.source}/{g.s1}", params={"include": "target.sub"}, master=True
    )
    assert response.status_code == 200, response.text
    row = response.json()
    assert_object(row["target"], g.target, g.t1, name="t1")
    assert_object(row["target"]["sub"], g.leaf, g.l1, label="leaf-1")


def test_include_missing_and_non_pointer_fields_is_harmless(client: ParseClient) -> None:
    g = Graph(client)
    row = g.find_one(include="title,nosuch,target")
    assert row["title"] == "s1"
    assert_object(row["target"], g.target, g.t1)
    rows = client.find(g.source, where={"title": "s2"}, include="target,targets")["results"]
    assert len(rows) == 1 and "target" not in rows[0] and "targets" not in rows[0]


def test_include_of_unreadable_object_stays_pointer(client: ParseClient) -> None:
    g = Graph(client)
    hidden = client.create(g.target, {"name": "secret", "ACL": {}})
    sid = client.create(
        g.source,
        {
            "title": "s3",
            "target": pointer(g.target, hidden),
            "targets": [pointer(g.target, hidden), pointer(g.target, g.t2)],
            "other": pointer(g.leaf, g.l1),
        },
    )
    response = client.get(
        f"/classes/{g.source}", params={"where": {"title": "s3"}, "include": "target,other"}
    )
    assert response.status_code == 200, response.text
    [row] = response.json()["results"]
    assert row["objectId"] == sid
    assert row["target"] == pointer(g.target, hidden)
    assert_object(row["other"], g.leaf, g.l1, label="leaf-1")
    # With the master key it is included.
    [row] = client.find(g.source, where={"title": "s3"}, include="target")["results"]
    assert_object(row["target"], g.target, hidden, name="secret")


def test_include_unreadable_in_array_never_leaks(client: ParseClient) -> None:
    g = Graph(client)
    hidden = client.create(g.target, {"name": "secret", "ACL": {}})
    client.create(
        g.source, {"title": "s4", "targets": [pointer(g.target, hidden), pointer(g.target, g.t2)]}
    )
    response = client.get(
        f"/classes/{g.source}", params={"where": {"title": "s4"}, "include": "targets"}
    )
    assert response.status_code == 200, response.text
    [row] = response.json()["results"]
    assert "secret" not in response.text
    readable = [t for t in row["targets"] if t.get("__type") == "Object"]
    assert len(readable) == 1
    assert_object(readable[0], g.target, g.t2, name="t2")


def test_keys_with_dotted_paths_into_included_objects(client: ParseClient) -> None:
    g = Graph(client)
    row = g.find_one(include="target", keys="target.name")
    assert "title" not in row and "other" not in row
    target = row["target"]
    assert target["__type"] == "Object"
    assert target["objectId"] == g.t1
    assert target["name"] == "t1"
    assert "extra" not in target and "sub" not in target


def test_keys_with_nested_dotted_paths(client: ParseClient) -> None:
    g = Graph(client)
    row = g.find_one(include="target.sub", keys="title,target.sub.label")
    assert row["title"] == "s1"
    assert "other" not in row
    assert "name" not in row["target"] and "extra" not in row["target"]
    assert_object(row["target"]["sub"], g.leaf, g.l1, label="leaf-1")


def test_exclude_keys_with_include(client: ParseClient) -> None:
    g = Graph(client)
    row = g.find_one(include="target", excludeKeys="other,targets")
    assert "other" not in row and "targets" not in row
    assert_object(row["target"], g.target, g.t1, name="t1", extra=1)


def test_include_many_rows_few_targets(client: ParseClient) -> None:
    target = unique_class("ManyT")
    client.create_class(target, {"name": {"type": "String"}, "idx": {"type": "Number"}})
    targets = [client.create(target, {"name": f"target-{i}", "idx": i}) for i in range(5)]
    source = unique_class("ManyS")
    client.create_class(
        source, {"i": {"type": "Number"}, "ref": {"type": "Pointer", "targetClass": target}}
    )
    requests = [
        {
            "method": "POST",
            "path": f"/parse/classes/{source}",
            "body": {"i": i, "ref": pointer(target, targets[i % 5])},
        }
        for i in range(50)
    ]
    response = client.post("/batch", {"requests": requests}, master=True)
    assert response.status_code == 200, response.text
    assert all("success" in r for r in response.json())

    rows = client.find(source, include="ref", order="i", limit=50)["results"]
    assert [r["i"] for r in rows] == list(range(50))
    for row in rows:
        k = row["i"] % 5
        assert_object(row["ref"], target, targets[k], name=f"target-{k}", idx=k)

    paged = client.find(source, include="ref", order="-i", limit=7, skip=3)["results"]
    assert [r["i"] for r in paged] == list(range(46, 39, -1))
    for row in paged:
        assert row["ref"]["name"] == f"target-{row['i'] % 5}"
