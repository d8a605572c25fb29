"""``/installations`` (and ``/classes/_Installation``) and ``/push``: thin handlers over
``domain/installations.py``."""

from __future__ import annotations

from mindharbor.api.rest import classes
from mindharbor.api.rest.reply import Reply
from mindharbor.api.rest.request import ApiRequest
from mindharbor.domain import installations
from mindharbor.errors import Unauthorized
from mindharbor.storage.repository import Repository

CLASS = installations.CLASS


def _on_class(req: ApiRequest) -> ApiRequest:
    req.path_params = {**req.path_params, "className": CLASS}
    return req


async def find(repo: Repository, req: ApiRequest) -> Reply:
    installations.refuse_client(repo, "find")
    return await classes.find(repo, _on_class(req))


async def get(repo: Repository, req: ApiRequest) -> Reply:
    if repo.auth.is_master:
        return await classes.get(repo, _on_class(req))
    return Reply(await installations.get_installation(repo, req.path_params["objectId"]))


async def create(repo: Repository, req: ApiRequest) -> Reply:
    status, body = await installations.save_installation(repo, req.body)
    headers = {}
    if status == 201:
        mount = repo.store.settings.mount_path
        headers["Location"] = f"{mount}/installations/{body['objectId']}"
    return Reply(body, status=status, headers=headers)


async def update(repo: Repository, req: ApiRequest) -> Reply:
    object_id = req.path_params["objectId"]
    _, body = await installations.save_installation(repo, req.body, object_id)
    return Reply(body)


async def delete(repo: Repository, req: ApiRequest) -> Reply:
    installations.refuse_client(repo, "delete")
    return await classes.delete(repo, _on_class(req))


async def push(repo: Repository, req: ApiRequest) -> Reply:
    if not req.auth.is_master:
        raise Unauthorized("unauthorized: master key is required")
    installations.refuse_push(repo, req.body)
    return Reply({"result": True})  # not reached: push is not configured
