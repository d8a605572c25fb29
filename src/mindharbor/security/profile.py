"""Permission decisions that depend on the deployer's Parse-compatibility settings (issue 15).

Each is a deliberate deviation from Parse Server's defaults with a setting to take Parse's
behaviour instead (``MINDHARBOR_PARSE_COMPAT`` takes all of them): the rule lives here, beside
the other permission rules, and the callers ask it rather than reading the settings themselves.
"""

from __future__ import annotations

from mindharbor.errors import FileSaveError, OperationForbidden, UnsupportedService
from mindharbor.security.auth import Auth
from mindharbor.settings import Settings

# Fields of _User no client writes, whatever the settings: they are the server's (identity,
# verification, linked logins); MFA, lockout and hashes are hidden columns no write can name.
PROTECTED_USER_FIELDS = frozenset({"emailVerified", "authData"})


def may_add_user_fields(settings: Settings, auth: Auth, class_name: str) -> bool:
    """Parse's default: a write to ``_User`` may add custom fields (sign-up, or the owner's
    update: the row's ACL still decides whose row is written). Off here by default: only the
    master key adds ``_User`` fields."""
    return (
        settings.user_custom_fields
        and class_name == "_User"
        and not auth.restricted
        and not auth.is_system
    )


def check_file_upload(settings: Settings, auth: Auth, *, anonymous: bool = False) -> None:
    """Who may upload a file (Parse's ``fileUpload`` options): a signed-in, unrestricted user
    that is not an anonymous user (``enableForAnonymousUser: false``, as Parse), or the master
    key; anyone without a session when ``file_upload_public`` is on. Downloads stay signed."""
    if anonymous and not auth.is_master:
        raise FileSaveError("File upload by anonymous user is disabled.")
    if auth.restricted:
        raise FileSaveError("File upload by public is disabled.")
    if not auth.is_authenticated and not settings.file_upload_public:
        raise FileSaveError("File upload by public is disabled.")


def may_attach_public_upload(settings: Settings, auth: Auth) -> bool:
    """A file uploaded without a session has no owner: with public uploads on, a caller
    without a session may attach it (as the uploader could not be told apart from it)."""
    return settings.file_upload_public and auth.user_id is None


def check_linking(settings: Settings, provider: str) -> None:
    """``linkWith`` / unlink of ``provider`` on a signed-in user's own account."""
    if provider == "anonymous":
        raise OperationForbidden("An account cannot be linked to anonymous authData.")
    if not settings.auth_linking:  # 119, as a write of the server-owned field always was
        raise OperationForbidden("authData is set by the server and cannot be written.")


def check_anonymous_login(settings: Settings) -> None:
    """``authData.anonymous`` log-ins (Parse's ``enableAnonymousUsers``)."""
    if not settings.anonymous_users:
        raise UnsupportedService("This authentication method is unsupported: anonymous")
