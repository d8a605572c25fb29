"""``/users``, ``/login``, ``/logout``, ``/sessions``, ``/roles``, ``/functions``: thin handlers."""

from __future__ import annotations

from typing import Any

from mindharbor.api.rest.reply import Reply
from mindharbor.api.rest.request import ApiRequest
from mindharbor.auth import accounts, password_reset
from mindharbor.errors import InvalidSessionToken, ScriptFailed
from mindharbor.hooks import FunctionRequest
from mindharbor.security.impersonation import refuse_login_as
from mindharbor.storage.repository import Repository


def on_class(class_name: str, handler: Any) -> Any:
    """Serve ``/users/...``-style aliases through the generic ``/classes`` handlers."""

    async def aliased(repo: Repository, req: ApiRequest) -> Reply:
        req.path_params = {**req.path_params, "className": class_name}
        return await handler(repo, req)

    return aliased


async def sign_up(repo: Repository, req: ApiRequest) -> Reply:
    status, body = await accounts.sign_up(repo, req.body, req.auth.installation_id)
    headers = {"Location": f"{repo.store.settings.mount_path}/users/{body['objectId']}"}
    return Reply(body, status=status, headers=headers if status == 201 else {})


async def log_in_as(repo: Repository, req: ApiRequest) -> Reply:
    refuse_login_as()


async def log_in(repo: Repository, req: ApiRequest) -> Reply:
    params = {**req.params, **req.body}
    return Reply(
        await accounts.log_in(
            repo, params, client_ip=req.client_ip, installation_id=req.auth.installation_id
        )
    )


async def me(repo: Repository, req: ApiRequest) -> Reply:
    return Reply(await accounts.me(repo, req.session_token))


async def log_out(repo: Repository, req: ApiRequest) -> Reply:
    return Reply(await accounts.log_out(repo))


async def verify_password(repo: Repository, req: ApiRequest) -> Reply:
    params = {**req.params, **req.body}
    return Reply(await accounts.verify_credentials(repo, params, req.client_ip))


async def request_password_reset(repo: Repository, req: ApiRequest) -> Reply:
    settings = repo.store.settings
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    base = base.rstrip("/") + settings.mount_path
    email = req.body.get("email")
    return Reply(await password_reset.request_password_reset(repo, email, base, req.client_ip))


async def session_me(repo: Repository, req: ApiRequest) -> Reply:
    if repo.auth.session_id is None:
        raise InvalidSessionToken()
    session = await repo.get("_Session", repo.auth.session_id)
    return Reply({**session, "sessionToken": req.session_token})


async def start_job(repo: Repository, req: ApiRequest) -> Reply:
    runner = repo.store.jobs
    if runner is None:
        raise ScriptFailed("Jobs are not available in this process.")
    params = {**req.params, **req.body}
    name = req.path_params.get("name")
    if name is None:  # POST /jobs, as the Dashboard's Jobs page sends it (Parse: the body is
        name = params.get("jobName")  # the job's params, jobName included)
    status_id = await runner.start_from_api(repo, str(name), params)
    return Reply({}, headers={"X-Parse-Job-Status-Id": status_id})


async def call_function(repo: Repository, req: ApiRequest) -> Reply:
    meta = {"ip": req.client_ip}
    request = FunctionRequest(repo, {**req.params, **req.body}, meta)
    result = await repo.store.hooks.call_function(req.path_params["name"], request)
    return Reply({} if result is None else {"result": result})
