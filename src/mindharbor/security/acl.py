"""ACL values: Parse's ``{"principal": {"read": true, "write": true}}`` JSON and its lists.

A principal is ``*`` (everyone), a user objectId, or ``role:<name>``. Rows store the ACL as sent
(for echoing back) and the derived ``_rperm``/``_wperm`` lists the SQL filter uses. A missing ACL
means public read and write, as in Parse; the object service decides per class what the default
ACL is before it gets here.
"""

from __future__ import annotations

import re
from typing import Any

from mindharbor.errors import InvalidACL

PUBLIC = "*"
_USER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ROLE_RE = re.compile(r"^role:[A-Za-z0-9_ -]{1,128}$")

ACLJson = dict[str, dict[str, bool]]


def validate_acl(value: Any) -> ACLJson:
    """Check the shape of a client ACL; only ``true`` flags are kept, as Parse stores them."""
    if not isinstance(value, dict):
        raise InvalidACL()
    out: ACLJson = {}
    for principal, perms in value.items():
        if not isinstance(principal, str) or not (
            principal == PUBLIC or _USER_ID_RE.match(principal) or _ROLE_RE.match(principal)
        ):
            raise InvalidACL(f"Invalid ACL principal: {principal!r}")
        if not isinstance(perms, dict) or not set(perms) <= {"read", "write"}:
            raise InvalidACL()
        if any(not isinstance(v, bool) for v in perms.values()):
            raise InvalidACL()
        kept = {k: True for k, v in perms.items() if v}
        if kept:
            out[principal] = kept
    return out


def permission_lists(acl: ACLJson | None) -> tuple[list[str], list[str]]:
    """(readers, writers) for the ``_rperm``/``_wperm`` columns; ``None`` is public."""
    if acl is None:
        return [PUBLIC], [PUBLIC]
    readers = sorted(p for p, perms in acl.items() if perms.get("read"))
    writers = sorted(p for p, perms in acl.items() if perms.get("write"))
    return readers, writers
