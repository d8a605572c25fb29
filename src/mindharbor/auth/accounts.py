"""Account flows: sign-up, log-in, log-out, password reset, invitations, SSO and MFA.

Every flow runs inside the request's unit of work and writes its audit entry there. Log-in
answers the same "Invalid username/password." for an unknown name, a wrong password and a locked
account, and spends the same hashing time on each, so responses never reveal whether an account
exists. A failed attempt still commits its counter and audit entry (``fail_after_commit``).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Any

from mindharbor.auth import linking, mfa, sessions
from mindharbor.auth.passwords import check_policy, hash_password_async, verify_password_async
from mindharbor.auth.ratelimit import within_rate
from mindharbor.auth.roles import BUILTIN_ROLES, set_membership
from mindharbor.domain import audit
from mindharbor.domain.identity import normalize_email
from mindharbor.errors import (
    InvalidSessionToken,
    ObjectNotFound,
    OperationForbidden,
    OtherCause,
    ParseError,
    PasswordMissing,
    RequestLimitExceeded,
    ScriptFailed,
    UnsupportedService,
    UsernameMissing,
    ValidationFailed,
)
from mindharbor.hooks import FunctionRequest, Hooks
from mindharbor.security.auth import Auth
from mindharbor.security.roles import is_admin
from mindharbor.storage import auth_identities, invitations
from mindharbor.storage.codec import iso, utcnow
from mindharbor.storage.identity import username_key
from mindharbor.storage.repository import FindQuery, Repository

log = logging.getLogger(__name__)
INVALID_LOGIN = "Invalid username/password."


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _required_mfa_roles(repo: Repository) -> frozenset[str]:
    return sessions.mfa_required_roles(repo.store.settings)


async def user_json(repo: Repository, user_id: str) -> dict[str, Any]:
    """The account as its owner sees it (own email included, secrets never)."""
    as_owner = Repository(repo.conn, repo.store, Auth.user(user_id))
    return await as_owner.get("_User", user_id)


async def _session_reply(
    repo: Repository,
    user_id: str,
    *,
    action: str,
    provider: str,
    installation_id: str | None,
) -> dict[str, Any]:
    row = await repo.system().raw_row("_User", "objectId", user_id)
    # A password log-in of an enrolled account has just passed the second factor
    # (check_credentials); single sign-on trusts the identity provider's.
    enrolled = bool(((row or {}).get("_mfa") or {}).get("enabled"))
    token, session = await sessions.create_session(
        repo,
        user_id,
        action=action,
        provider=provider,
        installation_id=installation_id,
        mfa_verified=enrolled,
    )
    reply = {**await user_json(repo, user_id), "sessionToken": token}
    if session["restricted"]:
        reply["mfaEnrollmentRequired"] = True
    return reply


async def open_session(
    repo: Repository, user_id: str, installation_id: str | None
) -> dict[str, Any]:
    """A new session for an account just created with the master key: Parse's GraphQL
    ``signUp`` always logs the new user in, whoever calls it."""
    return await _session_reply(
        repo, user_id, action="signup", provider="password", installation_id=installation_id
    )


# -- sign-up -----------------------------------------------------------------------------------
async def sign_up(
    repo: Repository, body: dict[str, Any], installation_id: str | None
) -> tuple[int, dict[str, Any]]:
    body = dict(body)
    if "authData" in body:
        return await sso_login(repo, body["authData"], installation_id)
    settings, auth = repo.store.settings, repo.auth
    admin = is_admin(auth)
    if not admin and auth.user_id is None:
        await _check_signup_rate(repo)
    role = body.pop("role", None)
    invitation = body.pop("invitationToken", None)
    invited: dict[str, Any] | None = None
    if invitation is not None:
        invited = await _claim_invitation(repo, invitation, body.get("email"))
        role = invited["role"]
    elif role not in (None, "patient") and not admin:
        raise OperationForbidden("Staff accounts are created by an admin or an invitation.")
    elif role is None:
        role = "patient"
        if not settings.allow_patient_signup and not admin:
            raise OperationForbidden("Self sign-up is disabled on this server.")
    if role not in BUILTIN_ROLES:
        raise ValidationFailed(f"Unknown role: {role}")
    created = await repo.create("_User", body)
    user_id = str(created["objectId"])
    await set_membership(repo, str(role), user_id, member=True)
    if invited is not None:
        await invitations.mark_used(repo, invited["tokenHash"], user_id)
    await audit.record(
        repo,
        "user.signup",
        entity_type="_User",
        entity_id=user_id,
        summary=f"Account created with role {role}",
        actor=auth.user_id or user_id,
        metadata={"role": role, "invited": invited is not None},
    )
    reply: dict[str, Any] = {"objectId": user_id, "createdAt": created["createdAt"]}
    if auth.user_id is None and not auth.is_master:  # self sign-up logs the new user in
        session = await _session_reply(
            repo, user_id, action="signup", provider="password", installation_id=installation_id
        )
        reply["sessionToken"] = session["sessionToken"]
        if session.get("mfaEnrollmentRequired"):
            reply["mfaEnrollmentRequired"] = True
    return 201, reply


async def _claim_invitation(repo: Repository, token: Any, email: Any) -> dict[str, Any]:
    if not isinstance(token, str) or len(token) > 200:
        raise ValidationFailed("Invalid invitation.")
    row = await invitations.lock_invitation(repo, _sha256(token))
    if row is None or row["usedAt"] is not None or row["expiresAt"] <= utcnow():
        raise ValidationFailed("This invitation is invalid, used or expired.")
    if row["email"] and (not isinstance(email, str) or email.strip().lower() != row["email"]):
        raise ValidationFailed("This invitation was issued for another email address.")
    return row


# -- log-in / log-out --------------------------------------------------------------------------
async def check_credentials(
    repo: Repository, params: dict[str, Any], *, client_ip: str | None, second_factor: bool
) -> str | None:
    """The user id if ``params`` carry valid credentials, else None with the failure already
    counted, audited and queued as the answer (``fail_after_commit``).

    ``/login`` and ``/verifyPassword`` both go through here, so neither can be used to guess
    passwords around the rate limit, the failure counter or the lockout.
    """
    settings, services = repo.store.settings, repo.store.services
    if services is not None and not await _within_rate(
        services, f"login:{client_ip or 'unknown'}", settings.login_rate_per_ip
    ):
        raise RequestLimitExceeded("Too many login attempts; try again in a minute.")
    username, email, password = params.get("username"), params.get("email"), params.get("password")
    if not isinstance(username, str) and not isinstance(email, str):
        raise UsernameMissing("username/email is required.")
    if not isinstance(password, str) or not password:
        raise PasswordMissing("password is required.")
    system = repo.system()
    if isinstance(username, str):
        row = await system.raw_row("_User", "_username_key", username_key(username), lock=True)
        if row is None:  # a legacy account whose name clashed with another's (no key)
            row = await system.raw_row("_User", "username", username, lock=True)
    else:
        row = await system.raw_row("_User", "email", str(email).strip().lower(), lock=True)
    if row is None:
        await verify_password_async(None, password, settings)  # same cost as a real check
        await audit.record(
            repo,
            "login.failure",
            entity_type="_User",
            entity_id="unknown",
            summary="Login failed: unknown account",
        )
        repo.fail_after_commit(ObjectNotFound(INVALID_LOGIN))
        return None
    user_id, now = str(row["objectId"]), utcnow()
    if row["_lockout_until"] is not None and row["_lockout_until"] > now:
        await verify_password_async(row["_hashed_password"], password, settings)
        await audit.record(
            repo,
            "login.locked",
            entity_type="_User",
            entity_id=user_id,
            actor=user_id,
            summary="Login refused: account locked",
        )
        repo.fail_after_commit(ObjectNotFound(INVALID_LOGIN))
        return None
    ok, upgraded = await verify_password_async(row["_hashed_password"], password, settings)
    outcome = "ok" if ok else "bad"
    if ok and second_factor:
        outcome = await _second_factor(repo, row, params)
    if outcome != "ok":
        # A right password without its second factor counts like a wrong one (lockout and
        # audit): otherwise "Missing additional authData mfa" would be a free password oracle.
        await _count_failure(repo, row, now, missing_mfa=outcome == "missing")
        repo.fail_after_commit(_FAILURES[outcome])
        return None
    hidden: dict[str, Any] = {"_failed_login_count": 0, "_lockout_until": None}
    if upgraded:
        hidden["_hashed_password"] = upgraded
    await system.write_hidden("_User", user_id, hidden)
    return user_id


async def log_in(
    repo: Repository, params: dict[str, Any], *, client_ip: str | None, installation_id: str | None
) -> dict[str, Any]:
    user_id = await check_credentials(repo, params, client_ip=client_ip, second_factor=True)
    if user_id is None:
        return {}
    await audit.record(
        repo,
        "login.success",
        entity_type="_User",
        entity_id=user_id,
        actor=user_id,
        summary="Logged in",
    )
    return await _session_reply(
        repo, user_id, action="login", provider="password", installation_id=installation_id
    )


async def _within_rate(services: Any, key: str, limit: int) -> bool:
    return await within_rate(services.limiter, key, limit, "login")


async def _check_signup_rate(repo: Repository) -> None:
    """Per-IP rate of new accounts (sign-ups and anonymous log-ins), checked before any name
    is: the 202/203 for a taken name stays Parse's answer, but nobody may ask it more than
    the rate allows (issue 19)."""
    services = repo.store.services
    if services is None:
        return
    ip = repo.meta.get("ip") or "unknown"
    if not await _within_rate(services, f"signup:{ip}", repo.store.settings.signup_rate_per_ip):
        raise RequestLimitExceeded("Too many sign-ups from this address; try again later.")


_FAILURES: dict[str, ParseError] = {
    "bad": ObjectNotFound(INVALID_LOGIN),
    "missing": OtherCause("Missing additional authData mfa"),
    "limited": RequestLimitExceeded("Too many second-factor attempts; try again in a minute."),
}


async def _second_factor(repo: Repository, row: dict[str, Any], params: dict[str, Any]) -> str:
    """ "ok", "missing" (no code sent), "limited" (too many tries) or "bad" (wrong code).

    Codes are rate limited per account (not only per IP): six digits must not be guessable by
    spreading attempts over addresses; a used code is refused again (replay)."""
    state = row.get("_mfa") or {}
    if not state.get("enabled"):
        return "ok"
    auth_data = params.get("authData")
    token = (
        ((auth_data or {}).get("mfa") or {}).get("token") if isinstance(auth_data, dict) else None
    )
    if not isinstance(token, str) or not token:
        return "missing"
    services, limit = repo.store.services, repo.store.settings.mfa_attempts_per_minute
    if services is not None and not await _within_rate(services, f"mfa:{row['objectId']}", limit):
        return "limited"
    step = mfa.verify_totp(state["secret"], token, last_used_step=state.get("last_step"))
    if step is not None:
        await repo.system().write_hidden(
            "_User", row["objectId"], {"_mfa": {**state, "last_step": step}}
        )
        return "ok"
    remaining = mfa.use_recovery_code(token, list(state.get("recovery") or []))
    if remaining is not None:
        await repo.system().write_hidden(
            "_User", row["objectId"], {"_mfa": {**state, "recovery": remaining}}
        )
        await audit.record(
            repo,
            "mfa.recovery_code_used",
            entity_type="_User",
            entity_id=row["objectId"],
            actor=row["objectId"],
            summary="Logged in with a recovery code",
        )
        return "ok"
    return "bad"


async def _count_failure(
    repo: Repository, row: dict[str, Any], now: Any, *, missing_mfa: bool = False
) -> None:
    settings = repo.store.settings
    user_id = str(row["objectId"])
    failures = int(row["_failed_login_count"] or 0) + 1
    hidden: dict[str, Any] = {"_failed_login_count": failures}
    if failures >= settings.lockout_threshold:
        hidden = {
            "_failed_login_count": 0,
            "_lockout_until": now + timedelta(minutes=settings.lockout_minutes),
        }
        await audit.record(
            repo,
            "account.locked",
            entity_type="_User",
            entity_id=user_id,
            actor=user_id,
            summary=f"Locked after {failures} failed logins",
            metadata={"minutes": settings.lockout_minutes},
        )
    await repo.system().write_hidden("_User", user_id, hidden)
    await audit.record(
        repo,
        "login.failure",
        entity_type="_User",
        entity_id=user_id,
        actor=user_id,
        summary="Login failed: second factor missing" if missing_mfa else "Login failed",
        metadata={"reason": "mfa_missing" if missing_mfa else "credentials"},
    )


async def me(repo: Repository, token: str | None) -> dict[str, Any]:
    if repo.auth.user_id is None or token is None:
        raise InvalidSessionToken()
    return {**await user_json(repo, repo.auth.user_id), "sessionToken": token}


async def log_out(repo: Repository) -> dict[str, Any]:
    auth = repo.auth
    if auth.session_id is None:
        raise InvalidSessionToken()
    await sessions.revoke_session(repo, auth.session_id)
    await audit.record(
        repo, "logout", entity_type="_Session", entity_id=auth.session_id, summary="Logged out"
    )
    return {}


async def verify_credentials(
    repo: Repository, params: dict[str, Any], client_ip: str | None
) -> dict[str, Any]:
    """``/verifyPassword``: the user without a session, under the same checks as a login."""
    user_id = await check_credentials(repo, params, client_ip=client_ip, second_factor=False)
    if user_id is None:
        return {}
    await audit.record(
        repo,
        "login.verify",
        entity_type="_User",
        entity_id=user_id,
        actor=user_id,
        summary="Password verified",
    )
    return await user_json(repo, user_id)


# -- password reset (requestPasswordReset is in password_reset.py) -----------------------------
async def reset_password(repo: Repository, token: Any, password: Any) -> dict[str, Any]:
    invalid = ValidationFailed("This password reset link is invalid or has expired.")
    if not isinstance(token, str) or not token or len(token) > 200:
        raise invalid
    system = repo.system()
    row = await system.raw_row("_User", "_reset_token_hash", _sha256(token), lock=True)
    if (
        row is None
        or row["_reset_token_expires"] is None
        or row["_reset_token_expires"] <= utcnow()
    ):
        raise invalid
    check_policy(password, repo.store.settings, row.get("username"))
    user_id = str(row["objectId"])
    await system.write_hidden(
        "_User",
        user_id,
        {
            "_hashed_password": await hash_password_async(str(password), repo.store.settings),
            "_password_changed_at": utcnow(),
            "_reset_token_hash": None,
            "_reset_token_expires": None,
            "_failed_login_count": 0,
            "_lockout_until": None,
        },
    )
    await sessions.revoke_user_sessions(repo, user_id)
    await audit.record(
        repo,
        "user.password_reset",
        entity_type="_User",
        entity_id=user_id,
        actor=user_id,
        summary="Password reset with an emailed link",
    )
    return {}


# -- single sign-on ----------------------------------------------------------------------------
async def sso_login(
    repo: Repository, auth_data: Any, installation_id: str | None
) -> tuple[int, dict[str, Any]]:
    if not isinstance(auth_data, dict) or len(auth_data) != 1:
        raise UnsupportedService("authData must name exactly one provider.")
    ((name, data),) = auth_data.items()
    services = repo.store.services
    if name == linking.ANONYMOUS:
        return await _anonymous_login(repo, data, installation_id)
    provider = services.providers.get(name) if services is not None else None
    if provider is None:
        raise UnsupportedService(f"This authentication method is unsupported: {name}")
    try:
        identity = await provider.validate(data if isinstance(data, dict) else {})
    except ParseError as exc:
        exc.rollback_audit = {
            "action": "login.failure",
            "entity_type": "_User",
            "entity_id": "unknown",
            "summary": f"Login with {name} failed",
            "metadata": {"provider": name},
        }
        raise
    system = repo.system()
    user_id = await auth_identities.holder(repo, name, identity.subject)
    status = 200
    settings = repo.store.settings
    if (
        user_id is None
        and settings.oidc_link_verified_email
        and identity.email_verified
        and identity.email
    ):
        linked = await system.find(
            "_User", FindQuery(where={"email": identity.email.lower()}, limit=1)
        )
        if linked.results:
            user_id = linked.results[0]["objectId"]
            existing = linked.results[0].get("authData") or {}
            await system.update(
                "_User", user_id, {"authData": {**existing, name: {"id": identity.subject}}}
            )
    if user_id is None:
        if not settings.allow_patient_signup:
            raise OperationForbidden("Self sign-up is disabled on this server.")
        body: dict[str, Any] = {
            "username": f"{name}_{secrets.token_hex(6)}",
            "authData": {name: {"id": identity.subject}},
        }
        if identity.email and identity.email_verified:
            body["email"] = identity.email.lower()
            body["emailVerified"] = True

        async def create() -> str:
            return str((await system.create("_User", body))["objectId"])

        user_id, created = await auth_identities.create_unless_held(
            repo, name, identity.subject, create
        )
        if created:
            await set_membership(repo, "patient", user_id, member=True)
            status = 201
    await audit.record(
        repo,
        "login.success",
        entity_type="_User",
        entity_id=user_id,
        actor=user_id,
        summary=f"Logged in with {name}",
    )
    return status, await _session_reply(
        repo, user_id, action="login", provider=name, installation_id=installation_id
    )


async def _anonymous_login(
    repo: Repository, data: Any, installation_id: str | None
) -> tuple[int, dict[str, Any]]:
    """Parse's anonymous users (``authData.anonymous``), when enabled. Every anonymous log-in
    counts against the per-IP sign-up rate: the id is the account's only credential."""
    await _check_signup_rate(repo)
    user_id, created = await linking.anonymous_user(repo, data)
    await audit.record(
        repo,
        "login.success",
        entity_type="_User",
        entity_id=user_id,
        actor=user_id,
        summary="Logged in anonymously",
        metadata={"provider": linking.ANONYMOUS},
    )
    reply = await _session_reply(
        repo, user_id, action="login", provider=linking.ANONYMOUS, installation_id=installation_id
    )
    return (201 if created else 200), reply


# -- functions: invitations, password reset, MFA -----------------------------------------------
def register(hooks: Hooks) -> None:
    @hooks.function("createInvitation")
    async def create_invitation(request: FunctionRequest) -> dict[str, Any]:
        auth, repo = request.auth, request.repo
        if not is_admin(auth):
            raise OperationForbidden("Only an admin can invite staff.")
        role = request.params.get("role")
        if role not in BUILTIN_ROLES:
            raise ScriptFailed("role must be one of " + ", ".join(BUILTIN_ROLES))
        email = request.params.get("email")
        email = normalize_email(email) if email is not None else None
        token = secrets.token_urlsafe(32)
        expires = utcnow() + timedelta(hours=repo.store.settings.invitation_hours)
        await invitations.insert_invitation(
            repo,
            token_hash=_sha256(token),
            role=role,
            email=email,
            created_by=auth.user_id,
            expires_at=expires,
        )
        await audit.record(
            repo,
            "invitation.create",
            entity_type="_Invitation",
            entity_id=_sha256(token)[:16],
            summary=f"Invitation for role {role}",
            metadata={"role": role},
        )
        return {"invitationToken": token, "role": role, "expiresAt": iso(expires)}

    @hooks.function("resetPassword")
    async def reset(request: FunctionRequest) -> dict[str, Any]:
        return await reset_password(
            request.repo, request.params.get("token"), request.params.get("password")
        )

    @hooks.function("enrollMfa")
    async def enroll(request: FunctionRequest) -> dict[str, Any]:
        user_id = _require_user(request)
        system = request.repo.system()
        row = await system.raw_row("_User", "objectId", user_id, lock=True)
        state = dict((row or {}).get("_mfa") or {})
        if state.get("enabled"):
            raise ScriptFailed("Multi-factor authentication is already enabled.")
        enrollment = mfa.new_enrollment(
            str((row or {}).get("username")), request.repo.store.settings.mfa_issuer
        )
        await system.write_hidden("_User", user_id, {"_mfa": {"pending": enrollment.secret}})
        return {"secret": enrollment.secret, "uri": enrollment.uri}

    @hooks.function("confirmMfa")
    async def confirm(request: FunctionRequest) -> dict[str, Any]:
        user_id = _require_user(request)
        repo, system = request.repo, request.repo.system()
        row = await system.raw_row("_User", "objectId", user_id, lock=True)
        state = dict((row or {}).get("_mfa") or {})
        pending, code = state.get("pending"), request.params.get("code")
        step = mfa.verify_totp(pending, str(code), last_used_step=None) if pending else None
        if step is None:
            raise ScriptFailed("Invalid code.")
        codes, hashes = mfa.new_recovery_codes()
        await system.write_hidden(
            "_User",
            user_id,
            {"_mfa": {"enabled": True, "secret": pending, "last_step": step, "recovery": hashes}},
        )
        if repo.auth.session_id:
            await system.update("_Session", repo.auth.session_id, {"restricted": False})
            await system.write_hidden("_Session", repo.auth.session_id, {"_mfa_verified": True})
        await audit.record(
            repo,
            "mfa.enable",
            entity_type="_User",
            entity_id=user_id,
            summary="Multi-factor authentication enabled",
        )
        return {"recoveryCodes": codes}

    @hooks.function("disableMfa")
    async def disable(request: FunctionRequest) -> dict[str, Any]:
        user_id = _require_user(request)
        repo, system = request.repo, request.repo.system()
        if request.auth.roles & _required_mfa_roles(repo):
            raise OperationForbidden("Multi-factor authentication is required for your role.")
        row = await system.raw_row("_User", "objectId", user_id, lock=True)
        state = dict((row or {}).get("_mfa") or {})
        code = str(request.params.get("code"))
        if (
            not state.get("enabled")
            or mfa.verify_totp(state["secret"], code, last_used_step=state.get("last_step")) is None
        ):
            raise ScriptFailed("Invalid code.")
        await system.write_hidden("_User", user_id, {"_mfa": None})
        await audit.record(
            repo,
            "mfa.disable",
            entity_type="_User",
            entity_id=user_id,
            summary="Multi-factor authentication disabled",
        )
        return {}


def _require_user(request: FunctionRequest) -> str:
    if request.auth.user_id is None:
        raise InvalidSessionToken("Session token required.")
    return request.auth.user_id
