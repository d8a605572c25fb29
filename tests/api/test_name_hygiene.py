"""Names that hurt clients are refused, and usernames that look the same are one account
(issue 14, defect 8), both backends.

- ``__proto__``, ``constructor``, ``prototype`` and ``toString`` are no class, field or key
  anywhere in a stored value (JavaScript clients that merge objects are exposed to them).
- A username is stored NFC-normalised and compared NFKC-case-folded: an NFD spelling, a
  full-width one or another case of a taken name is taken, and logs into that same account.
"""

from __future__ import annotations

import unicodedata
import uuid

import pytest

from tests.support import ParseClient

PASSWORD = "a long enough passphrase"


@pytest.mark.parametrize("name", ["__proto__", "constructor", "prototype", "toString"])
def test_prohibited_names(api: ParseClient, name: str) -> None:
    cls = f"Hyg{uuid.uuid4().hex[:6]}"
    assert api.post(f"/classes/{cls}", {"ok": 1}, master=True).status_code == 201
    as_field = api.post(f"/classes/{cls}", {name: 1}, master=True)
    assert as_field.status_code == 400 and as_field.json()["code"] == 105, as_field.text
    nested = api.post(f"/classes/{cls}", {"data": {"a": {name: {"polluted": True}}}}, master=True)
    assert nested.json()["code"] == 105, nested.text
    in_list = api.post(f"/classes/{cls}", {"items": [{name: 1}]}, master=True)
    assert in_list.json()["code"] == 105, in_list.text
    as_class = api.post(f"/classes/{name}", {"a": 1}, master=True)
    assert as_class.status_code == 400 and as_class.json()["code"] in (103, 105), as_class.text
    schema = api.post(f"/schemas/{cls}", {"fields": {name: {"type": "String"}}}, master=True)
    assert schema.status_code == 400, schema.text


@pytest.fixture
def api(server: object) -> ParseClient:
    return server.client()  # type: ignore[attr-defined,no-any-return]


def test_usernames_that_look_the_same_are_one_account(api: ParseClient) -> None:
    base = f"José{uuid.uuid4().hex[:6]}"
    nfc = unicodedata.normalize("NFC", base)
    made = api.post(
        "/users", {"username": unicodedata.normalize("NFD", base), "password": PASSWORD}
    )
    assert made.status_code == 201, made.text
    stored = api.get(f"/users/{made.json()['objectId']}", master=True).json()["username"]
    assert stored == nfc  # stored composed
    for twin in (
        nfc,
        nfc.upper(),
        "".join(chr(ord(c) + 0xFEE0) if "a" <= c <= "z" else c for c in nfc),
    ):
        again = api.post("/users", {"username": twin, "password": PASSWORD})
        assert again.status_code == 400 and again.json()["code"] == 202, (twin, again.text)
    for spelling in (unicodedata.normalize("NFD", base), nfc.upper()):
        login = api.post("/login", {"username": spelling, "password": PASSWORD})
        assert login.status_code == 200, (spelling, login.text)
        assert login.json()["objectId"] == made.json()["objectId"]
