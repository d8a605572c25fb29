"""``include`` (pointers replaced by the objects they name) and ``keys``/``excludeKeys``.

Includes are resolved level by level with one access-filtered query per (level, class), never
one per row; a pointer to an object the caller may not read stays a bare pointer, exactly as if
the object did not exist.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from mindharbor.errors import InvalidKeyName
from mindharbor.storage.schema import FIELD_NAME_RE, ClassSchema

if TYPE_CHECKING:
    from mindharbor.storage.repository import Repository

ALWAYS_KEPT = frozenset({"objectId", "createdAt", "updatedAt", "ACL", "__type", "className"})
Tree = dict[str, "Tree"]


def path_tree(paths: list[str]) -> Tree:
    tree: Tree = {}
    for path in paths:
        node = tree
        for part in path.split("."):
            if part != "*" and not FIELD_NAME_RE.match(part):
                raise InvalidKeyName(f"Invalid include path: {path}")
            node = node.setdefault(part, {})
    return tree


def _pointers(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict) and value.get("__type") == "Pointer":
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict) and v.get("__type") == "Pointer"]
    return []


async def include(
    repo: Repository, schema: ClassSchema, objects: list[dict[str, Any]], paths: list[str]
) -> None:
    if paths and objects:
        tree = path_tree(paths)
        await _include_level(repo, [(schema, obj, tree) for obj in objects])


async def _include_level(
    repo: Repository, owners: list[tuple[ClassSchema, dict[str, Any], Tree]]
) -> None:
    """Expand one level for every owner, then recurse with each fetched object's own subtree."""
    wanted: dict[str, set[str]] = defaultdict(set)
    sites: list[tuple[dict[str, Any], str, Tree]] = []
    for schema, obj, tree in owners:
        names = list(tree)
        if "*" in names:
            names = [f.name for f in schema.fields.values() if f.type in ("Pointer", "Array")]
        for name in names:
            subtree = tree.get(name, tree.get("*", {}))
            for ptr in _pointers(obj.get(name)):
                wanted[str(ptr.get("className"))].add(str(ptr.get("objectId")))
            sites.append((obj, name, subtree))
    fetched: dict[tuple[str, str], tuple[ClassSchema, dict[str, Any]]] = {}
    for class_name, ids in wanted.items():
        target = repo.schema_or_none(class_name)
        if target is None:
            continue
        for found in await repo.fetch_visible(target, sorted(ids)):
            full = {"__type": "Object", "className": class_name, **found}
            fetched[(class_name, found["objectId"])] = (target, full)
    if not fetched:
        return
    next_level: dict[int, tuple[ClassSchema, dict[str, Any], Tree]] = {}

    def swap(value: Any, subtree: Tree) -> Any:
        if not (isinstance(value, dict) and value.get("__type") == "Pointer"):
            return value
        hit = fetched.get((str(value.get("className")), str(value.get("objectId"))))
        if hit is None:
            return value
        # Each site gets its own copy, so different include paths cannot bleed into each other.
        target, full = hit
        copy = dict(full)
        if subtree:
            next_level[id(copy)] = (target, copy, subtree)
        return copy

    for obj, name, subtree in sites:
        value = obj.get(name)
        if isinstance(value, list):
            obj[name] = [swap(v, subtree) for v in value]
        elif value is not None:
            obj[name] = swap(value, subtree)
    if next_level:
        await _include_level(repo, list(next_level.values()))


def project(
    objects: list[dict[str, Any]], keys: list[str] | None, exclude: list[str] | None
) -> None:
    """Apply ``keys`` (dotted keys reach into included objects) and ``excludeKeys`` in place."""
    if keys:
        tree = path_tree([k for k in keys if k])
        for obj in objects:
            _keep(obj, tree)
    if exclude:
        for obj in objects:
            for key in exclude:
                if key not in ALWAYS_KEPT:
                    obj.pop(key, None)


def _keep(obj: dict[str, Any], tree: Tree) -> None:
    for key in list(obj):
        if key in ALWAYS_KEPT:
            continue
        if key not in tree:
            del obj[key]
            continue
        sub = tree[key]
        value = obj[key]
        if sub and isinstance(value, dict) and value.get("__type") == "Object":
            _keep(value, sub)
        elif sub and isinstance(value, dict) and "__type" not in value:
            obj[key] = _trim(value, sub)  # ``keys=meta.color`` inside an Object field


def _trim(value: dict[str, Any], tree: Tree) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, sub in tree.items():
        if key in value:
            child = value[key]
            out[key] = _trim(child, sub) if sub and isinstance(child, dict) else child
    return out
