"""``/config``: Parse's global config (``Parse.Config.get()``, the Dashboard's Config page).

``GET`` is for any caller with the application id, as in Parse; parameters flagged
``masterKeyOnly`` are left out unless the master key asks. ``PUT`` needs the master key and
merges the parameters it names (``{"__op": "Delete"}`` removes one); it is audited like any
other write. Parse Server's GlobalConfigRouter is the reference for both shapes.
"""

from __future__ import annotations

from typing import Any

from mindharbor.api.rest.reply import Reply
from mindharbor.api.rest.request import ApiRequest
from mindharbor.errors import InvalidJSON, Unauthorized
from mindharbor.storage.codec import check_json_value
from mindharbor.storage.global_config import ROW_ID, read_config, write_config
from mindharbor.storage.repository import Repository
from mindharbor.storage.schema import check_prohibited_keys


async def get_config(repo: Repository, req: ApiRequest) -> Reply:
    params, master_only = await read_config(repo.conn)
    if not req.auth.is_master:
        params = {k: v for k, v in params.items() if not master_only.get(k)}
        master_only = {k: v for k, v in master_only.items() if not v}
    return Reply({"params": params, "masterKeyOnly": master_only})


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidJSON(f"{key} must be an object.")
    return value


async def put_config(repo: Repository, req: ApiRequest) -> Reply:
    if not req.auth.is_master:
        raise Unauthorized("unauthorized: master key is required")
    params = _object(req.body, "params")
    master_only = _object(req.body, "masterKeyOnly")
    check_prohibited_keys(params)
    for value in params.values():
        if not (isinstance(value, dict) and value.get("__op") == "Delete"):
            check_json_value(value)
    await write_config(repo.conn, params, master_only)
    repo.audit_trail.writes.append(
        {
            "action": "config.update",
            "className": "_GlobalConfig",
            "objectId": ROW_ID,
            "fields": sorted(params),
        }
    )
    return Reply({"result": True})
