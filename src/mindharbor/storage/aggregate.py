"""Parse's ``/aggregate/{class}``: pipelines and ``distinct``, as SQL (one statement each).

The stages Parse Server documents for PostgreSQL: ``$match`` (a Parse ``where``, compiled by
``storage/where.py``), one ``$group`` (``_id`` a field, an object of fields or date parts, or
null; accumulators ``$sum`` of a field or of a constant (a count), ``$avg``, ``$min``,
``$max``), ``$project``, ``$sort``, ``$skip``, ``$limit``. A ``$group`` becomes ``GROUP BY``;
stages after it filter, order and cut the groups. Without a ``$group`` the pipeline is a find.
The caller's access filter is in every statement (the route needs the master key, as in
Parse, but the filter is applied by construction). Cost is bounded: at most ``MAX_STAGES``
stages, and an answer of more than ``aggregate_max_rows`` rows is refused (102), never cut.

Validation messages that Parse has (``AggregateRouter.getPipeline``/``transformStage``) are
Parse's; the shapes Parse's PostgreSQL adapter would turn into broken SQL are refused (102).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mindharbor.errors import InvalidKeyName, InvalidQuery
from mindharbor.storage.codec import iso, parse_iso
from mindharbor.storage.where import WhereCompiler, field_column

if TYPE_CHECKING:
    from mindharbor.storage.repository import Repository
    from mindharbor.storage.schema import ClassSchema

MAX_STAGES = 20
_ACCUMULATORS = ("$sum", "$avg", "$min", "$max")
_STAGES = frozenset({"$match", "$group", "$project", "$sort", "$skip", "$limit"})
_COMPARE = {"$eq": "=", "$ne": "!=", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
# Parse's ``mongoAggregateToPostgres``; SQLite gets the parts strftime can give.
_PG_PARTS = {
    "$dayOfMonth": "day",
    "$dayOfWeek": "dow",
    "$dayOfYear": "doy",
    "$isoDayOfWeek": "isodow",
    "$isoWeekYear": "isoyear",
    "$hour": "hour",
    "$minute": "minute",
    "$second": "second",
    "$millisecond": "milliseconds",
    "$month": "month",
    "$week": "week",
    "$year": "year",
}
_SQLITE_PARTS = {
    "$dayOfMonth": "%d",
    "$dayOfWeek": "%w",
    "$dayOfYear": "%j",
    "$hour": "%H",
    "$minute": "%M",
    "$second": "%S",
    "$month": "%m",
    "$year": "%Y",
}


@dataclass
class Plan:
    """A pipeline, checked: the where before the group, the group, what comes after."""

    where: list[dict[str, Any]] = field(default_factory=list)
    group: dict[str, Any] | None = None
    having: list[dict[str, Any]] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)  # (key, descending)
    skip: int = 0
    limit: int | None = None
    project: list[str] | None = None


def stages_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Parse's ``getPipeline``: ``pipeline`` (an array, or an object of stages) or the body's
    own stage keys; ``distinct`` and ``where`` are not stages."""
    pipeline = body.get("pipeline", body)
    if isinstance(pipeline, dict):
        pipeline = [{k: v} for k, v in pipeline.items() if v is not None]
    if not isinstance(pipeline, list):
        raise InvalidQuery("pipeline must be an array of stages.")
    stages: list[dict[str, Any]] = []
    for stage in pipeline:
        if not isinstance(stage, dict) or len(stage) != 1:
            found = ", ".join(stage) if isinstance(stage, dict) else str(stage)
            raise InvalidQuery(f"Pipeline stages should only have one key but found {found}.")
        ((name, arg),) = stage.items()
        if name in ("distinct", "where"):
            continue
        if not name.startswith("$"):
            raise InvalidQuery(f"Invalid aggregate stage '{name}'.")
        if name == "$group":
            if not isinstance(arg, dict):
                raise InvalidQuery("$group must be an object.")
            if "objectId" in arg:
                raise InvalidQuery("Cannot use 'objectId' in aggregation stage $group.")
            if "_id" not in arg:
                raise InvalidQuery("Invalid parameter for query: group. Missing key _id")
        stages.append({name: arg})
    return stages


def _count(name: str, arg: Any) -> int:
    if isinstance(arg, bool) or not isinstance(arg, int) or arg < 0:
        raise InvalidQuery(f"{name} must be a non-negative integer.")
    return arg


def plan(stages: list[dict[str, Any]]) -> Plan:
    if len(stages) > MAX_STAGES:
        raise InvalidQuery(f"An aggregation has at most {MAX_STAGES} stages.")
    result = Plan()
    for stage in stages:
        ((name, arg),) = stage.items()
        if name not in _STAGES:
            raise InvalidQuery(f"Unsupported aggregate stage: {name}.")
        cut = result.skip > 0 or result.limit is not None
        if name == "$match":
            if not isinstance(arg, dict):
                raise InvalidQuery("$match must be an object.")
            if cut or result.sort:
                raise InvalidQuery("$match after $sort, $skip or $limit is unsupported.")
            (result.having if result.group is not None else result.where).append(arg)
        elif name == "$group":
            if result.group is not None:
                raise InvalidQuery("An aggregation has at most one $group.")
            if cut or result.sort:
                raise InvalidQuery("$group after $sort, $skip or $limit is unsupported.")
            result.group = arg
            result.project = None  # a $project before the group only narrows its input
        elif name == "$sort":
            if cut:
                raise InvalidQuery("$sort after $skip or $limit is unsupported.")
            if not isinstance(arg, dict) or not arg or any(v not in (1, -1) for v in arg.values()):
                raise InvalidQuery("$sort takes an object of fields with 1 or -1.")
            result.sort = [(str(k), v == -1) for k, v in arg.items()]
        elif name == "$skip":
            n = _count(name, arg)
            result.skip += n
            if result.limit is not None:
                result.limit = max(result.limit - n, 0)
        elif name == "$limit":
            n = _count(name, arg)
            result.limit = n if result.limit is None else min(result.limit, n)
        else:  # $project
            if not isinstance(arg, dict):
                raise InvalidQuery("$project must be an object.")
            kept = [str(k) for k, v in arg.items() if v in (1, True)]
            result.project = (
                kept if result.project is None else [k for k in result.project if k in kept]
            )
    return result


def _dated(schema: ClassSchema, where: Any) -> Any:
    """A ``$match`` as a where: ``_id`` is ``objectId``, and ISO strings compared with a Date
    field are Dates (the SDK sends a pipeline as plain JSON, where a Date is its ISO text)."""
    if isinstance(where, list):
        return [_dated(schema, w) for w in where]
    if not isinstance(where, dict):
        return where
    out: dict[str, Any] = {}
    for key, value in where.items():
        key = "objectId" if key == "_id" else key
        if key in ("$or", "$and", "$nor"):
            out[key] = _dated(schema, value)
            continue
        spec = schema.field(key)
        if key in ("createdAt", "updatedAt") or (spec is not None and spec.type == "Date"):
            value = _as_date(value)
        out[key] = value
    return out


def _as_date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parse_iso(value)
        except (ValueError, TypeError):
            return value
        return {"__type": "Date", "iso": value}
    if isinstance(value, dict) and "__type" not in value:
        return {op: _as_date(v) if op.startswith("$") else v for op, v in value.items()}
    if isinstance(value, list):
        return [_as_date(v) for v in value]
    return value


def where_of(schema: ClassSchema, found: Plan) -> dict[str, Any]:
    """The ``$match``es before the group, as one where."""
    if not found.where:
        return {}
    matches = [_dated(schema, m) for m in found.where]
    return matches[0] if len(matches) == 1 else {"$and": matches}


def _source(value: Any) -> str:
    """Parse's ``transformAggregateField``: ``"$field"`` → ``field``."""
    if value in ("$_created_at", "$_updated_at"):
        return "createdAt" if value == "$_created_at" else "updatedAt"
    if not isinstance(value, str) or not value.startswith("$") or len(value) < 2:
        raise InvalidKeyName(f"Invalid field name: {value}")
    return value[1:]


class _Builder:
    def __init__(self, repo: Repository, schema: ClassSchema, table: sa.Table) -> None:
        self.repo, self.schema, self.table = repo, schema, table
        self.compiler = WhereCompiler(repo)
        self.pg = repo.dialect == "postgresql"

    def column(self, ref: Any, types: tuple[str, ...] | None = None) -> Any:
        name = _source(ref)
        found = field_column(self.compiler, self.schema, self.table, name)
        if found is None:
            return sa.null()  # a missing field is null in every row, as in Mongo
        col, kind = found
        if kind == "Array" or (types is not None and kind not in types):
            raise InvalidQuery(f"{name} ({kind}) cannot be used here.")
        return col

    def date_part(self, op: str, ref: Any) -> Any:
        col = self.column(ref, ("Date",))
        if self.pg:
            if op not in _PG_PARTS:
                raise InvalidQuery(f"Unsupported date operator: {op}.")
            return sa.cast(sa.extract(_PG_PARTS[op], col), sa.Integer)
        if op not in _SQLITE_PARTS:
            raise InvalidQuery(f"Unsupported date operator on this database: {op}.")
        return sa.cast(sa.func.strftime(_SQLITE_PARTS[op], col), sa.Integer)

    def key_columns(self, key: Any) -> list[tuple[str, Any]]:
        """The group key as (output name, expression); ``objectId`` holds it, or its parts."""
        if key is None or key in ("", {}, []):
            return []
        if isinstance(key, str):
            return [("objectId", self.column(key))]
        if not isinstance(key, dict):
            raise InvalidQuery("$group _id must be null, a field or an object.")
        parts: list[tuple[str, Any]] = []
        for alias, value in key.items():
            if isinstance(value, dict) and len(value) == 1:
                ((op, ref),) = value.items()
                parts.append((str(alias), self.date_part(op, ref)))
            else:
                parts.append((str(alias), self.column(value)))
        return parts

    def accumulators(self, group: dict[str, Any]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for alias, spec in group.items():
            if alias == "_id":
                continue
            if (
                not isinstance(spec, dict)
                or len(spec) != 1
                or next(iter(spec)) not in _ACCUMULATORS
            ):
                raise InvalidQuery(f"$group {alias} needs one of {', '.join(_ACCUMULATORS)}.")
            ((op, ref),) = spec.items()
            if op == "$sum" and not isinstance(ref, str):
                if isinstance(ref, bool) or not isinstance(ref, int | float):
                    raise InvalidQuery("$sum takes a field or a number.")
                out.append((alias, sa.func.count() * ref if ref != 1 else sa.func.count()))
                continue
            numeric = op in ("$sum", "$avg")
            col = self.column(ref, ("Number",) if numeric else ("Number", "Date", "String"))
            if op == "$sum":
                out.append((alias, sa.func.sum(col)))
            elif op == "$avg":
                out.append((alias, sa.func.avg(col)))
            else:
                out.append((alias, sa.func.min(col) if op == "$min" else sa.func.max(col)))
        return out


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _operand(value: Any) -> Any:
    if isinstance(value, dict) and value.get("__type") == "Date":
        return parse_iso(value.get("iso"))
    if isinstance(value, list | dict):
        raise InvalidQuery("$match after $group compares with plain values.")
    return value


def _having(columns: dict[str, Any], match: dict[str, Any]) -> list[Any]:
    """``$match`` on the groups: equality and comparisons on the key or an accumulator."""
    conds: list[Any] = []
    for key, value in match.items():
        col = columns.get("objectId" if key == "_id" else key)
        if col is None:
            raise InvalidQuery(f"$match after $group: no output field {key}.")
        ops = value if isinstance(value, dict) and "__type" not in value else {"$eq": value}
        for op, arg in ops.items():
            if op in ("$in", "$nin") and isinstance(arg, list):
                test = col.in_([_operand(v) for v in arg])
                conds.append(test if op == "$in" else sa.not_(test))
            elif op in _COMPARE:
                conds.append(col.op(_COMPARE[op])(_operand(arg)))
            else:
                raise InvalidQuery(f"Unsupported operator after $group: {op}.")
    return conds


async def grouped(repo: Repository, schema: ClassSchema, found: Plan) -> list[dict[str, Any]]:
    """A pipeline with a ``$group``: one ``GROUP BY`` statement; the rows it summarised are
    counted for the audit (``Repository.note_aggregate``)."""
    assert found.group is not None
    table = repo.table(schema)
    build = _Builder(repo, schema, table)
    where = where_of(schema, found)
    cond = sa.and_(
        build.compiler.compile(schema, table, where), repo.readable(schema, table, "find")
    )
    keys = build.key_columns(found.group.get("_id"))
    outputs = keys + build.accumulators(found.group)
    labels = [expr.label(f"c{i}") for i, (_, expr) in enumerate(outputs)]
    stmt = (
        sa.select(*labels, sa.func.count().label("_rows"))
        .select_from(table)
        .where(cond)
        .group_by(*(expr for _, expr in keys))
    )
    # What later stages may name: the accumulators, and ``objectId`` (a field key) or
    # ``objectId.alias`` / ``_id.alias`` (the parts of an object key).
    object_key = isinstance(found.group.get("_id"), dict) and bool(keys)
    prefix = ("objectId.", "_id.") if object_key else ("",)
    by_name = {name: labels[i] for i, (name, _) in enumerate(outputs) if i >= len(keys)}
    for i, (name, _) in enumerate(keys):
        by_name.update({p + name: labels[i] for p in prefix})
    for match in found.having:
        stmt = stmt.having(sa.and_(*_having(by_name, match)))
    order = []
    for key, descending in found.sort:
        col = by_name.get("objectId" if key == "_id" else key)
        if col is None:
            raise InvalidQuery(f"$sort after $group: no output field {key}.")
        order.append(col.desc() if descending else col.asc())
    bound = repo.store.settings.aggregate_max_rows
    stmt = (
        stmt.order_by(*order)
        .offset(found.skip)
        .limit(min(found.limit, bound + 1) if found.limit is not None else bound + 1)
    )
    rows = (await repo.conn.execute(stmt)).all()
    if len(rows) > bound:
        raise InvalidQuery(f"The aggregation answers more than {bound} rows; add a $limit.")
    results: list[dict[str, Any]] = []
    summarised = 0
    for row in rows:
        values = [_value(v) for v in row[:-1]]
        summarised += int(row[-1])
        obj: dict[str, Any] = {}
        if not keys:
            obj["objectId"] = None
        elif object_key:
            obj["objectId"] = {name: values[i] for i, (name, _) in enumerate(keys)}
        else:
            obj["objectId"] = values[0]
        for i, (name, _) in enumerate(outputs[len(keys) :], start=len(keys)):
            obj[name] = values[i]
        if found.project is not None:
            obj = {k: v for k, v in obj.items() if k in found.project or k == "objectId"}
        results.append(obj)
    repo.note_aggregate(schema, where, summarised)
    return results


async def distinct(
    repo: Repository, schema: ClassSchema, key: str, where: dict[str, Any]
) -> list[Any]:
    """``SELECT DISTINCT`` of one field (array fields: their distinct elements), nulls left out;
    Pointers answered as Pointers, as Parse's adapter does."""
    head, _, rest = key.partition(".")
    path = rest.split(".") if rest else []
    table = repo.table(schema)
    compiler = WhereCompiler(repo)
    spec = schema.field(head)
    if path and (spec is None or spec.type != "Object" or not all(path)):
        raise InvalidKeyName(f"Invalid field name: {key}")
    found = field_column(compiler, schema, table, head) if not path else (table.c[head], "Path")
    if found is None:
        return []
    col, kind = found
    cond = sa.and_(compiler.compile(schema, table, where), repo.readable(schema, table, "find"))
    bound = repo.store.settings.aggregate_max_rows
    stmt = sa.select(col).distinct().where(cond, col.is_not(None)).limit(bound + 1)
    values = [row[0] for row in (await repo.conn.execute(stmt)).all()]
    if len(values) > bound:
        raise InvalidQuery(f"distinct answers more than {bound} values.")
    if kind in ("Array", "Path"):
        seen: list[Any] = []
        for stored in values:
            items = stored if kind == "Array" else [_at(stored, path)]
            for item in items if isinstance(items, list) else []:
                if item is not None and item not in seen:
                    seen.append(item)
        values = seen
    if kind == "Pointer" and spec is not None:
        values = [
            {"__type": "Pointer", "className": spec.target_class, "objectId": v} for v in values
        ]
    repo.note_aggregate(schema, where, len(values))
    return [_value(v) for v in values]


def _at(value: Any, path: list[str]) -> Any:
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value
