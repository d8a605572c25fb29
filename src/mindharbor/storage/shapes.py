"""Query shapes compiled once: a find's SQL, kept by its shape and reused with new values.

Building a find's statement (the ``where`` compiler, the access filter, SQLAlchemy's constructs
and cache key) costs more than running it. Most requests repeat a few shapes: the same class,
the same keys and operators, the same order, only other values. So the first request of a shape
on PostgreSQL compiles its statement to SQL once, and later ones run that SQL (an asyncpg
prepared statement, by its text) with their own values, building nothing.

Which value goes where is not guessed: the statement is built three times, with the request's
values and with two sets of distinct stand-ins (``_Sentinels``). It is kept only if all three
render the very same SQL and every parameter is either the same constant in all three, or the
corresponding value of the request, of set A and of set B (a leaf of the ``where``, the caller's
identities or user id, the limit or skip). A parameter derived from a value in any other way (a
regular expression's translation, a relative time) makes the shape uncacheable, and it is then
built per request as before. Everything the build depends on besides values is in the key: the
class's table version, the shape of the ``where`` (keys, operators, list lengths, pointer
classes, booleans and nulls), the order, the caller's grant (pointer permissions) and protected
fields, whether it is the master key. The class-level permission check still runs per request.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg

from mindharbor.storage.codec import OBJECT_ID_RE, parse_iso
from mindharbor.storage.dberrors import is_database_error, outage, translate_db_error

if TYPE_CHECKING:
    from mindharbor.storage.repository import Repository

_DIALECT = pg_asyncpg.dialect()
LEAF, CONST, IDS, USER, LIMIT, SKIP = range(6)
UNCACHEABLE = object()
_SERIAL = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Request:
    """A find as the cache sees it: the ``where`` plus what else varies per request."""

    where: Any
    limit: int
    skip: int
    identities: list[str]
    user_id: str | None


@dataclass(frozen=True, slots=True)
class Prepared:
    sql: str
    slots: tuple[tuple[int, Any, Callable[[Any], Any] | None], ...]  # (kind, leaf/const, proc)
    columns: tuple[str, ...]


# -- shapes and leaves ---------------------------------------------------------------------------
def _walk(value: Any, leaves: list[tuple[str, Any]], replace: list[Any] | None) -> tuple[Any, Any]:
    """(shape, value with leaves replaced from ``replace`` in walk order, if given)."""
    if isinstance(value, dict):
        kind = value.get("__type")
        if kind == "Pointer" and set(value) == {"__type", "className", "objectId"}:
            leaves.append(("P", value["objectId"]))
            new = value
            if replace is not None:
                new = {**value, "objectId": replace[len(leaves) - 1]}
            return ("P", value["className"]), new
        if kind == "Date" and set(value) == {"__type", "iso"}:
            leaves.append(("D", value["iso"]))
            new = value if replace is None else {"__type": "Date", "iso": replace[len(leaves) - 1]}
            return ("D",), new
        shape_items = []
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in ("className", "key", "__type", "$options") or not isinstance(key, str):
                shape_items.append((key, ("=", _frozen(item))))
                out[key] = item
                continue
            sub_shape, out[key] = _walk(item, leaves, replace)
            shape_items.append((key, sub_shape))
        return ("{", tuple(shape_items)), out
    if isinstance(value, list):
        parts = [_walk(item, leaves, replace) for item in value]
        return ("[", tuple(p[0] for p in parts)), [p[1] for p in parts]
    if isinstance(value, bool) or value is None:
        return ("=", value), value
    if isinstance(value, str | int | float):
        kind = "s" if isinstance(value, str) else "i" if isinstance(value, int) else "f"
        leaves.append((kind, value))
        return (kind,), value if replace is None else replace[len(leaves) - 1]
    return ("=", _frozen(value)), value


def _frozen(value: Any) -> Hashable:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value if isinstance(value, Hashable) else repr(value)


# Sub-queries check another class's permissions for the caller (its CLP, its protected
# fields): a shape holding one is built per request, never reused for another caller.
# ``$text`` too: its language is part of the plan (a regconfig), and its rank is the order.
_SUBQUERY_KEYS = frozenset(
    {"$inQuery", "$notInQuery", "$select", "$dontSelect", "$relatedTo", "$text"}
)


def _has_subquery(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k in _SUBQUERY_KEYS or _has_subquery(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_subquery(v) for v in value)
    return False


def shape_of(where: Any) -> tuple[Hashable, list[tuple[str, Any]]] | None:
    """The where's shape and its leaves in walk order; None: never cached."""
    if _has_subquery(where):
        return None
    leaves: list[tuple[str, Any]] = []
    shape, _ = _walk(where, leaves, None)
    return shape, leaves


def _bound(kind: str, value: Any) -> Any:
    """A leaf's parameter value, as the compiler makes it (Dates decoded)."""
    return parse_iso(value) if kind == "D" else value


def leaf_ok(kind: str, value: Any) -> bool:
    """Values a cached statement may take; anything else goes through the compiler, which
    gives its own answer (an error, or a structure of its own)."""
    if kind in ("s", "P"):
        return (
            isinstance(value, str)
            and "\x00" not in value
            and (kind != "P" or OBJECT_ID_RE.match(value) is not None)
        )
    if kind == "D":
        return isinstance(value, str)
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Sentinels:
    """Distinct stand-ins of each leaf kind, unlike any real value."""

    def __init__(self, leaves: list[tuple[str, Any]]) -> None:
        serial = next(_SERIAL) % 1_000_000
        tag = f"{serial:06d}"
        self.values: list[Any] = []
        for i, (kind, _) in enumerate(leaves):
            if kind in ("s", "P"):
                self.values.append(f"Zs{tag}x{i:04d}")
            elif kind == "i":
                self.values.append(1_000_000_000 + serial * 1000 + i)
            elif kind == "f":
                self.values.append(1e9 + serial + i / 1024 + 0.125)
            else:
                at = datetime(2190, 1, 1) + timedelta(seconds=serial * 1000 + i)  # noqa: DTZ001
                self.values.append(at.isoformat(timespec="milliseconds") + "Z")
        self.identities = ["*", f"Zu{tag}", f"role:Zr{tag}"]
        self.user_id = f"Zu{tag}"
        self.limit = 100_000 + serial % 1000
        self.skip = 200_000 + serial % 1000


# -- the cache -----------------------------------------------------------------------------------
Builder = Callable[[Request], Any]  # a Request -> the SQLAlchemy statement


class ShapeCache:
    """Compiled finds of one worker, by shape (bounded; least recently added go first)."""

    def __init__(self, capacity: int = 2048) -> None:
        self.capacity = capacity
        self._entries: dict[Hashable, Any] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Prepared | object | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
        elif found is not UNCACHEABLE:
            self.hits += 1
        return found

    def put(self, key: Hashable, value: Prepared | object) -> None:
        if len(self._entries) >= self.capacity:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = value

    def __len__(self) -> int:
        return len(self._entries)


def prepare(build: Builder, real: Request, leaves: list[tuple[str, Any]]) -> Prepared | None:
    """The statement's SQL and where each parameter comes from, or None if the build depends
    on the values in a way this cannot follow."""
    a, b = _Sentinels(leaves), _Sentinels(leaves)
    try:
        stmt_r = build(real)
        stmt_a = build(_substituted(real, leaves, a))
        stmt_b = build(_substituted(real, leaves, b))
    except Exception:
        return None
    kwargs = {"render_postcompile": True}
    comp_r = stmt_r.compile(dialect=_DIALECT, compile_kwargs=kwargs)
    comp_a = stmt_a.compile(dialect=_DIALECT, compile_kwargs=kwargs)
    comp_b = stmt_b.compile(dialect=_DIALECT, compile_kwargs=kwargs)
    if not (comp_r.string == comp_a.string == comp_b.string):
        return None
    names = comp_r.positiontup or []
    if names != (comp_a.positiontup or []) or names != (comp_b.positiontup or []):
        return None
    params_r, params_a, params_b = (
        comp_r.construct_params(),
        comp_a.construct_params(),
        comp_b.construct_params(),
    )
    processors = comp_r._bind_processors or {}
    bound_r = [_bound(kind, value) for kind, value in leaves]
    bound_a = [_bound(kind, value) for (kind, _), value in zip(leaves, a.values, strict=True)]
    bound_b = [_bound(kind, value) for (kind, _), value in zip(leaves, b.values, strict=True)]
    slots: list[tuple[int, Any, Callable[[Any], Any] | None]] = []
    for name in names:
        vr, va, vb = params_r[name], params_a[name], params_b[name]
        proc = processors.get(name)
        slot = _classify(vr, va, vb, real, a, b, bound_r, bound_a, bound_b)
        if slot is None:
            return None
        kind, index = slot
        if kind == CONST:
            slots.append((CONST, proc(vr) if proc is not None else vr, None))
        else:
            slots.append((kind, index, proc))
    columns = tuple(c.key for c in stmt_r.selected_columns)
    return Prepared(comp_r.string, tuple(slots), columns)


def _classify(
    vr: Any,
    va: Any,
    vb: Any,
    real: Request,
    a: _Sentinels,
    b: _Sentinels,
    bound_r: list[Any],
    bound_a: list[Any],
    bound_b: list[Any],
) -> tuple[int, Any] | None:
    if _same(va, vb) and _same(vb, vr):
        return CONST, None
    if _same(va, a.identities) and _same(vb, b.identities) and _same(vr, real.identities):
        return IDS, None
    if va == a.user_id and vb == b.user_id and vr == real.user_id:
        return USER, None
    if va == a.limit and vb == b.limit and vr == real.limit:
        return LIMIT, None
    if va == a.skip and vb == b.skip and vr == real.skip:
        return SKIP, None
    for i, (ba, bb) in enumerate(zip(bound_a, bound_b, strict=True)):
        if _same(va, ba) and _same(vb, bb) and _same(vr, bound_r[i]):
            return LEAF, i
    return None


def _same(x: Any, y: Any) -> bool:
    return type(x) is type(y) and x == y


def _substituted(real: Request, leaves: list[tuple[str, Any]], sentinels: _Sentinels) -> Request:
    _, where = _walk(real.where, [], sentinels.values)
    return Request(where, sentinels.limit, sentinels.skip, sentinels.identities, sentinels.user_id)


def arguments(prepared: Prepared, request: Request, leaves: list[tuple[str, Any]]) -> list[Any]:
    """The positional parameters of ``prepared`` for this request."""
    args: list[Any] = []
    for kind, index, proc in prepared.slots:
        if kind == CONST:
            args.append(index)
            continue
        if kind == LEAF:
            leaf_kind, value = leaves[index]
            value = _bound(leaf_kind, value)
        elif kind == IDS:
            value = request.identities
        elif kind == USER:
            value = request.user_id
        elif kind == LIMIT:
            value = request.limit
        else:
            value = request.skip
        args.append(proc(value) if proc is not None else value)
    return args


async def fetch(repo: Repository, prepared: Prepared, args: list[Any]) -> list[dict[str, Any]]:
    """Run the prepared SQL: a read-only repository's on the worker's asyncpg pool (a
    connection held for this statement only), any other on its own connection (its
    transaction)."""
    pool = repo.store.raw_pool
    try:
        if repo.read_only and pool is not None:
            records = await pool.fetch(prepared.sql, *args)
        else:
            raw = await repo.conn.get_raw_connection()
            driver: Any = raw.driver_connection
            records = await driver.fetch(prepared.sql, *args)
    except Exception as exc:
        mapped = translate_db_error(exc) if is_database_error(exc) or outage(exc) else None
        if mapped is not None:
            raise mapped from exc
        raise
    columns = prepared.columns
    return [dict(zip(columns, record, strict=True)) for record in records]


class Scope:
    """The compiler's view of a repository with the identities taken from a ``Request``, so
    that every access filter in the statement (sub-queries' too) carries them as values."""

    def __init__(self, repo: Repository, request: Request) -> None:
        self.repo = repo
        self.request = request
        self.dialect = repo.dialect
        self.max_depth = repo.max_depth
        self.max_in_list = repo.max_in_list
        self.max_regex_length = repo.max_regex_length
        self.max_query_terms = repo.max_query_terms

    def schema_or_none(self, class_name: str) -> Any:
        return self.repo.schema_or_none(class_name)

    def table(self, schema: Any) -> sa.Table:
        return self.repo.table(schema)

    def join_table(self, schema: Any, field_name: str) -> sa.Table:
        return self.repo.join_table(schema, field_name)

    def protected_fields(self, schema: Any) -> frozenset[str]:
        return self.repo.protected_fields(schema)

    def readable(self, schema: Any, table: sa.FromClause, op: str = "find") -> Any:
        policy = self.repo.policy
        return policy.read_filter_as(
            table, policy.check(schema, op), self.request.identities, self.request.user_id
        )
