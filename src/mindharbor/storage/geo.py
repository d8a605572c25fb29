"""Parse's geo values and query operators: validation and exact tests, shared by every evaluator.

GeoPoints are ``{"__type": "GeoPoint", "latitude", "longitude"}`` (degrees; latitude -90..90,
longitude -180..180). Polygons are ``{"__type": "Polygon", "coordinates": [[lat, lng], ...]}``,
stored closed (the first point repeated at the end, as Parse returns them). Operands of the query
operators follow Parse Server: GeoPoint JSON, or ``[longitude, latitude]`` pairs (GeoJSON order)
inside ``$polygon`` and ``$centerSphere``.

The operators (``parse_ops`` turns them into ``Constraint`` values, raising Parse's errors):
``$nearSphere`` (+ ``$maxDistance``/``InRadians``/``InMiles``/``InKilometers``; radians on a
sphere of 6371 km / 3959 miles, as Parse Server converts them), ``$within: {$box}`` (corners in
either order, bounds inclusive), ``$geoWithin: {$polygon | $centerSphere}`` and, on Polygon
fields, ``$geoIntersects: {$point}``.

The exact tests here are the semantics: SQLite runs them as registered SQL functions, the
live-query matcher calls them directly, and PostgreSQL's SQL (``storage/geo_sql.py``) computes
the same haversine formula and uses its built-in ``point <@ polygon``, whose crossing-number test
``contains`` mirrors (a point within ``EPSILON`` of an edge is inside), so the three agree.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from mindharbor.errors import IncorrectType, InvalidJSON, InvalidQuery

EARTH_RADIUS_KM = 6371.0
EARTH_RADIUS_MILES = 3959.0
MAX_POLYGON_POINTS = 10_000
EPSILON = 1.0e-06  # PostgreSQL's geometric tolerance (geo_decls.h), in degrees here
DISTANCE_KEYS = {
    "$maxDistance": 1.0,
    "$maxDistanceInRadians": 1.0,
    "$maxDistanceInMiles": 1.0 / EARTH_RADIUS_MILES,
    "$maxDistanceInKilometers": 1.0 / EARTH_RADIUS_KM,
}
GEO_OPS = frozenset({"$nearSphere", "$within", "$geoWithin", "$geoIntersects", *DISTANCE_KEYS})
Point = tuple[float, float]  # (x, y) as the test is run: see each constraint


@dataclass(frozen=True, slots=True)
class Near:
    """``$nearSphere``: within ``max_radians`` of the point (any distance when None); the
    results are ordered by that distance unless the query gives an order."""

    lat: float
    lng: float
    max_radians: float | None


@dataclass(frozen=True, slots=True)
class Box:
    """``$within: {$box}``, corners normalised; bounds inclusive."""

    south: float
    west: float
    north: float
    east: float


@dataclass(frozen=True, slots=True)
class Sphere:
    """``$geoWithin: {$centerSphere}``: within ``radians`` of the point."""

    lat: float
    lng: float
    radians: float


@dataclass(frozen=True, slots=True)
class InPolygon:
    """``$geoWithin: {$polygon}``: the GeoPoint lies in the ring; points are (lng, lat)."""

    ring: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Contains:
    """``$geoIntersects: {$point}`` on a Polygon field: the stored polygon holds the point."""

    lat: float
    lng: float


Constraint = Near | Box | Sphere | InPolygon | Contains


# -- values --------------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _in_range(lat: float, lng: float) -> bool:
    return -90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0


def check_geopoint(value: Any) -> dict[str, Any]:
    """A GeoPoint to store: numeric latitude/longitude within range, else 111."""
    lat, lng = _number(value.get("latitude")), _number(value.get("longitude"))
    if lat is None or lng is None:
        raise IncorrectType("GeoPoint latitude and longitude must be valid numbers")
    if not -90.0 <= lat <= 90.0:
        raise IncorrectType(f"GeoPoint latitude out of bounds: {lat} < -90.0 or > 90.0.")
    if not -180.0 <= lng <= 180.0:
        raise IncorrectType(f"GeoPoint longitude out of bounds: {lng} < -180.0 or > 180.0.")
    return {"__type": "GeoPoint", "latitude": value["latitude"], "longitude": value["longitude"]}


def check_polygon(value: Any) -> dict[str, Any]:
    """A Polygon to store: at least 3 distinct ``[lat, lng]`` points, closed; else 107."""
    coords = value.get("coordinates")
    if not isinstance(coords, list) or len(coords) < 3:
        raise InvalidJSON("Polygon must have at least 3 values")
    if len(coords) > MAX_POLYGON_POINTS:
        raise InvalidJSON(f"Polygon may have at most {MAX_POLYGON_POINTS} points")
    points: list[list[Any]] = []
    for item in coords:
        if not isinstance(item, list) or len(item) != 2:
            raise InvalidJSON("Polygon coordinates must be [latitude, longitude] pairs")
        lat, lng = _number(item[0]), _number(item[1])
        if lat is None or lng is None or not _in_range(lat, lng):
            raise InvalidJSON("Polygon coordinates must be valid latitude/longitude pairs")
        points.append([item[0], item[1]])
    if len({(float(a), float(b)) for a, b in points}) < 3:
        raise InvalidJSON("GeoJSON: Loop must have at least 3 different vertices")
    if float(points[0][0]) != float(points[-1][0]) or float(points[0][1]) != float(points[-1][1]):
        points.append(list(points[0]))
    return {"__type": "Polygon", "coordinates": points}


def polygon_operand(value: Any) -> Any:
    """A Polygon compared for equality: closed as stored, so an open ring matches too."""
    try:
        return check_polygon(value)
    except InvalidJSON:
        return value


# -- operators -----------------------------------------------------------------------------------
def _query_point(value: Any, what: str) -> tuple[float, float]:
    """(lat, lng) of a GeoPoint operand, or 107."""
    if isinstance(value, dict) and value.get("__type") == "GeoPoint":
        lat, lng = _number(value.get("latitude")), _number(value.get("longitude"))
        if lat is not None and lng is not None and _in_range(lat, lng):
            return lat, lng
    raise InvalidJSON(f"bad {what} value; it should be a valid GeoPoint")


def _query_pair_or_point(value: Any, what: str) -> tuple[float, float]:
    """(lat, lng) of a GeoPoint or a GeoJSON ``[lng, lat]`` pair, or 107."""
    if isinstance(value, list) and len(value) == 2:
        lng, lat = _number(value[0]), _number(value[1])
        if lat is not None and lng is not None and _in_range(lat, lng):
            return lat, lng
        raise InvalidJSON(f"bad {what} value; invalid [longitude, latitude] pair")
    return _query_point(value, what)


def _distance(value: Any, what: str) -> float:
    number = _number(value)
    if number is None or number < 0:
        raise InvalidJSON(f"bad {what} value; it should be a non-negative number")
    return number


def parse_ops(field_type: str | None, ops: dict[str, Any]) -> list[Constraint]:
    """The geo constraints among ``ops`` (validated), checked against the field's type
    (``None``: the class has no such field; the constraints then match nothing)."""
    out: list[Constraint] = []
    limits = [key for key in ops if key in DISTANCE_KEYS]
    if limits and "$nearSphere" not in ops:
        raise InvalidQuery(f"{limits[0]} needs $nearSphere.")
    if len(limits) > 1:
        raise InvalidQuery("Give only one of $maxDistance, InRadians, InMiles, InKilometers.")
    if "$nearSphere" in ops:
        lat, lng = _query_point(ops["$nearSphere"], "$nearSphere")
        radians = None
        if limits:
            radians = _distance(ops[limits[0]], limits[0]) * DISTANCE_KEYS[limits[0]]
        out.append(Near(lat, lng, radians))
    if "$within" in ops:
        box = ops["$within"].get("$box") if isinstance(ops["$within"], dict) else None
        if not isinstance(box, list) or len(box) != 2:
            raise InvalidJSON("malformatted $within arg")
        (lat1, lng1), (lat2, lng2) = (_query_point(p, "$within $box") for p in box)
        out.append(Box(min(lat1, lat2), min(lng1, lng2), max(lat1, lat2), max(lng1, lng2)))
    if "$geoWithin" in ops:
        out.append(_geo_within(ops["$geoWithin"]))
    if "$geoIntersects" in ops:
        arg = ops["$geoIntersects"]
        point = arg.get("$point") if isinstance(arg, dict) else None
        if not isinstance(point, dict) or point.get("__type") != "GeoPoint":
            raise InvalidJSON("bad $geoIntersect value; $point should be GeoPoint")
        out.append(Contains(*_query_point(point, "$geoIntersects $point")))
    for constraint in out:
        wanted = "Polygon" if isinstance(constraint, Contains) else "GeoPoint"
        if field_type is not None and field_type != wanted:
            raise InvalidQuery(f"Geo query operators on this field need a {wanted} field.")
    return out


def _geo_within(arg: Any) -> Constraint:
    if not isinstance(arg, dict) or ("$polygon" in arg) == ("$centerSphere" in arg):
        raise InvalidJSON("bad $geoWithin value; give $polygon or $centerSphere")
    if "$centerSphere" in arg:
        sphere = arg["$centerSphere"]
        if not isinstance(sphere, list) or len(sphere) != 2:
            raise InvalidJSON(
                "bad $geoWithin value; $centerSphere should be an array of Parse.GeoPoint "
                "and distance"
            )
        lat, lng = _query_pair_or_point(sphere[0], "$centerSphere")
        return Sphere(lat, lng, _distance(sphere[1], "$centerSphere distance"))
    polygon = arg["$polygon"]
    if isinstance(polygon, dict) and polygon.get("__type") == "Polygon":
        polygon = polygon.get("coordinates")
        if not isinstance(polygon, list) or len(polygon) < 3:
            raise InvalidJSON(
                "bad $geoWithin value; Polygon.coordinates should contain at least 3 lon/lat pairs"
            )
    if not isinstance(polygon, list):
        raise InvalidJSON(
            "bad $geoWithin value; $polygon should be Polygon object or Array of Parse.GeoPoint's"
        )
    if len(polygon) < 3:
        raise InvalidJSON("bad $geoWithin value; $polygon should contain at least 3 GeoPoints")
    ring = []
    for point in polygon:
        lat, lng = _query_pair_or_point(point, "$geoWithin")
        ring.append((lng, lat))
    return InPolygon(tuple(ring))


# -- exact tests ---------------------------------------------------------------------------------
def radians_between(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in radians (haversine; the SQL in geo_sql.py is the same formula,
    term for term, so both give the same bits)."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    s_lat = math.sin((phi1 - phi2) / 2.0)
    s_lng = math.sin((math.radians(lng1) - math.radians(lng2)) / 2.0)
    a = s_lat * s_lat + math.cos(phi1) * math.cos(phi2) * (s_lng * s_lng)
    return 2.0 * math.asin(math.sqrt(min(1.0, a)))


def _crossing(x: float, y: float, px: float, py: float) -> int | None:
    """How the segment (px, py) → (x, y), relative to the tested point, crosses the positive
    x axis: ±2 across it, ±1 touching it, 0 not at all; None when it passes through the point."""
    if abs(y) <= EPSILON:
        if abs(x) <= EPSILON:
            return None
        if x > EPSILON:
            if abs(py) <= EPSILON:
                return 0 if px > EPSILON else None
            return 1 if -py > EPSILON else -1
        if abs(py) <= EPSILON:
            return 0 if -px > EPSILON else None
        return 0
    sign = 1 if y > EPSILON else -1
    if abs(py) <= EPSILON:
        return 0 if -px > EPSILON else sign
    if (sign < 0 and -py > EPSILON) or (sign > 0 and py > EPSILON):
        return 0
    if -x <= EPSILON and px > EPSILON:
        return 2 * sign
    if -x > EPSILON and px <= EPSILON:
        return 0
    z = (x - px) * y - (y - py) * x
    if abs(z) <= EPSILON:
        return None
    if (sign < 0 and -z > EPSILON) or (sign > 0 and z > EPSILON):
        return 0
    return 2 * sign


def contains(ring: Sequence[Point], x: float, y: float) -> bool:
    """Planar point-in-polygon by crossing number, a point on an edge counting as inside:
    the answer of PostgreSQL's ``polygon @> point`` for the same coordinates."""
    if not ring:
        return False
    first_x, first_y = ring[0][0] - x, ring[0][1] - y
    prev_x, prev_y = first_x, first_y
    total = 0
    for vx, vy in ring[1:]:
        cx, cy = vx - x, vy - y
        cross = _crossing(cx, cy, prev_x, prev_y)
        if cross is None:
            return True
        total += cross
        prev_x, prev_y = cx, cy
    cross = _crossing(first_x, first_y, prev_x, prev_y)
    if cross is None:
        return True
    return total + cross != 0


def matches(constraint: Constraint, value: Any) -> bool:
    """Does a stored GeoPoint / Polygon value (Parse JSON, or None) satisfy the constraint?"""
    if not isinstance(value, dict):
        return False
    if isinstance(constraint, Contains):
        ring = _stored_ring(value.get("coordinates"))
        return ring is not None and contains(ring, constraint.lat, constraint.lng)
    lat, lng = _number(value.get("latitude")), _number(value.get("longitude"))
    if lat is None or lng is None:
        return False
    if isinstance(constraint, Near):
        if constraint.max_radians is None:
            return True
        return radians_between(lat, lng, constraint.lat, constraint.lng) <= constraint.max_radians
    if isinstance(constraint, Sphere):
        return radians_between(lat, lng, constraint.lat, constraint.lng) <= constraint.radians
    if isinstance(constraint, Box):
        return (
            constraint.south <= lat <= constraint.north
            and constraint.west <= lng <= constraint.east
        )
    return contains(constraint.ring, lng, lat)


def _stored_ring(coords: Any) -> tuple[Point, ...] | None:
    if not isinstance(coords, list):
        return None
    try:
        return tuple((float(a), float(b)) for a, b in coords)
    except (TypeError, ValueError):
        return None


# -- SQLite functions ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _parsed_ring(text: str) -> tuple[Point, ...] | None:
    try:
        return _stored_ring(orjson.loads(text))
    except orjson.JSONDecodeError:
        return None


def sqlite_radians(lat1: Any, lng1: Any, lat2: Any, lng2: Any) -> float | None:
    """``mh_geo_radians(lat, lng, lat, lng)``: NULL when a coordinate is missing."""
    args = [_number(v) for v in (lat1, lng1, lat2, lng2)]
    if any(v is None for v in args):
        return None
    a, b, c, d = (float(v) for v in args if v is not None)
    return radians_between(a, b, c, d)


def sqlite_contains(ring_json: Any, x: Any, y: Any) -> int | None:
    """``mh_geo_contains(ring_json, x, y)``: 1 when the ring (JSON pairs) holds (x, y)."""
    px, py = _number(x), _number(y)
    if not isinstance(ring_json, str) or px is None or py is None:
        return None
    ring = _parsed_ring(ring_json)
    if ring is None:
        return None
    return 1 if contains(ring, px, py) else 0
