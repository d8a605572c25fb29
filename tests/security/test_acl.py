import pytest

from mindharbor.errors import InvalidACL, OperationForbidden
from mindharbor.security.acl import permission_lists, validate_acl
from mindharbor.security.auth import Auth
from mindharbor.security.clp import check_operation
from mindharbor.storage.schema import ClassSchema


def test_acl_lists() -> None:
    acl = validate_acl(
        {
            "*": {"read": True},
            "u1": {"read": True, "write": True},
            "role:staff": {"write": True},
            "u2": {"read": False},
        }
    )
    assert acl == {
        "*": {"read": True},
        "u1": {"read": True, "write": True},
        "role:staff": {"write": True},
    }
    assert permission_lists(acl) == (["*", "u1"], ["role:staff", "u1"])
    assert permission_lists(None) == (["*"], ["*"])
    assert permission_lists({}) == ([], [])


@pytest.mark.parametrize(
    "bad",
    [
        [],
        "x",
        {"u1": True},
        {"u1": {"delete": True}},
        {"u1": {"read": "yes"}},
        {"role:": {"read": True}},
        {"bad id!": {"read": True}},
    ],
)
def test_invalid_acls(bad: object) -> None:
    with pytest.raises(InvalidACL):
        validate_acl(bad)


def _schema(clp: dict) -> ClassSchema:
    return ClassSchema(name="C", fields={}, clp=clp)


def test_clp_principals() -> None:
    schema = _schema(
        {"find": {"role:staff": True, "u9": True}, "get": {"requiresAuthentication": True}}
    )
    assert check_operation(Auth.user("u1", {"staff"}), schema, "find").pointer_fields is None
    assert check_operation(Auth.user("u9"), schema, "find").pointer_fields is None
    with pytest.raises(OperationForbidden):
        check_operation(Auth.user("u1"), schema, "find")
    with pytest.raises(OperationForbidden):
        check_operation(Auth.anonymous(), schema, "get")
    check_operation(Auth.user("u1"), schema, "get")
    check_operation(Auth.master(), schema, "find")
    check_operation(Auth.anonymous(), schema, "create")  # absent from the CLP: public


def test_pointer_permissions_restrict_rows() -> None:
    schema = _schema({"find": {"pointerFields": ["owner"]}, "readUserFields": ["reader"]})
    grant = check_operation(Auth.user("u1"), schema, "find")
    assert grant.pointer_fields == ("owner", "reader")
    with pytest.raises(OperationForbidden):
        check_operation(Auth.anonymous(), schema, "find")
