"""The LiveQuery wire protocol: request validation (pure) and the error replies over a socket."""

from __future__ import annotations

import orjson
import pytest

from mindharbor.api.live_query import protocol
from mindharbor.api.live_query.protocol import Connect, ProtocolError, Subscribe, Unsubscribe
from tests.live_query.wsclient import LiveClient, session_client
from tests.support import LiveServer, ParseClient, unique_class


def _parse(body: object) -> protocol.Request:
    return protocol.parse(orjson.dumps(body))


def test_valid_requests_parse() -> None:
    assert _parse({"op": "connect", "applicationId": "a", "installationId": "i"}) == Connect(
        "a", installation_id="i"
    )
    sub = _parse(
        {
            "op": "subscribe",
            "requestId": 3,
            "query": {"className": "C", "where": {"a": 1}, "keys": ["a"], "watch": ["b"]},
            "sessionToken": "r:x",
        }
    )
    assert sub == Subscribe(3, "C", {"a": 1}, ("a",), ("b",), "r:x")
    assert isinstance(_parse({"op": "update", "requestId": 3, "query": sub_query()}), Subscribe)
    assert _parse({"op": "unsubscribe", "requestId": 3}) == Unsubscribe(3)


def sub_query() -> dict[str, object]:
    return {"className": "C", "where": {}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"applicationId": "a"}, "Missing required property: op"),
        ({"op": "frobnicate"}, 'No enum match for: "frobnicate"'),
        ({"op": "connect"}, "Missing required property: applicationId"),
        ({"op": "connect", "applicationId": "a", "x": 1}, "Additional properties not allowed"),
        ({"op": "connect", "applicationId": 5}, "Invalid type: number (expected string)"),
        ({"op": "subscribe", "requestId": "1", "query": sub_query()}, "Invalid type: string"),
        ({"op": "subscribe", "requestId": 1}, "Missing required property: query"),
        ({"op": "subscribe", "requestId": 1, "query": {"className": "C"}}, "property: where"),
        (
            {"op": "subscribe", "requestId": 1, "query": {**sub_query(), "limit": 1}},
            "Additional properties not allowed",
        ),
        ({"op": "subscribe", "requestId": 1, "query": {**sub_query(), "keys": []}}, "too short"),
        (
            {"op": "subscribe", "requestId": 1, "query": {**sub_query(), "keys": ["a", "a"]}},
            "not unique",
        ),
        ({"op": "unsubscribe"}, "Missing required property: requestId"),
        ([1], "Invalid type: array (expected object)"),
    ],
)
def test_invalid_requests_are_code_1(body: object, message: str) -> None:
    with pytest.raises(ProtocolError) as exc:
        _parse(body)
    assert exc.value.code == protocol.BAD_REQUEST
    assert message in exc.value.message


def test_not_json_is_refused_without_reconnect() -> None:
    with pytest.raises(ProtocolError) as exc:
        protocol.parse("{nope")
    assert exc.value.code == 1 and exc.value.reconnect is False


def test_server_messages_carry_client_and_installation() -> None:
    body = orjson.loads(protocol.message("subscribed", "c1", "i1", requestId=2))
    assert body == {"op": "subscribed", "clientId": "c1", "installationId": "i1", "requestId": 2}
    error = orjson.loads(protocol.error(2, "nope"))
    assert error == {
        "op": "error",
        "code": 2,
        "error": "nope",
        "reconnect": True,
        "requestId": None,
    }


@pytest.mark.anyio
async def test_errors_over_the_socket(server: LiveServer, client: ParseClient) -> None:
    cls = unique_class("Lq")
    client.create_class(cls, {"name": {"type": "String"}})
    live = await LiveClient.open(server.url)
    try:
        await live.send({"op": "subscribe", "requestId": 1, "query": sub_query()})
        early = await live.expect("error")
        assert early["code"] == 2 and "connect" in early["error"]

        await live.send({"op": "connect", "applicationId": "someone-else"})
        assert (await live.expect("error"))["code"] == 4
        await live.send(
            {"op": "connect", "applicationId": server.app_id, "masterKey": "not-the-key"}
        )
        assert (await live.expect("error"))["code"] == 4

        connected = await live.connect(server.app_id, installationId="inst-1")
        assert connected["installationId"] == "inst-1" and connected["clientId"]
        await live.send({"op": "unsubscribe", "requestId": 9})
        missing = await live.expect("error")
        assert missing["code"] == 2 and missing["requestId"] == 9
        await live.send({"op": "connect", "applicationId": server.app_id, "extra": True})
        assert (await live.expect("error"))["error"] == "Additional properties not allowed"
        subscribed = await live.subscribe(2, cls)
        assert subscribed["installationId"] == "inst-1"
    finally:
        await live.close()


@pytest.mark.anyio
async def test_websocket_also_answers_with_trailing_slash(server: LiveServer) -> None:
    live = await session_client(server.url + "/", server.app_id)
    await live.close()
