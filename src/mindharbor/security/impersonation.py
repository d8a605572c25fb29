"""No acting as another user: Parse Dashboard's "Run as" and Parse's ``POST /loginAs`` are
refused with the reason.

The Dashboard's API console runs a request "as" a user by reading one of the user's session
tokens with the master key: ``new Parse.Query(Parse.Session).equalTo('user', u).first()``, that
is ``GET /classes/_Session`` with ``where={"user": <pointer>}`` and ``limit=1``, and then sends the
request with that token. MindHarbor stores only a hash of each token (a stolen database or
backup yields no usable session), so no token can be handed out, and an answer without one
(an empty ``sessionToken``) would leave the console silently anonymous. That exact request is
answered with 119 and the reason instead. Any other query of ``_Session`` is unaffected.
"""

from __future__ import annotations

from typing import Any, NoReturn

from mindharbor.errors import OperationForbidden
from mindharbor.security.auth import Auth

RUN_AS_REFUSED = (
    "Session tokens are stored hashed and cannot be read: a user's session cannot be "
    'impersonated ("Run as"). Sign in as that user, or use the master key.'
)


LOGIN_AS_REFUSED = (
    "loginAs is not available: a session belongs to the person who signed in, so that every "
    "access in the audit log is theirs. Sign in as that user, or use the master key."
)


def refuse_login_as() -> NoReturn:
    """``POST /loginAs`` (Parse: a new session for any user, master key only): refused for
    every caller, with the reason, instead of an unknown route."""
    raise OperationForbidden(LOGIN_AS_REFUSED)


def _is_user_pointer(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("__type") == "Pointer"
        and value.get("className") == "_User"
    )


def is_run_as_lookup(auth: Auth, class_name: str, where: dict[str, Any], limit: int) -> bool:
    """Whether a find is the Dashboard's "Run as" session lookup."""
    return (
        auth.is_master
        and class_name == "_Session"
        and limit == 1
        and set(where) == {"user"}
        and _is_user_pointer(where["user"])
    )


def refuse_run_as(auth: Auth, class_name: str, where: dict[str, Any], limit: int) -> None:
    if is_run_as_lookup(auth, class_name, where, limit):
        raise OperationForbidden(RUN_AS_REFUSED)
