"""``/classes/{className}[/{objectId}]``: decode, one repository call, encode."""

from __future__ import annotations

from mindharbor.api.rest.params import find_query, get_options
from mindharbor.api.rest.reply import Reply
from mindharbor.api.rest.request import ApiRequest
from mindharbor.errors import InvalidQuery, ObjectNotFound, SessionMissing
from mindharbor.security.impersonation import refuse_run_as
from mindharbor.storage.repository import Repository


async def find(repo: Repository, req: ApiRequest) -> Reply:
    class_name = req.path_params["className"]
    query = find_query(req.params, repo.store.settings)
    query.raw = True  # the reply embeds the objects as they are (PostgreSQL may write them)
    refuse_run_as(req.auth, class_name, query.where, query.limit)
    redirect = req.params.get("redirectClassNameForKey")
    if redirect is not None:
        class_name = _redirect_target(repo, class_name, redirect)
        query.raw = False  # each object names its class, as Parse's RestQuery writes it
    result = await repo.find(class_name, query)
    body: dict[str, object] = {"results": result.results}
    if result.count is not None:
        body["count"] = result.count
    if redirect is not None:
        body["className"] = class_name  # the SDK's find() reads this, first()/get() each object's
        for obj in result.results:
            obj["className"] = class_name
    return Reply(body)


def _redirect_target(repo: Repository, class_name: str, key: object) -> str:
    """``redirectClassNameForKey``: a ``$relatedTo`` query answered in the relation's class."""
    schema = repo.schema_or_none(class_name)
    spec = schema.field(key) if schema is not None and isinstance(key, str) else None
    if spec is None or spec.type != "Relation" or spec.target_class is None:
        raise InvalidQuery(f"redirectClassNameForKey: {key} is not a relation of {class_name}.")
    return spec.target_class


async def get(repo: Repository, req: ApiRequest) -> Reply:
    options = get_options(req.params)
    obj = await repo.get(
        req.path_params["className"],
        req.path_params["objectId"],
        include=options["include"],
        keys=options["keys"],
        exclude_keys=options["exclude_keys"],
    )
    return Reply(obj)


async def create(repo: Repository, req: ApiRequest) -> Reply:
    class_name = req.path_params["className"]
    created = await repo.create(class_name, req.body)
    mount = repo.store.settings.mount_path
    location = f"{mount}/classes/{class_name}/{created['objectId']}"
    return Reply(created, status=201, headers={"Location": location})


async def update(repo: Repository, req: ApiRequest) -> Reply:
    path = req.path_params
    class_name, object_id = path["className"], path["objectId"]
    if class_name == "_User" and not req.auth.is_master:
        if req.auth.user_id is None:
            raise SessionMissing(f"Cannot modify user {object_id}.")
        try:
            return Reply(await repo.update(class_name, object_id, req.body))
        except ObjectNotFound:
            raise SessionMissing("Insufficient auth.") from None
    return Reply(await repo.update(class_name, object_id, req.body))


async def delete(repo: Repository, req: ApiRequest) -> Reply:
    class_name, object_id = req.path_params["className"], req.path_params["objectId"]
    if class_name == "_User" and not req.auth.is_master:
        # Parse (rest.js): a user that is not the caller's own answers 206, not 101 or 119.
        if req.auth.user_id is None:
            raise SessionMissing("Insufficient auth to delete user")
        try:
            await repo.delete(class_name, object_id)
        except ObjectNotFound:
            raise SessionMissing("Insufficient auth.") from None
        return Reply({})
    await repo.delete(class_name, object_id)
    return Reply({})
