"""docs/access-model.md cannot drift: its roles and grants come from ``security/roles.py`` (and
``tests/test_docs.py`` fails when the committed page is stale), and its persona table agrees,
cell by cell, with the access matrix, whose every cell is a real request."""

from __future__ import annotations

from pathlib import Path

import pytest

from mindharbor.access_model import ACCESS_MODEL, PERSONA_READS, READ_CLASSES, access_model
from mindharbor.security.roles import (
    BUILTIN_ROLES,
    GRANTS,
    MANAGED_ROLES,
    SERVER_MANAGED_PREFIXES,
    is_server_managed_role,
)
from tests.security.test_access_matrix import AUDIT_READ, CALLERS, FORMER_OWN, VISIBLE

DOC = Path(__file__).parents[2] / "docs" / ACCESS_MODEL
# The matrix's callers as the page names them (patient B is patient A's mirror image).
PERSONA_OF = {
    "anon": "anonymous",
    "patientA": "patient",
    "providerOn": "provider on the care team",
    "providerOff": "provider not on the care team",
    "providerFormer": "former care-team provider",
    "admin": "admin",
    "adminCrafted": "admin with a crafted role",
    "compliance": "compliance officer",
    "master": "master key",
}


def _expected_word(caller: str, cls: str) -> str:
    if cls == "AuditLog":
        return "every entry" if AUDIT_READ[caller] else "refused"
    seen = VISIBLE[cls][caller]
    if seen is None:
        return "refused"
    if seen == {"A", "B"}:
        return "every patient's"
    if seen == {"A"}:
        return "own" if caller == "patientA" else "assigned"
    assert seen == set(), seen
    return "own sent text" if cls == "Message" and FORMER_OWN.get(caller) else "nothing"


@pytest.mark.parametrize("caller", sorted(PERSONA_OF))
def test_the_persona_table_says_what_the_matrix_checks(caller: str) -> None:
    reads = PERSONA_READS[PERSONA_OF[caller]]
    assert {cls: _expected_word(caller, cls) for cls in READ_CLASSES} == reads


def test_every_persona_on_the_page_is_in_the_matrix() -> None:
    assert set(PERSONA_READS) == set(PERSONA_OF.values())
    assert set(PERSONA_OF) | {"patientB"} == set(CALLERS)


def test_every_server_managed_role_is_listed() -> None:
    for name in MANAGED_ROLES:
        assert is_server_managed_role(name.replace("<patientProfileId>", "x1")), name
    names = set(MANAGED_ROLES)
    assert set(BUILTIN_ROLES) <= names
    for prefix in SERVER_MANAGED_PREFIXES:
        assert f"{prefix}<patientProfileId>" in names
    page = DOC.read_text(encoding="utf-8")
    assert page == access_model(), "docs/access-model.md is stale: run `make docs`"
    for name in MANAGED_ROLES:
        assert f"`{name}`" in page
    for kind in GRANTS:
        assert kind.split("_<")[0].rsplit(" ", 1)[0] in page
