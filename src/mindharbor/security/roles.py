"""Who holds which standing, and which role names the server alone manages.

Every "is this caller an admin / staff / a provider" question in the code base is answered here,
so the rules can be read (and changed) in one place rather than as ``"admin" in roles`` checks
scattered through domain code.

Server-managed roles: the built-in roles, ``careTeam_<patientProfileId>`` (the providers
assigned to a patient; changed only by ``assignProvider``/``unassignProvider``) and
``emergency_<patientProfileId>`` (never a stored role at all: the identity is derived from an
unexpired row of the emergency-grant table, created only by ``requestEmergencyAccess``). None of
them can be created, renamed, re-shaped, joined or deleted through ``/roles``, ``/classes/_Role``,
``/batch`` or GraphQL, by anyone, the master key included: the server's own flows change them.
"""

from __future__ import annotations

from mindharbor.errors import OperationForbidden
from mindharbor.security.auth import Auth

BUILTIN_ROLES = ("patient", "provider", "admin", "compliance")
STAFF_ROLES = frozenset({"provider", "admin", "compliance"})
CARE_TEAM_PREFIX = "careTeam_"
EMERGENCY_PREFIX = "emergency_"
SERVER_MANAGED_PREFIXES = (CARE_TEAM_PREFIX, EMERGENCY_PREFIX)

# How each server-managed role comes about (docs/access-model.md is checked against this).
MANAGED_ROLES: dict[str, str] = {
    "patient": "sign-up (self, an admin, an invitation or single sign-on); grantRole/revokeRole",
    "provider": "an admin (sign-up with role, createInvitation, grantRole/revokeRole)",
    "admin": "an admin (sign-up with role, createInvitation, grantRole/revokeRole)",
    "compliance": "an admin (sign-up with role, createInvitation, grantRole/revokeRole)",
    f"{CARE_TEAM_PREFIX}<patientProfileId>": "an admin: assignProvider / unassignProvider",
    f"{EMERGENCY_PREFIX}<patientProfileId>": (
        "a provider: requestEmergencyAccess (reason, time-limited; never a stored role)"
    ),
}


# Every kind of grant, who may create it and how (docs/access-model.md is generated from this).
GRANTS: dict[str, str] = {
    "membership of patient": (
        "self sign-up (rate limited per IP), an admin, an invitation or single sign-on"
    ),
    "membership of provider, admin, compliance": (
        "an admin only: sign-up with a role, createInvitation, grantRole/revokeRole (audited;"
        " an admin cannot revoke their own admin role)"
    ),
    f"membership of {CARE_TEAM_PREFIX}<patientProfileId>": (
        "an admin only: assignProvider / unassignProvider (audited); never through /roles"
    ),
    f"emergency access ({EMERGENCY_PREFIX}<patientProfileId>)": (
        "a provider, for themself: requestEmergencyAccess with a reason; read-only, ends at its"
        " expiry or on revocation, audited at high severity; a row of the grant table, never a"
        " stored role"
    ),
    "a custom role (any other name)": (
        "an admin (the _Role class-level permissions), through /roles, /batch or GraphQL"
    ),
    "the ACL of a clinical record": (
        "the server, from the record's patient; a client may only narrow it, never widen it"
    ),
    "a signed file URL": (
        "the server, when the reader may read an object referencing the file and is the"
        " patient, on the care team or holds emergency access; bound to the reader's session"
    ),
}


def care_team_role(patient_profile_id: str) -> str:
    return f"{CARE_TEAM_PREFIX}{patient_profile_id}"


def emergency_role(patient_profile_id: str) -> str:
    return f"{EMERGENCY_PREFIX}{patient_profile_id}"


def is_server_managed_role(name: object) -> bool:
    if not isinstance(name, str):
        return False
    return name in BUILTIN_ROLES or name.startswith(SERVER_MANAGED_PREFIXES)


def check_role_change(auth: Auth, name: object, what: str) -> None:
    """Refuse (119) any API change to a server-managed role; the server's flows pass."""
    if auth.is_system or not is_server_managed_role(name):
        return
    if isinstance(name, str) and name.startswith(CARE_TEAM_PREFIX):
        hint = "Care teams change through assignProvider and unassignProvider."
    elif isinstance(name, str) and name.startswith(EMERGENCY_PREFIX):
        hint = "Emergency access comes only from requestEmergencyAccess."
    else:
        hint = "Built-in roles change through sign-up, invitations and grantRole/revokeRole."
    raise OperationForbidden(
        f"The role {name} is managed by the server; it cannot be {what}. {hint}"
    )


# -- standing ------------------------------------------------------------------------------------
def is_admin(auth: Auth) -> bool:
    """The master key or a clinic administrator."""
    return auth.is_master or "admin" in auth.roles


def is_clinical_staff(auth: Auth) -> bool:
    """Who may change a chart's clinical identity fields: admins and providers."""
    return auth.is_master or bool(auth.roles & {"admin", "provider"})


def is_provider(auth: Auth) -> bool:
    return auth.user_id is not None and "provider" in auth.roles


def may_review_compliance(auth: Auth) -> bool:
    """Compliance officers and admins review audit trails and emergency grants."""
    return auth.is_master or bool(auth.roles & {"compliance", "admin"})


def is_staff_roles(roles: frozenset[str]) -> bool:
    return bool(roles & STAFF_ROLES)


def may_receive_file_urls(auth: Auth, patient_profile_id: str | None) -> bool:
    """Whether signed file URLs of a record about ``patient_profile_id`` may be minted for
    this reader: the master key, the patient, the patient's current care team and emergency
    access. A provider taken off the care team still reads the text of the messages he sent
    (his own words), but not their attachments: no freshly signed URL reaches him."""
    if patient_profile_id is None or auth.is_master:
        return True
    roles = auth.roles
    return (
        "patient" in roles
        or care_team_role(patient_profile_id) in roles
        or emergency_role(patient_profile_id) in roles
    )
