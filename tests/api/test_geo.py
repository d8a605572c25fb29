"""GeoPoint and Polygon fields and Parse's geo queries over REST, on both backends.

The places and distances are those of the Parse JS SDK's own geo tests (Sacramento, Honolulu and
San Francisco, measured from SFO), so the expected answers are Parse Server's.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.domain.clinic import make_user
from tests.support import ParseClient, unique_class


def gp(lat: float, lng: float) -> dict[str, Any]:
    return {"__type": "GeoPoint", "latitude": lat, "longitude": lng}


SFO = gp(37.6189722, -122.3748889)
CITIES = {
    "Sacramento": gp(38.52, -121.50),
    "Honolulu": gp(21.35, -157.93),
    "San Francisco": gp(37.75, -122.68),
}


class Places:
    def __init__(self, client: ParseClient, acl: dict[str, Any] | None = None) -> None:
        self.client = client
        self.cls = unique_class("Geo")
        client.create_class(
            self.cls,
            {"name": {"type": "String"}, "location": {"type": "GeoPoint"}},
            clp={op: {"*": True} for op in ("find", "count", "get")},
        )
        for name, point in CITIES.items():
            client.create(self.cls, {"name": name, "location": point})

    def names(self, where: dict[str, Any], **params: Any) -> list[str]:
        found = self.client.find(self.cls, where=where, master=False, **params)
        return [r["name"] for r in found["results"]]

    def error(self, where: Any) -> tuple[int, int]:
        response = self.client.get(f"/classes/{self.cls}", params={"where": where}, master=True)
        return response.status_code, response.json()["code"]


def near(point: dict[str, Any], **limit: float) -> dict[str, Any]:
    return {"location": {"$nearSphere": point, **{f"${k}": v for k, v in limit.items()}}}


def test_geopoint_round_trip_and_validation(client: ParseClient) -> None:
    cls = unique_class("GeoSave")
    object_id = client.create(cls, {"location": gp(44.0, -11.0)})
    got = client.get(f"/classes/{cls}/{object_id}", master=True).json()
    assert got["location"] == gp(44.0, -11.0)
    for bad in (gp(91, 0), gp(0, -180.5), {"__type": "GeoPoint", "latitude": "1", "longitude": 0}):
        response = client.post(f"/classes/{cls}", {"location": bad}, master=True)
        assert (response.status_code, response.json()["code"]) == (400, 111), bad


def test_only_one_geopoint_field_per_class(client: ParseClient) -> None:
    cls = unique_class("GeoTwo")
    response = client.post(f"/classes/{cls}", {"a": gp(1, 1), "b": gp(2, 2)}, master=True)
    assert (response.status_code, response.json()["code"]) == (400, 111)
    client.create(cls, {"a": gp(1, 1)})
    response = client.post(f"/classes/{cls}", {"b": gp(2, 2)}, master=True)
    assert (response.status_code, response.json()["code"]) == (400, 111)
    body = {"className": cls, "fields": {"c": {"type": "GeoPoint"}}}
    response = client.put(f"/schemas/{cls}", body, master=True)
    assert (response.status_code, response.json()["code"]) == (400, 111)


def test_polygon_is_stored_closed_and_matches_open_or_closed(client: ParseClient) -> None:
    cls = unique_class("Poly")
    open_ring = [[0, 0], [0, 1], [1, 1], [1, 0]]
    closed = [*open_ring, [0, 0]]
    object_id = client.create(cls, {"area": {"__type": "Polygon", "coordinates": open_ring}})
    got = client.get(f"/classes/{cls}/{object_id}", master=True).json()
    assert got["area"] == {"__type": "Polygon", "coordinates": closed}
    for ring in (open_ring, closed):
        where = {"area": {"__type": "Polygon", "coordinates": ring}}
        assert [r["objectId"] for r in client.find(cls, where=where)["results"]] == [object_id]
    for bad in ([[0, 0], [1, 1]], [[0, 0], [0, 0], [1, 1]], [[0, 0], [0, 1], [91, 0]], "x"):
        body = {"area": {"__type": "Polygon", "coordinates": bad}}
        response = client.post(f"/classes/{cls}", body, master=True)
        assert (response.status_code, response.json()["code"]) == (400, 107), bad


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ({"maxDistanceInKilometers": 4000.0}, ["San Francisco", "Sacramento", "Honolulu"]),
        ({"maxDistanceInKilometers": 3700.0}, ["San Francisco", "Sacramento"]),
        ({"maxDistanceInKilometers": 100.0}, ["San Francisco"]),
        ({"maxDistanceInKilometers": 10.0}, []),
        ({"maxDistanceInMiles": 2500.0}, ["San Francisco", "Sacramento", "Honolulu"]),
        ({"maxDistanceInMiles": 2200.0}, ["San Francisco", "Sacramento"]),
        ({"maxDistanceInMiles": 75.0}, ["San Francisco"]),
        ({"maxDistanceInMiles": 10.0}, []),
        ({"maxDistanceInRadians": 0.01}, ["San Francisco"]),
        ({"maxDistance": 0.61}, ["San Francisco", "Sacramento", "Honolulu"]),
        ({"maxDistance": 0.6}, ["San Francisco", "Sacramento"]),
        ({}, ["San Francisco", "Sacramento", "Honolulu"]),
    ],
)
def test_near_sphere_with_each_unit_nearest_first(
    client: ParseClient, limit: dict[str, float], expected: list[str]
) -> None:
    places = Places(client)
    assert places.names(near(SFO, **limit)) == expected


def test_near_sphere_yields_to_an_explicit_order_and_counts(client: ParseClient) -> None:
    places = Places(client)
    where = near(SFO, maxDistanceInKilometers=3700.0)
    assert places.names(where, order="name") == ["Sacramento", "San Francisco"]
    found = client.find(places.cls, where=where, count=1, limit=0, master=False)
    assert found["count"] == 2


def test_line_of_points_sequenced_by_distance(client: ParseClient) -> None:
    cls = unique_class("Line")
    for i in range(10):
        client.create(cls, {"seq": i, "location": gp(i * 4 - 12, i * 3.2 - 11)})
    where = {"location": {"$nearSphere": gp(24, 19), "$maxDistanceInMiles": 10000}}
    seqs = [r["seq"] for r in client.find(cls, where=where)["results"]]
    assert seqs == list(range(9, -1, -1))


def test_near_across_the_antimeridian_and_a_pole(client: ParseClient) -> None:
    cls = unique_class("Wrap")
    client.create(cls, {"name": "east", "location": gp(0, 179.9)})
    client.create(cls, {"name": "west", "location": gp(0, -179.9)})
    client.create(cls, {"name": "pole", "location": gp(89.9, 40)})
    where = {"location": {"$nearSphere": gp(0, 179.95), "$maxDistanceInKilometers": 50}}
    assert [r["name"] for r in client.find(cls, where=where)["results"]] == ["east", "west"]
    where = {"location": {"$nearSphere": gp(89.95, -140), "$maxDistanceInKilometers": 20}}
    assert [r["name"] for r in client.find(cls, where=where)["results"]] == ["pole"]


def test_within_box_with_corners_in_either_order(client: ParseClient) -> None:
    places = Places(client)
    south_west, north_east = gp(37.708813, -122.826398), gp(38.822802, -121.373962)
    for box in ([south_west, north_east], [north_east, south_west]):
        names = places.names({"location": {"$within": {"$box": box}}}, order="name")
        assert names == ["Sacramento", "San Francisco"]


def test_geo_within_polygon_and_center_sphere(client: ParseClient) -> None:
    places = Places(client)
    bay = [gp(37.85, -122.33), gp(37.85, -122.90), gp(37.68, -122.90), gp(37.68, -122.33)]
    assert places.names({"location": {"$geoWithin": {"$polygon": bay}}}) == ["San Francisco"]
    closed = [gp(38.52, -121.50), gp(37.75, -157.93), gp(37.578072, -121.379914)]
    closed.append(closed[0])
    names = places.names({"location": {"$geoWithin": {"$polygon": closed}}}, order="name")
    assert names == ["Sacramento", "San Francisco"]  # a vertex on Sacramento counts
    as_pairs = [[p["longitude"], p["latitude"]] for p in bay]  # GeoJSON order, as Parse takes
    assert places.names({"location": {"$geoWithin": {"$polygon": as_pairs}}}) == ["San Francisco"]
    radians = 100 / 6371
    for center in (SFO, [SFO["longitude"], SFO["latitude"]]):
        where = {"location": {"$geoWithin": {"$centerSphere": [center, radians]}}}
        assert places.names(where) == ["San Francisco"]


def test_geo_intersects_point_on_polygon_fields(client: ParseClient) -> None:
    cls = unique_class("Area")
    rings = {
        "small": [[0, 0], [0, 1], [1, 1], [1, 0]],
        "large": [[0, 0], [0, 2], [2, 2], [2, 0]],
        "far": [[10, 10], [10, 15], [15, 15], [15, 10], [10, 10]],
    }
    for name, ring in rings.items():
        client.create(cls, {"name": name, "area": {"__type": "Polygon", "coordinates": ring}})
    where = {"area": {"$geoIntersects": {"$point": gp(0.5, 0.5)}}}
    assert sorted(r["name"] for r in client.find(cls, where=where)["results"]) == [
        "large",
        "small",
    ]
    where = {"area": {"$geoIntersects": {"$point": gp(1.5, 0.5)}}}
    assert [r["name"] for r in client.find(cls, where=where)["results"]] == ["large"]


def test_access_filter_is_inside_the_geo_statement(client: ParseClient) -> None:
    """Private rows nearest the point: a limit of 2 still returns the 2 nearest public rows."""
    places = Places(client)
    for i in range(3):
        body = {"name": f"private{i}", "location": gp(37.62, -122.37), "ACL": {}}
        client.create(places.cls, body)
    where = near(SFO, maxDistanceInKilometers=4000.0)
    assert places.names(where, limit=2) == ["San Francisco", "Sacramento"]
    found = client.find(places.cls, where=where, count=1, limit=0, master=False)
    assert found["count"] == 3


@pytest.mark.parametrize(
    ("where", "status_code"),
    [
        ({"name": {"$nearSphere": SFO}}, (400, 102)),
        ({"location": {"$maxDistance": 1}}, (400, 102)),
        ({"location": {"$nearSphere": gp(95, 0)}}, (400, 107)),
        ({"location": {"$nearSphere": SFO, "$maxDistance": -1}}, (400, 107)),
        ({"location": {"$within": {"$box": [SFO]}}}, (400, 107)),
        ({"location": {"$geoWithin": {"$polygon": 1234}}}, (400, 107)),
        ({"location": {"$geoWithin": {"$polygon": [1234]}}}, (400, 107)),
        ({"location": {"$geoWithin": {"$polygon": [SFO, SFO]}}}, (400, 107)),
        ({"location": {"$geoWithin": {"$centerSphere": [SFO]}}}, (400, 107)),
        ({"location": {"$geoIntersects": {"$point": 1}}}, (400, 107)),
        ({"location": {"$geoIntersects": {"$point": SFO}}}, (400, 102)),
    ],
)
def test_bad_geo_queries_get_parse_errors(
    client: ParseClient, where: dict[str, Any], status_code: tuple[int, int]
) -> None:
    places = Places(client)
    assert places.error(where) == status_code


def test_geo_operators_on_a_missing_field_match_nothing(client: ParseClient) -> None:
    places = Places(client)
    assert places.names({"nowhere": {"$nearSphere": SFO}}) == []


def test_one_shape_with_other_values_answers_for_its_own_values(client: ParseClient) -> None:
    """On PostgreSQL a find's SQL is kept by shape (storage/shapes.py): a geo query's derived
    values (boxes, radians) must never be served from another request's statement."""
    places = Places(client)
    for name, point in CITIES.items():
        assert places.names(near(point, maxDistanceInKilometers=50.0)) == [name]
        box = [gp(point["latitude"] - 0.1, point["longitude"] - 0.1), point]
        assert places.names({"location": {"$within": {"$box": box}}}) == [name]


def test_provider_finder_within_25_miles(client: ParseClient) -> None:
    """The built-in ProviderProfile.location: a signed-in patient finds the providers within
    25 miles, nearest first; anonymous callers are refused, as for every ProviderProfile read."""
    clinics = {
        "Mission": gp(37.76, -122.42),
        "Oakland": gp(37.80, -122.27),
        "Davis": gp(38.54, -121.74),
    }
    tag = unique_class("dr")
    for name, point in clinics.items():
        user_id, _ = make_user(client, "provider")
        body = {
            "user": {"__type": "Pointer", "className": "_User", "objectId": user_id},
            "displayName": f"{tag} {name}",
            "location": point,
        }
        response = client.post("/classes/ProviderProfile", body, master=True)
        assert response.status_code == 201, response.text
    _, token = make_user(client, "patient")
    where = {
        "displayName": {"$regex": f"^{tag} "},
        "location": {"$nearSphere": gp(37.7749, -122.4194), "$maxDistanceInMiles": 25},
    }
    response = client.get(
        "/classes/ProviderProfile",
        params={"where": where},
        headers={"X-Parse-Session-Token": token},
    )
    assert response.status_code == 200, response.text
    names = [r["displayName"].removeprefix(f"{tag} ") for r in response.json()["results"]]
    assert names == ["Mission", "Oakland"]
    anonymous = client.get("/classes/ProviderProfile", params={"where": where})
    assert anonymous.status_code in (400, 401, 403) and anonymous.json()["code"] in (119, 209)


def test_a_geopoint_field_can_be_deleted_with_its_index(client: ParseClient) -> None:
    cls = unique_class("GeoDrop")
    client.create_class(cls, {"name": {"type": "String"}, "location": {"type": "GeoPoint"}})
    client.create(cls, {"name": "a", "location": gp(1, 2)})
    body = {"className": cls, "fields": {"location": {"__op": "Delete"}}}
    response = client.put(f"/schemas/{cls}", body, master=True)
    assert response.status_code == 200, response.text
    client.create(cls, {"name": "b", "spot": gp(3, 4)})  # the class's one GeoPoint, anew
    where = {"spot": {"$nearSphere": gp(3, 4), "$maxDistance": 0.1}}
    assert [r["name"] for r in client.find(cls, where=where)["results"]] == ["b"]
