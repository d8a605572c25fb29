"""LiveQuery subscriptions with geo operators (issue 18), over real sockets on both backends:
the events follow the same exact tests the SQL runs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.live_query.wsclient import session_client
from tests.support import LiveServer, ParseClient, unique_class

pytestmark = pytest.mark.anyio


def gp(lat: float, lng: float) -> dict[str, Any]:
    return {"__type": "GeoPoint", "latitude": lat, "longitude": lng}


SFO = gp(37.6189722, -122.3748889)


async def test_near_and_polygon_subscriptions(server: LiveServer, client: ParseClient) -> None:
    cls = unique_class("LqGeo")
    client.create_class(
        cls,
        {"name": {"type": "String"}, "location": {"type": "GeoPoint"}, "area": {"type": "Polygon"}},
    )
    live = await session_client(server.url, server.app_id)
    try:
        near = {"location": {"$nearSphere": SFO, "$maxDistanceInKilometers": 100}}
        await live.subscribe(1, cls, near)
        await live.subscribe(2, cls, {"area": {"$geoIntersects": {"$point": gp(0.5, 0.5)}}})

        oid = client.create(cls, {"name": "sf", "location": gp(37.75, -122.68)})
        created = await live.expect("create")
        assert created["requestId"] == 1 and created["object"]["objectId"] == oid

        client.create(cls, {"name": "honolulu", "location": gp(21.35, -157.93)})
        await live.silent()

        client.put(f"/classes/{cls}/{oid}", {"location": gp(21.35, -157.93)}, master=True)
        assert (await live.expect("leave"))["requestId"] == 1

        square = {"__type": "Polygon", "coordinates": [[0, 0], [0, 1], [1, 1], [1, 0]]}
        client.create(cls, {"name": "square", "area": square})
        created = await live.expect("create")
        assert created["requestId"] == 2
        assert created["object"]["area"]["coordinates"][-1] == [0, 0]  # stored closed
    finally:
        await live.close()


async def test_a_bad_geo_subscription_is_refused(server: LiveServer, client: ParseClient) -> None:
    cls = unique_class("LqGeoBad")
    client.create_class(cls, {"location": {"type": "GeoPoint"}})
    live = await session_client(server.url, server.app_id)
    try:
        await live.send(
            {
                "op": "subscribe",
                "requestId": 3,
                "query": {"className": cls, "where": {"location": {"$within": {"$box": [SFO]}}}},
            }
        )
        error = await live.expect("error")
        assert error["code"] == 107
    finally:
        await live.close()
