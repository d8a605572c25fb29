"""``GET /aggregate/{className}``: Parse's aggregation pipelines and ``distinct``, master key
only (``AggregateRouter``: ``promiseEnforceMasterKeyAccess``). The SQL is storage/aggregate.py."""

from __future__ import annotations

from typing import Any

import orjson

from mindharbor.api.rest.reply import Reply
from mindharbor.api.rest.request import ApiRequest
from mindharbor.errors import InvalidJSON, InvalidQuery, Unauthorized
from mindharbor.storage import aggregate as pipelines
from mindharbor.storage.repository import FindQuery, Repository
from mindharbor.storage.schema import ClassSchema

# Options Parse takes out of the body before reading stages from it.
_OPTIONS = ("hint", "explain", "comment", "readPreference", "rawValues", "rawFieldNames")


def _body(params: dict[str, Any]) -> dict[str, Any]:
    """Parse's ``JSONFromQuery``: every query-string value that is JSON is decoded."""
    body: dict[str, Any] = {}
    for key, value in params.items():
        if key in _OPTIONS:
            continue
        if isinstance(value, str) and key != "distinct":
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                if key == "where":
                    raise InvalidJSON("where parameter is not valid JSON") from None
        body[key] = value
    return body


async def aggregate(repo: Repository, req: ApiRequest) -> Reply:
    if not req.auth.is_master:
        raise Unauthorized("unauthorized: master key is required")
    body = _body(req.params)
    where = body.get("where") or {}
    if not isinstance(where, dict):
        raise InvalidQuery("where must be a JSON object.")
    schema = await repo.lookup_schema(req.path_params["className"])
    if body.get("distinct"):
        stages: list[dict[str, Any]] = []
    else:
        stages = pipelines.stages_of(body)
    plan = pipelines.plan(stages)  # checked before the class is known, as in Parse
    if schema is None:
        return Reply({"results": []})
    if body.get("distinct"):
        key = str(body["distinct"])
        return Reply({"results": await pipelines.distinct(repo, schema, key, where)})
    if plan.group is not None:
        return Reply({"results": await pipelines.grouped(repo, schema, plan)})
    return Reply({"results": await _find(repo, schema, plan)})


async def _find(repo: Repository, schema: ClassSchema, plan: pipelines.Plan) -> list[Any]:
    """A pipeline without ``$group`` is a find: its ``$match``es, order, window and keys."""
    bound = repo.store.settings.aggregate_max_rows
    order = ",".join(
        ("-" if descending else "") + ("objectId" if key == "_id" else key)
        for key, descending in plan.sort
    )
    query = FindQuery(
        where=pipelines.where_of(schema, plan),
        order=order or None,
        limit=min(plan.limit, bound + 1) if plan.limit is not None else bound + 1,
        skip=plan.skip,
        keys=plan.project,
    )
    results = (await repo.find(schema.name, query)).results
    if len(results) > bound:
        raise InvalidQuery(f"The aggregation answers more than {bound} rows; add a $limit.")
    return results
