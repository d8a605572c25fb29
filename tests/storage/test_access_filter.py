"""Access control lives in the SQL: limits, counts and 101s see only what the caller may see."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindharbor.domain.audit import AUDIT_ACL
from mindharbor.errors import ObjectNotFound, OperationForbidden
from mindharbor.security.auth import Auth
from mindharbor.storage.repository import FindQuery
from tests.support import make_settings, open_store, unique_class

pytestmark = pytest.mark.anyio


async def _seed(store, cls: str, visible: int, hidden: int) -> tuple[list[str], list[str]]:
    async with store.unit_of_work(Auth.master()) as repo:
        await repo.create(cls, {"n": 0})  # creates the class (master key may)
        await repo.purge(repo.schema_or_none(cls))
        seen, unseen = [], []
        for i in range(visible + hidden):
            is_visible = i % 10 == 0 and len(seen) < visible
            acl = {"alice": {"read": True}} if is_visible else {"mallory": {"read": True}}
            created = await repo.create(cls, {"n": i, "ACL": acl})
            (seen if is_visible else unseen).append(created["objectId"])
    return seen, unseen


async def test_limit_and_count_see_only_visible_rows(backend_url: str, tmp_path: Path) -> None:
    async with open_store(make_settings(backend_url, tmp_path)) as store:
        cls = unique_class()
        seen, _ = await _seed(store, cls, visible=10, hidden=90)
        async with store.unit_of_work(Auth.user("alice")) as repo:
            page = await repo.find(cls, FindQuery(limit=10, count=True, order="n"))
            assert sorted(o["objectId"] for o in page.results) == sorted(seen)
            assert page.count == 10
            first = await repo.find(cls, FindQuery(limit=3, skip=2, order="n"))
            assert [o["n"] for o in first.results] == [20, 30, 40]
        async with store.unit_of_work(Auth.anonymous()) as repo:
            nothing = await repo.find(cls, FindQuery(limit=100, count=True))
            assert nothing.results == [] and nothing.count == 0


async def test_invisible_object_is_indistinguishable_from_missing(
    backend_url: str, tmp_path: Path
) -> None:
    async with open_store(make_settings(backend_url, tmp_path)) as store:
        cls = unique_class()
        _, unseen = await _seed(store, cls, visible=1, hidden=9)
        hidden_id = unseen[0]
        errors = []
        async with store.unit_of_work(Auth.user("alice")) as repo:
            for object_id in (hidden_id, "doesNotExi"):
                with pytest.raises(ObjectNotFound) as exc:
                    await repo.get(cls, object_id)
                errors.append((exc.value.code, exc.value.message))
                with pytest.raises(ObjectNotFound):
                    await repo.update(cls, object_id, {"n": -999})
                with pytest.raises(ObjectNotFound):
                    await repo.delete(cls, object_id)
        assert errors[0] == errors[1] == (101, "Object not found.")
        async with store.unit_of_work(Auth.master()) as repo:
            assert (await repo.get(cls, hidden_id))[
                "n"
            ] != -999  # the refused update changed nothing


async def test_roles_public_and_write_permissions(backend_url: str, tmp_path: Path) -> None:
    async with open_store(make_settings(backend_url, tmp_path)) as store:
        cls = unique_class()
        async with store.unit_of_work(Auth.master()) as repo:
            role_row = await repo.create(cls, {"k": "role", "ACL": {"role:clinic": {"read": True}}})
            public = await repo.create(cls, {"k": "public", "ACL": {"*": {"read": True}}})
            write_only = await repo.create(cls, {"k": "w", "ACL": {"bob": {"write": True}}})
            no_acl = await repo.create(cls, {"k": "open"})  # no ACL: public read and write
        async with store.unit_of_work(Auth.user("bob", {"clinic"})) as repo:
            found = await repo.find(cls, FindQuery(order="k"))
            assert {o["k"] for o in found.results} == {"role", "public", "open"}
            # Write permission without read: may update, still may not read it.
            await repo.update(cls, write_only["objectId"], {"k": "w2"})
            with pytest.raises(ObjectNotFound):
                await repo.get(cls, write_only["objectId"])
            # Read without write: may not update.
            with pytest.raises(ObjectNotFound):
                await repo.update(cls, public["objectId"], {"k": "x"})
        async with store.unit_of_work(Auth.user("carol")) as repo:
            found = await repo.find(cls, FindQuery(order="k"))
            assert {o["k"] for o in found.results} == {"public", "open"}
            await repo.update(cls, no_acl["objectId"], {"k": "open2"})
            with pytest.raises(ObjectNotFound):
                await repo.get(cls, role_row["objectId"])


async def test_subqueries_and_includes_apply_the_inner_class_filter(
    backend_url: str, tmp_path: Path
) -> None:
    async with open_store(make_settings(backend_url, tmp_path)) as store:
        parent_cls, child_cls = unique_class("P"), unique_class("C")
        async with store.unit_of_work(Auth.master()) as repo:
            secret = await repo.create(child_cls, {"tag": "x", "ACL": {}})
            open_child = await repo.create(child_cls, {"tag": "x", "ACL": {"*": {"read": True}}})
            pub = {"*": {"read": True}}
            for child in (secret, open_child):
                ptr = {"__type": "Pointer", "className": child_cls, "objectId": child["objectId"]}
                await repo.create(parent_cls, {"child": ptr, "code": child["objectId"], "ACL": pub})
        async with store.unit_of_work(Auth.user("eve")) as repo:
            inner = {"className": child_cls, "where": {"tag": "x"}}
            matched = await repo.find(parent_cls, FindQuery(where={"child": {"$inQuery": inner}}))
            assert [o["code"] for o in matched.results] == [open_child["objectId"]]
            selected = await repo.find(
                parent_cls,
                FindQuery(where={"code": {"$select": {"query": inner, "key": "objectId"}}}),
            )
            assert [o["code"] for o in selected.results] == [open_child["objectId"]]
            included = await repo.find(parent_cls, FindQuery(include=["child"], order="code"))
            by_code = {o["code"]: o["child"] for o in included.results}
            assert by_code[secret["objectId"]]["__type"] == "Pointer"  # not revealed
            assert by_code[open_child["objectId"]]["__type"] == "Object"


async def test_class_level_permissions_are_checked_first(backend_url: str, tmp_path: Path) -> None:
    async with open_store(make_settings(backend_url, tmp_path)) as store:
        async with store.unit_of_work(Auth.anonymous()) as repo:
            with pytest.raises(OperationForbidden):
                await repo.find("PatientProfile", FindQuery())  # requires authentication
        async with store.unit_of_work(Auth.user("someone")) as repo:
            with pytest.raises(OperationForbidden):
                await repo.find("AuditLog", FindQuery())  # compliance/admin only
            with pytest.raises(OperationForbidden):
                await repo.create("NoSuchClassYet", {"a": 1})  # client class creation is off
        async with store.unit_of_work(Auth.user("auditor", {"compliance"})) as repo:
            found = await repo.find("AuditLog", FindQuery(limit=5))  # allowed: no 119
            assert all(entry["ACL"] == AUDIT_ACL for entry in found.results)
