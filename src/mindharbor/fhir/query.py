"""Running FHIR reads and searches against the object service.

Everything here goes through the caller's ``Repository`` (``find``/``get`` with a
``FindQuery``): the access policy's SQL filter applies to every statement and the Repository
records every PHI read for the audit log. Nothing here touches a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from mindharbor.errors import OperationForbidden
from mindharbor.fhir import search as s
from mindharbor.fhir.encode.common import Context, pointer_id
from mindharbor.fhir.outcome import bad_request, not_found
from mindharbor.fhir.resources import TYPES, ResourceType
from mindharbor.storage.repository import FindQuery, Repository

CONTROL = frozenset({"_count", "_sort", "_include", "_offset", "_format", "_pretty", "_total"})
MAX_INCLUDE_IDS = 1000


@dataclass
class Plan:
    rtype: ResourceType
    where: dict[str, Any]
    keep: list[s.Keep]
    order: str
    count: int
    skip: int
    sub: int
    includes: list[tuple[str, str]]  # (include name, param) e.g. ("Observation:subject", "subject")
    echo: list[tuple[str, str]] = field(default_factory=list)  # params for self/next links


def resource_type(name: str) -> ResourceType:
    rtype = TYPES.get(name)
    if rtype is None:
        raise not_found(f"Resource type {name[:64]!r} is not supported.")
    return rtype


def plan_search(
    rtype: ResourceType, params: list[tuple[str, str]], default_count: int, max_count: int
) -> Plan:
    """Validate and translate a search's parameters (strict: unknown ones are an error)."""
    clauses: list[dict[str, Any]] = [rtype.base_where] if rtype.base_where else []
    keep: list[s.Keep] = []
    count, skip, sub = default_count, 0, 0
    order_keys: list[str] = []
    includes: list[tuple[str, str]] = []
    echo: list[tuple[str, str]] = []
    for key, raw in params:
        name, _, modifier = key.partition(":")
        if name == "_count":
            if not raw.isdigit():
                raise bad_request("_count must be a non-negative integer.")
            count = min(int(raw), max_count)
        elif name == "_offset":
            head, _, tail = raw.partition(".")
            if not head.isdigit() or (tail and not tail.isdigit()):
                raise bad_request("Invalid _offset.")
            skip, sub = int(head), int(tail or 0)
            continue
        elif name == "_sort":
            for part in raw.split(","):
                desc = part.startswith("-")
                field_name = rtype.sorts.get(part.lstrip("-"))
                if field_name is None:
                    raise bad_request(
                        f"Cannot sort {rtype.name} by {part[:40]!r}; "
                        f"sortable: {', '.join(sorted(rtype.sorts))}."
                    )
                order_keys.append(("-" if desc else "") + field_name)
        elif name == "_include":
            parts = raw.split(":")
            if len(parts) not in (2, 3) or parts[0] != rtype.name or parts[1] not in rtype.includes:
                allowed = ", ".join(f"{rtype.name}:{n}" for n in sorted(rtype.includes)) or "none"
                raise bad_request(f"Unsupported _include {raw[:60]!r}; supported: {allowed}.")
            if len(parts) == 3 and parts[2] != rtype.includes[parts[1]].target:
                raise bad_request(f"Unsupported _include target {parts[2][:40]!r}.")
            includes.append((raw, parts[1]))
        elif name in ("_format", "_pretty", "_total"):
            if name == "_format" and "json" not in raw:
                raise FhirFormatError()
        elif name in rtype.params:
            clause = rtype.params[name].translate(s.split_values(raw), modifier or None)
            if clause.where:
                clauses.append(clause.where)
            if clause.keep is not None:
                keep.append(clause.keep)
        else:
            raise bad_request(
                f"Unknown search parameter {name[:40]!r} for {rtype.name}; supported: "
                f"{', '.join(sorted(rtype.params))}."
            )
        echo.append((key, raw))
    if not order_keys:
        order_keys = [rtype.default_sort]
    order_keys.append("objectId")  # a total order, so pages neither repeat nor skip
    where = clauses[0] if len(clauses) == 1 else ({"$and": clauses} if clauses else {})
    return Plan(rtype, where, keep, ",".join(order_keys), count, skip, sub, includes, echo)


def FhirFormatError() -> Exception:
    return bad_request("Only JSON is supported (_format=json).", "not-supported")


async def user_context(
    repo: Repository, base: str, objects: list[dict[str, Any]], fields: tuple[str, ...]
) -> tuple[Context, dict[str, dict[str, Any]]]:
    """A Context whose user references point at the profiles the caller may read, and those
    ProviderProfiles (for ``_include`` of Practitioner) by user id."""
    user_ids = sorted({uid for obj in objects for f in fields if (uid := pointer_id(obj.get(f)))})[
        :MAX_INCLUDE_IDS
    ]
    ctx = Context(base)
    providers: dict[str, dict[str, Any]] = {}
    if not user_ids:
        return ctx, providers
    pointers = [{"__type": "Pointer", "className": "_User", "objectId": u} for u in user_ids]
    where = {"user": {"$in": pointers}}
    for cls, fhir_type in (("PatientProfile", "Patient"), ("ProviderProfile", "Practitioner")):
        try:
            found = await repo.find(cls, FindQuery(where=where, limit=len(user_ids)))
        except OperationForbidden:
            continue
        for profile in found.results:
            uid = pointer_id(profile.get("user"))
            if uid:
                ctx.users[uid] = f"{fhir_type}/{profile['objectId']}"
                if fhir_type == "Practitioner":
                    providers[uid] = profile
    return ctx, providers


async def encode_page(
    repo: Repository, rtype: ResourceType, base: str, objects: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], Context, dict[str, dict[str, Any]]]:
    ctx, providers = await user_context(repo, base, objects, rtype.user_fields)
    resources = [r for obj in objects for r in rtype.encode(obj, ctx)]
    return resources, ctx, providers


@dataclass
class Page:
    matches: list[dict[str, Any]]
    includes: list[dict[str, Any]]
    total: int | None
    next_offset: str | None


async def run_search(repo: Repository, plan: Plan, base: str) -> Page:
    rtype = plan.rtype
    cls = rtype.parse_class
    if not rtype.expands:
        found = await repo.find(
            cls,
            FindQuery(
                where=plan.where, order=plan.order, limit=plan.count, skip=plan.skip, count=True
            ),
        )
        resources, ctx, providers = await encode_page(repo, rtype, base, found.results)
        more = found.count is not None and plan.skip + len(found.results) < found.count
        nxt = str(plan.skip + plan.count) if more and plan.count else None
        included = await includes(repo, plan, found.results, ctx, providers)
        return Page(resources, included, found.count, nxt)
    # Several resources per object: page over objects, cut at ``count`` resources, and say
    # where the next page starts as "<object offset>.<resource offset within that object>".
    picked: list[tuple[dict[str, Any], tuple[int, int]]] = []
    sources: list[dict[str, Any]] = []
    skip, first_sub = plan.skip, plan.sub
    batch = max(plan.count, 10)
    ctx = Context(base)
    providers = {}
    while len(picked) <= plan.count:
        found = await repo.find(
            cls, FindQuery(where=plan.where, order=plan.order, limit=batch, skip=skip)
        )
        resources_ctx, providers_more = await user_context(
            repo, base, found.results, rtype.user_fields
        )
        ctx.users.update(resources_ctx.users)
        providers.update(providers_more)
        for position, obj in enumerate(found.results, start=skip):
            derived = [r for r in rtype.encode(obj, ctx) if all(k(r) for k in plan.keep)]
            start = first_sub if position == plan.skip else 0
            for index in range(start, len(derived)):
                picked.append((derived[index], (position, index)))
            if derived[start:]:
                sources.append(obj)
            if len(picked) > plan.count:
                break
        if len(found.results) < batch or len(picked) > plan.count:
            break
        skip += batch
    nxt = None
    if len(picked) > plan.count:
        position, index = picked[plan.count][1]
        nxt = f"{position}.{index}"
        picked = picked[: plan.count]
    included = await includes(repo, plan, sources, ctx, providers)
    return Page([r for r, _ in picked], included, None, nxt)


async def includes(
    repo: Repository,
    plan: Plan,
    objects: list[dict[str, Any]],
    ctx: Context,
    providers: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """``_include`` targets, read with the caller's rights (an invisible target is left out)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _, param in plan.includes:
        spec = plan.rtype.includes[param]
        ids = sorted({i for obj in objects if (i := pointer_id(obj.get(spec.field)))})
        if spec.target == "Patient":
            rtype = TYPES["Patient"]
            if not ids:
                continue
            try:
                found = await repo.find(
                    "PatientProfile",
                    FindQuery(where={"objectId": {"$in": ids[:MAX_INCLUDE_IDS]}}, limit=len(ids)),
                )
            except OperationForbidden:
                continue
            targets = found.results
        else:
            rtype = TYPES["Practitioner"]
            targets = [providers[u] for u in ids if u in providers]
        for target in targets:
            for resource in rtype.encode(target, ctx):
                key = f"{resource['resourceType']}/{resource['id']}"
                if key not in seen:
                    seen.add(key)
                    out.append(resource)
    return out


def bundle(
    kind: str,
    base: str,
    matches: list[dict[str, Any]],
    included: list[dict[str, Any]] = (),  # type: ignore[assignment]
    *,
    total: int | None = None,
    links: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    entries = []
    for mode, resources in (("match", matches), ("include", included)):
        for resource in resources:
            entry: dict[str, Any] = {
                "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
                "resource": resource,
            }
            if kind == "searchset":
                entry["search"] = {"mode": mode}
            entries.append(entry)
    out: dict[str, Any] = {"resourceType": "Bundle", "type": kind}
    if total is not None:
        out["total"] = total
    if links:
        out["link"] = links
    out["entry"] = entries
    if not entries:
        del out["entry"]
    return out


def page_links(base: str, plan: Plan, nxt: str | None) -> list[dict[str, str]]:
    url = f"{base}/{plan.rtype.name}"
    params = list(plan.echo)
    if plan.skip or plan.sub:
        params.append(
            ("_offset", f"{plan.skip}.{plan.sub}" if plan.rtype.expands else str(plan.skip))
        )
    links = [{"relation": "self", "url": url + ("?" + urlencode(params) if params else "")}]
    if nxt is not None:
        following = [*plan.echo, ("_offset", nxt)]
        if not any(k == "_count" for k, _ in following):
            following.append(("_count", str(plan.count)))
        links.append({"relation": "next", "url": url + "?" + urlencode(following)})
    return links


async def read_one(
    repo: Repository, rtype: ResourceType, resource_id: str, base: str
) -> dict[str, Any]:
    """One resource by id; 404 whether it is missing or invisible to the caller."""
    if not s._ID_RE.match(resource_id):
        raise not_found()
    obj = await repo.get(rtype.parse_class, rtype.object_id(resource_id))
    for key, value in rtype.base_where.items():
        allowed = value.get("$in") if isinstance(value, dict) else [value]
        if obj.get(key) not in (allowed or []):
            raise not_found()
    resources, _, _ = await encode_page(repo, rtype, base, [obj])
    for resource in resources:
        if resource["id"] == resource_id:
            return resource
    raise not_found()
