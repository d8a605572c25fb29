"""Geo constraints (``storage/geo.py``) as SQL, in the same statement as the access filter.

Each test is a bounding-box prefilter an index can serve, ANDed with the exact test:

- PostgreSQL (no extension needed): a GeoPoint field gets a GiST index on the built-in
  ``point(longitude, latitude)`` of its JSON value; ``$nearSphere``/``$centerSphere`` and ``$box``
  first ask ``point <@ box`` of that index (two boxes when the circle crosses the antimeridian),
  then compute the haversine distance or compare coordinates; ``$polygon`` is
  ``point <@ polygon`` (GiST-served). ``$geoIntersects`` builds the stored ring as a ``polygon``
  and asks ``@> point``.
- SQLite: an index on (latitude, longitude) of the JSON value serves the box prefilter; the exact
  tests are the registered functions ``mh_geo_radians`` and ``mh_geo_contains`` (``geo.py``).

PostGIS is not used: the built-in geometric types index as well for these operators, and one
code path serves every PostgreSQL (``tests/storage/test_geo_index.py`` EXPLAINs a find over
100,000 rows: a bitmap scan of the GiST index, the access filter in the same scan).
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.sql.elements import ColumnElement

from mindharbor.storage import geo

Clause = ColumnElement[bool]
_MARGIN = 1.0e-5  # degrees added to every prefilter box: wider than any rounding or EPSILON


class _PgPolygon(sa.types.UserDefinedType[Any]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "polygon"


def _key(name: str) -> Any:
    """A constant JSON key or path, rendered inline so an expression index can match it."""
    return sa.literal_column("'" + name + "'")


def coordinates(col: Any, pg: bool) -> tuple[Any, Any]:
    """(latitude, longitude) of a GeoPoint column, as the index on it is built."""
    if pg:
        return (
            sa.cast(col.op("->>")(_key("latitude")), sa.Float),
            sa.cast(col.op("->>")(_key("longitude")), sa.Float),
        )
    return (
        sa.func.json_extract(col, _key("$.latitude")),
        sa.func.json_extract(col, _key("$.longitude")),
    )


def _pg_point(col: Any) -> Any:
    lat, lng = coordinates(col, True)
    return sa.func.point(lng, lat)


def geopoint_index(table: sa.Table, name: str, pg: bool) -> sa.Index:
    """The index a GeoPoint field's queries are served from (one per class: Parse allows one
    GeoPoint field)."""
    col = table.c[name]
    if pg:
        return sa.Index(f"ix_{table.name}_{name}_gist", _pg_point(col), postgresql_using="gist")
    return sa.Index(f"ix_{table.name}_{name}_latlng", *coordinates(col, False))


def _f(value: float) -> Any:
    return sa.literal(float(value), sa.Float)


def _boxes(col: Any, boxes: list[tuple[float, float, float, float]], pg: bool) -> Clause:
    """Is the point in one of the (south, west, north, east) boxes? (the indexed prefilter)"""
    parts: list[Clause] = []
    lat, lng = coordinates(col, pg)
    for south, west, north, east in boxes:
        if pg:
            box = sa.func.box(
                sa.func.point(_f(west), _f(south)), sa.func.point(_f(east), _f(north))
            )
            parts.append(_pg_point(col).op("<@")(box))
        else:
            parts.append(
                sa.and_(lat.between(_f(south), _f(north)), lng.between(_f(west), _f(east)))
            )
    return sa.or_(*parts) if len(parts) > 1 else parts[0]


def cap_boxes(lat: float, lng: float, radians: float) -> list[tuple[float, float, float, float]]:
    """Boxes covering every point within ``radians`` of (lat, lng), with a margin."""
    if radians >= math.pi:
        return [(-90.0, -180.0, 90.0, 180.0)]
    spread = math.degrees(radians) + _MARGIN
    south, north = lat - spread, lat + spread
    if south <= -90.0 or north >= 90.0:  # the circle holds a pole: every longitude
        return [(max(south, -90.0), -180.0, min(north, 90.0), 180.0)]
    ratio = math.sin(radians) / math.cos(math.radians(lat))
    if ratio >= 1.0:
        return [(south, -180.0, north, 180.0)]
    half = math.degrees(math.asin(ratio)) + _MARGIN
    west, east = lng - half, lng + half
    if west < -180.0:
        return [(south, west + 360.0, north, 180.0), (south, -180.0, north, east)]
    if east > 180.0:
        return [(south, west, north, 180.0), (south, -180.0, north, east - 360.0)]
    return [(south, west, north, east)]


def distance(col: Any, lat: float, lng: float, pg: bool) -> Any:
    """Radians from (lat, lng) to the column's point: ``geo.radians_between``, term for term."""
    row_lat, row_lng = coordinates(col, pg)
    if not pg:
        return sa.func.mh_geo_radians(row_lat, row_lng, _f(lat), _f(lng))
    phi1 = sa.func.radians(row_lat)
    phi2 = _f(math.radians(lat))
    s_lat = sa.func.sin((phi1 - phi2) / 2.0)
    s_lng = sa.func.sin((sa.func.radians(row_lng) - _f(math.radians(lng))) / 2.0)
    a = s_lat * s_lat + sa.func.cos(phi1) * _f(math.cos(math.radians(lat))) * (s_lng * s_lng)
    return 2.0 * sa.func.asin(sa.func.sqrt(sa.func.least(1.0, a)))


def _ring_text(ring: tuple[geo.Point, ...]) -> str:
    return "(" + ",".join(f"({x!r},{y!r})" for x, y in ring) + ")"


def _stored_polygon(col: Any) -> Any:
    """PostgreSQL: a Polygon column's ring as a ``polygon`` of (lat, lng) points."""
    elems = (
        sa.func.jsonb_array_elements(col.op("->")(_key("coordinates")))
        .table_valued("value", with_ordinality="ord")
        .render_derived()
    )
    pair = (
        sa.literal("(", sa.Text)
        + elems.c.value.op("->>")(sa.literal_column("0"))
        + sa.literal(",", sa.Text)
        + elems.c.value.op("->>")(sa.literal_column("1"))
        + sa.literal(")", sa.Text)
    )
    joined = sa.func.string_agg(pair, aggregate_order_by(sa.literal(",", sa.Text), elems.c.ord))
    text = sa.literal("(", sa.Text) + joined + sa.literal(")", sa.Text)
    return sa.select(sa.cast(text, _PgPolygon())).select_from(elems).scalar_subquery()


def clause(col: Any, constraint: geo.Constraint, pg: bool) -> Clause:
    """The SQL test of one constraint on a GeoPoint (or, for ``Contains``, Polygon) column."""
    if isinstance(constraint, geo.Contains):
        if pg:
            point = sa.func.point(_f(constraint.lat), _f(constraint.lng))
            return sa.and_(col.is_not(None), _stored_polygon(col).op("@>")(point))
        stored = sa.func.json_extract(col, _key("$.coordinates"))
        return sa.func.mh_geo_contains(stored, _f(constraint.lat), _f(constraint.lng)) == 1
    lat, lng = coordinates(col, pg)
    if isinstance(constraint, geo.Near | geo.Sphere):
        limit = constraint.max_radians if isinstance(constraint, geo.Near) else constraint.radians
        if limit is None:
            return col.is_not(None)
        boxes = cap_boxes(constraint.lat, constraint.lng, limit)
        exact = distance(col, constraint.lat, constraint.lng, pg) <= _f(limit)
        return sa.and_(_boxes(col, boxes, pg), exact)
    if isinstance(constraint, geo.Box):
        c = constraint
        exact = sa.and_(
            lat >= _f(c.south), lat <= _f(c.north), lng >= _f(c.west), lng <= _f(c.east)
        )
        if not pg:  # the exact test is already the indexed range
            return exact
        margin = [(c.south - _MARGIN, c.west - _MARGIN, c.north + _MARGIN, c.east + _MARGIN)]
        return sa.and_(_boxes(col, margin, pg), exact)
    ring = constraint.ring
    if pg:
        polygon = sa.cast(sa.literal(_ring_text(ring), sa.Text), _PgPolygon())
        return _pg_point(col).op("<@")(polygon)
    xs, ys = [x for x, _ in ring], [y for _, y in ring]
    bbox = [(min(ys) - _MARGIN, min(xs) - _MARGIN, max(ys) + _MARGIN, max(xs) + _MARGIN)]
    ring_json = orjson.dumps([list(p) for p in ring]).decode()
    exact = sa.func.mh_geo_contains(sa.literal(ring_json, sa.Text), lng, lat) == 1
    return sa.and_(_boxes(col, bbox, pg), exact)
