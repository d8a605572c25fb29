"""LiveQuery over real sockets on both backends: every event type, keys, watch, update and
unsubscribe, ACLs and CLPs per subscriber, sessions ending, and no event for a rolled-back write."""

from __future__ import annotations

import pytest

from tests.domain.clinic import make_user
from tests.live_query.wsclient import session_client
from tests.support import LiveServer, ParseClient, unique_class

pytestmark = pytest.mark.anyio


def _readers(*users: str) -> dict[str, dict[str, bool]]:
    return {u: {"read": True} for u in users}


async def test_create_enter_update_leave_delete(server: LiveServer, client: ParseClient) -> None:
    cls = unique_class("Lq")
    client.create_class(cls, {"name": {"type": "String"}, "score": {"type": "Number"}})
    live = await session_client(server.url, server.app_id)
    try:
        subscribed = await live.subscribe(7, cls, {"score": {"$gte": 10}})
        assert subscribed["op"] == "subscribed" and subscribed["requestId"] == 7
        assert {"clientId", "installationId"} <= subscribed.keys()

        oid = client.create(cls, {"name": "a", "score": 12})
        created = await live.expect("create")
        assert created["requestId"] == 7 and "original" not in created
        obj = created["object"]
        assert obj["className"] == cls and obj["objectId"] == oid
        assert obj["name"] == "a" and obj["score"] == 12
        assert obj["createdAt"].endswith("Z") and obj["updatedAt"].endswith("Z")

        client.put(f"/classes/{cls}/{oid}", {"score": 15}, master=True)
        updated = await live.expect("update")
        assert updated["object"]["score"] == 15 and updated["original"]["score"] == 12

        client.put(f"/classes/{cls}/{oid}", {"score": 1}, master=True)
        left = await live.expect("leave")
        assert left["object"]["score"] == 1 and left["original"]["score"] == 15

        client.put(f"/classes/{cls}/{oid}", {"score": 2}, master=True)
        await live.silent()  # matched neither before nor after

        client.put(f"/classes/{cls}/{oid}", {"score": 20}, master=True)
        entered = await live.expect("enter")
        assert entered["object"]["score"] == 20 and entered["original"]["score"] == 2

        client.delete(f"/classes/{cls}/{oid}", master=True)
        deleted = await live.expect("delete")
        assert deleted["object"]["objectId"] == oid and deleted["object"]["score"] == 20

        client.create(cls, {"name": "low", "score": 3})
        await live.silent()
    finally:
        await live.close()


async def test_keys_watch_update_and_unsubscribe(server: LiveServer, client: ParseClient) -> None:
    cls = unique_class("Lq")
    client.create_class(
        cls, {"name": {"type": "String"}, "score": {"type": "Number"}, "note": {"type": "String"}}
    )
    live = await session_client(server.url, server.app_id)
    try:
        assert (await live.subscribe(1, cls, keys=["name"], watch=["score"]))["op"] == "subscribed"
        oid = client.create(cls, {"name": "k", "score": 1, "note": "n"})
        created = (await live.expect("create"))["object"]
        assert set(created) == {"className", "objectId", "createdAt", "updatedAt", "name"}

        client.put(f"/classes/{cls}/{oid}", {"note": "changed"}, master=True)
        await live.silent()  # `watch` names score only
        client.put(f"/classes/{cls}/{oid}", {"score": 2}, master=True)
        updated = await live.expect("update")
        assert set(updated["object"]) == set(updated["original"]) == set(created)

        # `update` replaces the query of request 1.
        replaced = await live.subscribe(1, cls, {"name": "other"}, op="update")
        assert replaced["op"] == "subscribed" and replaced["requestId"] == 1
        client.put(f"/classes/{cls}/{oid}", {"score": 3}, master=True)
        await live.silent()
        client.put(f"/classes/{cls}/{oid}", {"name": "other"}, master=True)
        assert (await live.expect("enter"))["object"]["name"] == "other"

        await live.send({"op": "unsubscribe", "requestId": 1})
        assert (await live.expect("unsubscribed"))["requestId"] == 1
        client.put(f"/classes/{cls}/{oid}", {"name": "other", "score": 9}, master=True)
        await live.silent()
    finally:
        await live.close()


async def test_each_subscriber_sees_only_what_its_acl_allows(
    server: LiveServer, client: ParseClient
) -> None:
    cls = unique_class("Lq")
    client.create_class(cls, {"name": {"type": "String"}})
    alice, alice_token = make_user(client, "patient")
    bob, bob_token = make_user(client, "patient")
    a = await session_client(server.url, server.app_id, token=alice_token)
    b = await session_client(server.url, server.app_id)  # token per subscription instead
    anon = await session_client(server.url, server.app_id)
    master = await session_client(server.url, server.app_id, master_key=server.master_key)
    try:
        assert (await a.subscribe(1, cls))["op"] == "subscribed"
        assert (await b.subscribe(1, cls, token=bob_token))["op"] == "subscribed"
        assert (await anon.subscribe(1, cls))["op"] == "subscribed"
        assert (await master.subscribe(1, cls))["op"] == "subscribed"

        only_alice = client.create(cls, {"name": "a", "ACL": _readers(alice)})
        assert (await a.expect("create"))["object"]["objectId"] == only_alice
        assert (await master.expect("create"))["object"]["objectId"] == only_alice
        await b.silent()
        await anon.silent(0.2)

        # Sharing with Bob is an `enter` for him, without the version he could not read.
        client.put(f"/classes/{cls}/{only_alice}", {"ACL": _readers(alice, bob)}, master=True)
        entered = await b.expect("enter")
        assert "original" not in entered and entered["object"]["name"] == "a"
        assert (await a.expect("update"))["original"]["ACL"] == _readers(alice)

        # Taking it from Alice: she learns it left, but not its new contents.
        client.put(
            f"/classes/{cls}/{only_alice}", {"name": "b-only", "ACL": _readers(bob)}, master=True
        )
        left = await a.expect("leave")
        assert "name" not in left["object"] and left["object"]["objectId"] == only_alice
        assert left["original"]["name"] == "a"
        assert (await b.expect("update"))["object"]["name"] == "b-only"

        client.delete(f"/classes/{cls}/{only_alice}", master=True)
        assert (await b.expect("delete"))["object"]["objectId"] == only_alice
        await a.silent()
        public = client.create(cls, {"name": "p", "ACL": {"*": {"read": True}}})
        assert (await anon.expect("create"))["object"]["objectId"] == public
    finally:
        for live in (a, b, anon, master):
            await live.close()


async def test_clp_and_protected_fields(server: LiveServer, client: ParseClient) -> None:
    closed = unique_class("Lq")
    client.create_class(closed, {"name": {"type": "String"}}, clp={"find": {}, "get": {}})
    guarded = unique_class("Lq")
    client.create_class(
        guarded,
        {"name": {"type": "String"}, "ssn": {"type": "String"}},
        clp={"protectedFields": {"*": ["ssn"]}},
    )
    live = await session_client(server.url, server.app_id)
    try:
        refused = await live.subscribe(1, closed)
        assert refused["op"] == "error" and refused["code"] == 119 and refused["requestId"] == 1
        assert refused["reconnect"] is False
        probing = await live.subscribe(2, guarded, {"ssn": {"$regex": "^1"}})
        assert probing["op"] == "error" and probing["code"] == 119

        assert (await live.subscribe(3, guarded))["op"] == "subscribed"
        client.create(guarded, {"name": "n", "ssn": "123", "ACL": {"*": {"read": True}}})
        obj = (await live.expect("create"))["object"]
        assert obj["name"] == "n" and "ssn" not in obj
    finally:
        await live.close()


async def test_bad_queries_are_refused_with_parse_codes(
    server: LiveServer, client: ParseClient
) -> None:
    cls = unique_class("Lq")
    client.create_class(cls, {"name": {"type": "String"}, "tags": {"type": "Array"}})
    live = await session_client(server.url, server.app_id)
    try:
        cases = [
            ({"$foo": 1}, 105),
            ({"name": {"$bogus": 1}}, 102),
            ({"ACL": {"$exists": True}}, 102),
            ({"tags": {"$gt": 1}}, 102),
            ({"name": {"$inQuery": {"className": cls, "where": {}}}}, 102),
            ({"$relatedTo": {"object": {}, "key": "x"}}, 102),
        ]
        for i, (where, code) in enumerate(cases):
            answer = await live.subscribe(i + 1, cls, where)
            assert answer["op"] == "error" and answer["code"] == code, (where, answer)
        missing = await live.subscribe(99, unique_class("Nope"))
        assert missing["op"] == "error" and missing["code"] == 119
    finally:
        await live.close()


async def test_revoked_session_ends_its_subscriptions(
    server: LiveServer, client: ParseClient
) -> None:
    cls = unique_class("Lq")
    client.create_class(cls, {"name": {"type": "String"}})
    user, token = make_user(client, "patient")
    live = await session_client(server.url, server.app_id, token=token)
    try:
        assert (await live.subscribe(4, cls))["op"] == "subscribed"
        client.create(cls, {"name": "before", "ACL": _readers(user)})
        assert (await live.expect("create"))["object"]["name"] == "before"
        assert client.post("/logout", headers={"X-Parse-Session-Token": token}).status_code == 200
        # The revocation travels as a change event: the subscription ends at once with 209,
        # long before the periodic expiry sweep (live_query_sweep_seconds) would notice.
        assert server.settings.live_query_sweep_seconds >= 30
        ended = await live.recv(timeout=3)
        assert ended["op"] == "error" and ended["code"] == 209, ended
        assert ended["requestId"] == 4 and ended["reconnect"] is False
        client.create(cls, {"name": "later", "ACL": _readers(user)})
        await live.silent()
        # An unknown token is anonymous at subscribe time (Parse Server does the same).
        again = await live.subscribe(5, cls, token=token)
        assert again["op"] == "subscribed"
        client.create(cls, {"name": "private", "ACL": _readers(user)})
        await live.silent()
    finally:
        await live.close()


async def test_no_event_for_a_rolled_back_write(server: LiveServer, client: ParseClient) -> None:
    cls = unique_class("Lq")
    client.create_class(cls, {"name": {"type": "String"}, "n": {"type": "Number"}})
    live = await session_client(server.url, server.app_id, master_key=server.master_key)
    try:
        assert (await live.subscribe(1, cls))["op"] == "subscribed"
        batch = client.post(
            "/batch",
            {
                "transaction": True,
                "requests": [
                    {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"name": "x"}},
                    {"method": "POST", "path": f"/parse/classes/{cls}", "body": {"n": "NaN"}},
                ],
            },
            master=True,
        )
        assert batch.status_code >= 400 or "error" in batch.text, batch.text
        await live.silent()
        assert client.find(cls)["results"] == []
        client.create(cls, {"name": "committed"})
        assert (await live.expect("create"))["object"]["name"] == "committed"
    finally:
        await live.close()
