"""``requestPasswordReset``: answered at once, the work done after the answer.

Why: the answer must not tell whether an address has an account, and neither may its timing.
Looking the address up, writing the token and auditing take several milliseconds that an
unknown address skips, so an attacker timing the endpoint could enumerate accounts even though
the body is always ``{}``. So the request only checks its input and the per-IP rate (identical
work for every address) and answers; the lookup, the token, the audit entry and the mail run in
a task of their own, in their own transaction, once the answer has been sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Any

from mindharbor.auth.mailer import Mail
from mindharbor.auth.ratelimit import within_rate
from mindharbor.domain import audit
from mindharbor.errors import EmailMissing, RequestLimitExceeded
from mindharbor.security.auth import Auth
from mindharbor.storage.codec import utcnow
from mindharbor.storage.db import Store
from mindharbor.storage.repository import Repository

log = logging.getLogger(__name__)
# The reset tasks in flight (a task nobody references may be collected before it runs).
_PENDING: set[asyncio.Task[None]] = set()


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def _within_rate(services: Any, key: str, limit: int) -> bool:
    return await within_rate(services.limiter, key, limit, "password reset")


async def request_password_reset(
    repo: Repository, email: Any, base_url: str, client_ip: str | None = None
) -> dict[str, Any]:
    """Check the request, schedule the reset after the answer, answer ``{}``."""
    if not isinstance(email, str) or not email:
        raise EmailMissing()
    store = repo.store
    services = store.services
    if services is not None and not await _within_rate(
        services, f"reset:{client_ip or 'unknown'}", store.settings.login_rate_per_ip
    ):
        raise RequestLimitExceeded("Too many requests; try again in a minute.")
    address, meta = email.strip().lower(), dict(repo.meta)

    def spawn() -> None:
        task = asyncio.get_running_loop().create_task(issue_reset(store, address, base_url, meta))
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)

    repo.after_commit.append(spawn)
    return {}


async def issue_reset(store: Store, address: str, base_url: str, meta: dict[str, Any]) -> None:
    """Give the account of ``address`` (if any) a reset token, audit it and mail the link."""
    await asyncio.sleep(0)  # let the answer leave first
    settings = store.settings
    try:
        async with store.unit_of_work(Auth.system()) as repo:
            repo.meta = meta
            row = await repo.raw_row("_User", "email", address, lock=True)
            if row is None:
                return
            token = secrets.token_urlsafe(32)
            expires = utcnow() + timedelta(minutes=settings.password_reset_minutes)
            await repo.write_hidden(
                "_User",
                row["objectId"],
                {"_reset_token_hash": _sha256(token), "_reset_token_expires": expires},
            )
            await audit.record(
                repo,
                "user.password_reset_request",
                entity_type="_User",
                entity_id=row["objectId"],
                summary="Password reset requested",
            )
            mail = Mail(
                to=str(row["email"]),
                subject="Reset your MindHarbor password",
                body=f"Follow this link within {settings.password_reset_minutes} minutes to "
                f"choose a new password:\n\n"
                f"{base_url}/apps/{settings.app_id}/choose_password?token={token}"
                "\n\nIf you did not ask, ignore this mail.",
            )
    except Exception:
        log.exception("password reset could not be issued")
        return
    # Mailed only once the token is committed: never a link whose transaction rolled back.
    if store.services is not None:
        try:
            await store.services.mailer.send(mail)
        except Exception:
            log.exception("password reset mail could not be sent")
