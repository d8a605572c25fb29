"""Parse Server's user operations: ``viewer``, ``signUp``, ``logIn``, ``logInWith``,
``logOut``, ``resetPassword``, ``confirmResetPassword``.

Each resolver calls the same account flow as its REST route (``auth.accounts``), so password
policy, lockout, rate limits, second factor, sign-up rules and audit are the REST ones. A failed
login's counter and audit entry commit and its error is answered afterwards (the endpoint adds
it to ``errors`` at the field's path), exactly as ``POST /login`` answers 101 after committing.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLString,
)

from mindharbor.api.graphql.base_types import ACLInput
from mindharbor.api.graphql.mutations import to_rest_body
from mindharbor.api.graphql.resolvers import context_of
from mindharbor.api.graphql.scalars import ObjectScalar
from mindharbor.auth import accounts, password_reset
from mindharbor.errors import InvalidSessionToken
from mindharbor.settings import Settings
from mindharbor.storage.repository import Repository

SESSION_KEYS = frozenset({"sessionToken", "mfaEnrollmentRequired"})


def _viewer(reply: dict[str, Any]) -> dict[str, Any]:
    user = {k: v for k, v in reply.items() if k not in SESSION_KEYS}
    user["__className"] = "_User"
    viewer = {"sessionToken": reply["sessionToken"], "user": user}
    viewer["mfaEnrollmentRequired"] = bool(reply.get("mfaEnrollmentRequired"))
    return viewer


def _base_url(settings: Settings) -> str:
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    return base.rstrip("/") + settings.mount_path


# -- resolvers ----------------------------------------------------------------------------------
async def viewer(_root: Any, info: GraphQLResolveInfo) -> Any:
    ctx = context_of(info)
    token = ctx.session_token
    if ctx.repo.auth.user_id is None or token is None:
        raise InvalidSessionToken()
    return _viewer(await ctx.run(lambda repo: accounts.me(repo, token)))


async def sign_up(_root: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    ctx = context_of(info)

    async def write(repo: Repository) -> dict[str, Any] | None:
        body = await to_rest_body(repo, "_User", input.get("fields"), update=False)
        _status, reply = await accounts.sign_up(repo, body, ctx.installation_id)
        user_id = str(reply["objectId"])
        if "sessionToken" not in reply:
            if not repo.auth.is_master:
                return None  # an admin creating an account is not logged in as it
            reply = await accounts.open_session(repo, user_id, ctx.installation_id)
        elif "username" not in reply:
            reply = {**await accounts.user_json(repo, user_id), **reply}
        return _viewer(reply)

    found = await ctx.mutate(write)
    return {"viewer": found, "clientMutationId": input.get("clientMutationId")}


async def log_in(_root: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    ctx = context_of(info)
    params = {"username": input["username"], "password": input["password"]}
    if input.get("authData") is not None:
        params["authData"] = input["authData"]
    reply = await ctx.mutate(
        lambda repo: accounts.log_in(
            repo, params, client_ip=ctx.client_ip, installation_id=ctx.installation_id
        )
    )
    if ctx.defer_failure(list(info.path.as_list())):
        return None
    return {"viewer": _viewer(reply), "clientMutationId": input.get("clientMutationId")}


async def log_in_with(_root: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    """Single sign-on through a configured provider (``authData``). The account's fields come
    from the provider's verified token, never from ``fields``, which is accepted and ignored."""
    ctx = context_of(info)
    _status, reply = await ctx.mutate(
        lambda repo: accounts.sso_login(repo, input["authData"], ctx.installation_id)
    )
    return {"viewer": _viewer(reply), "clientMutationId": input.get("clientMutationId")}


async def log_out(_root: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    ctx = context_of(info)
    token = ctx.session_token

    async def write(repo: Repository) -> dict[str, Any] | None:
        before = None
        if repo.auth.user_id is not None and token is not None:
            before = _viewer(await accounts.me(repo, token))
        await accounts.log_out(repo)
        return before

    before = await ctx.mutate(write)
    return {"ok": True, "viewer": before, "clientMutationId": input.get("clientMutationId")}


async def reset_password(_root: Any, info: GraphQLResolveInfo, input: dict[str, Any]) -> Any:
    ctx = context_of(info)
    base = _base_url(ctx.settings)
    reset = password_reset.request_password_reset
    await ctx.mutate(lambda repo: reset(repo, input["email"], base, ctx.client_ip))
    return {"ok": True, "clientMutationId": input.get("clientMutationId")}


async def confirm_reset_password(
    _root: Any,
    info: GraphQLResolveInfo,
    input: dict[str, Any],
) -> Any:
    """The mailed token names the account; ``username`` is accepted for Parse's shape."""
    ctx = context_of(info)
    await ctx.mutate(lambda repo: accounts.reset_password(repo, input["token"], input["password"]))
    return {"ok": True, "clientMutationId": input.get("clientMutationId")}


# -- schema -------------------------------------------------------------------------------------
def _mutation(
    name: str,
    inputs: dict[str, GraphQLInputField],
    outputs: dict[str, GraphQLField],
    resolve: Any,
    description: str,
) -> GraphQLField:
    input_type = GraphQLInputObjectType(
        f"{name}Input", {**inputs, "clientMutationId": GraphQLInputField(GraphQLString)}
    )
    payload = GraphQLObjectType(
        f"{name}Payload", {**outputs, "clientMutationId": GraphQLField(GraphQLString)}
    )
    return GraphQLField(
        payload,
        args={"input": GraphQLArgument(GraphQLNonNull(input_type))},
        resolve=resolve,
        description=description,
    )


def user_operations(
    user_type: GraphQLObjectType, create_fields: GraphQLInputObjectType
) -> tuple[dict[str, GraphQLField], dict[str, GraphQLField]]:
    """(queries, mutations) of the user operations, for the generated ``User`` type."""
    viewer_type = GraphQLObjectType(
        "Viewer",
        {
            "sessionToken": GraphQLField(GraphQLNonNull(GraphQLString)),
            "user": GraphQLField(GraphQLNonNull(user_type)),
            "mfaEnrollmentRequired": GraphQLField(
                GraphQLBoolean,
                description="MindHarbor: the session may only enrol a second factor "
                "(`enrollMfa`/`confirmMfa`) until it does.",
            ),
        },
        description="The current user and the session token that authenticates it.",
    )
    viewer_out = {"viewer": GraphQLField(GraphQLNonNull(viewer_type))}
    ok = {"ok": GraphQLField(GraphQLNonNull(GraphQLBoolean))}
    string = GraphQLInputField(GraphQLNonNull(GraphQLString))
    login_with_fields = GraphQLInputObjectType(
        "UserLoginWithInput",
        {"ACL": GraphQLInputField(ACLInput), "email": GraphQLInputField(GraphQLString)},
    )
    mutations = {
        "signUp": _mutation(
            "SignUp",
            {"fields": GraphQLInputField(create_fields)},
            {"viewer": GraphQLField(viewer_type)},
            sign_up,
            "Create an account and log it in (as `POST /users`).",
        ),
        "logInWith": _mutation(
            "LogInWith",
            {
                "authData": GraphQLInputField(GraphQLNonNull(ObjectScalar)),
                "fields": GraphQLInputField(login_with_fields),
            },
            viewer_out,
            log_in_with,
            "Log in (or sign up) through a configured identity provider.",
        ),
        "logIn": _mutation(
            "LogIn",
            {
                "username": string,
                "password": string,
                "authData": GraphQLInputField(
                    ObjectScalar, description="The second factor: `{mfa: {token}}`."
                ),
            },
            viewer_out,
            log_in,
            "Log in with a username and password (as `POST /login`).",
        ),
        "logOut": _mutation(
            "LogOut",
            {},
            {
                **ok,
                "viewer": GraphQLField(
                    viewer_type,
                    deprecation_reason="Parse Server answers `ok`; kept for older clients.",
                ),
            },
            log_out,
            "End the current session (as `POST /logout`).",
        ),
        "resetPassword": _mutation(
            "ResetPassword",
            {"email": string},
            ok,
            reset_password,
            "Mail a password reset link (the same answer whether or not the address is known).",
        ),
        "confirmResetPassword": _mutation(
            "ConfirmResetPassword",
            {"username": string, "password": string, "token": string},
            ok,
            confirm_reset_password,
            "Choose a new password with the mailed token.",
        ),
    }
    queries = {
        "viewer": GraphQLField(
            GraphQLNonNull(viewer_type),
            resolve=viewer,
            description="The session's user (as `GET /users/me`); 209 without a session.",
        )
    }
    return queries, mutations
