"""``/classes/{className}[/{objectId}]``: decode, one repository call, encode."""

from __future__ import annotations

from mindharbor.api.rest.params import find_query, get_options
from mindharbor.api.rest.reply import Reply
from mindharbor.api.rest.request import ApiRequest
from mindharbor.errors import InvalidQuery
from mindharbor.storage.repository import Repository


async def find(repo: Repository, req: ApiRequest) -> Reply:
    class_name = req.path_params["className"]
    query = find_query(req.params, repo.store.settings)
    redirect = req.params.get("redirectClassNameForKey")
    if redirect is not None:
        class_name = _redirect_target(repo, class_name, redirect)
    result = await repo.find(class_name, query)
    body: dict[str, object] = {"results": result.results}
    if result.count is not None:
        body["count"] = result.count
    if redirect is not None:
        body["className"] = class_name
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
    obj = await repo.get(req.path_params["className"], req.path_params["objectId"], **options)
    return Reply(obj)


async def create(repo: Repository, req: ApiRequest) -> Reply:
    class_name = req.path_params["className"]
    created = await repo.create(class_name, req.body)
    mount = repo.store.settings.mount_path
    location = f"{mount}/classes/{class_name}/{created['objectId']}"
    return Reply(created, status=201, headers={"Location": location})


async def update(repo: Repository, req: ApiRequest) -> Reply:
    path = req.path_params
    return Reply(await repo.update(path["className"], path["objectId"], req.body))


async def delete(repo: Repository, req: ApiRequest) -> Reply:
    await repo.delete(req.path_params["className"], req.path_params["objectId"])
    return Reply({})
