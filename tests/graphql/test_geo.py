"""Geo queries through GraphQL (Parse Server's input shapes): the same answers REST gives, in
the order ``nearSphere`` sets, from the same compiler and access filter."""

from __future__ import annotations

import uuid
from typing import Any

from tests.graphql.conftest import Gql

PUBLIC = {op: {"*": True} for op in ("find", "count", "get", "create", "update", "delete")}
CITIES = {
    "Sacramento": (38.52, -121.50),
    "Honolulu": (21.35, -157.93),
    "San Francisco": (37.75, -122.68),
}
SFO = "{latitude: 37.6189722, longitude: -122.3748889}"


def _seed(g: Gql) -> str:
    cls = f"Clinic{uuid.uuid4().hex[:8]}"
    g.api.create_class(
        cls,
        {"name": {"type": "String"}, "location": {"type": "GeoPoint"}, "area": {"type": "Polygon"}},
        PUBLIC,
    )
    for name, (lat, lng) in CITIES.items():
        ring = [[lat - 1, lng - 1], [lat - 1, lng + 1], [lat + 1, lng + 1], [lat + 1, lng - 1]]
        body: dict[str, Any] = {
            "name": name,
            "location": {"__type": "GeoPoint", "latitude": lat, "longitude": lng},
            "area": {"__type": "Polygon", "coordinates": ring},
        }
        g.api.create(cls, body)
    return cls


def _names(g: Gql, cls: str, where: str) -> list[str]:
    field = cls[:1].lower() + cls[1:] + "s"
    data = g.client.data(f"{{ {field}(where: {where}) {{ edges {{ node {{ name }} }} }} }}")
    return [edge["node"]["name"] for edge in data[field]["edges"]]


def test_geo_where_inputs(gql: Gql) -> None:
    cls = _seed(gql)
    near = f"{{location: {{nearSphere: {SFO}, maxDistanceInKilometers: 3700}}}}"
    assert _names(gql, cls, near) == ["San Francisco", "Sacramento"]
    near = f"{{location: {{nearSphere: {SFO}, maxDistanceInMiles: 75}}}}"
    assert _names(gql, cls, near) == ["San Francisco"]
    box = (
        "{location: {within: {box: {bottomLeft: {latitude: 37, longitude: -123},"
        " upperRight: {latitude: 39, longitude: -121}}}}}"
    )
    assert sorted(_names(gql, cls, box)) == ["Sacramento", "San Francisco"]
    polygon = (
        "{location: {geoWithin: {polygon: [{latitude: 37, longitude: -123},"
        " {latitude: 38, longitude: -123}, {latitude: 38, longitude: -122}]}}}"
    )
    assert _names(gql, cls, polygon) == ["San Francisco"]
    sphere = f"{{location: {{geoWithin: {{centerSphere: {{center: {SFO}, distance: 0.01}}}}}}}}"
    assert _names(gql, cls, sphere) == ["San Francisco"]
    contains = "{area: {geoIntersects: {point: {latitude: 21.5, longitude: -158}}}}"
    assert _names(gql, cls, contains) == ["Honolulu"]
