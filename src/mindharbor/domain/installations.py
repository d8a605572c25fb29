"""``_Installation``: the devices of Parse apps, created and updated by their installationId.

Parse Server's rules (``RestWrite.handleInstallation``), kept here:

* a create names the device by ``installationId`` (lower-cased) and/or ``deviceToken`` (135
  otherwise) and states its ``deviceType`` (135); a 64-character (iOS) token is lower-cased;
* a create whose installationId is already stored updates that installation instead (200, not a
  second row), as does one whose deviceToken matches a single installation that has no
  installationId; a token shared by several installations needs an installationId (132);
* ``installationId`` and ``deviceType`` never change once set (136);
* a deviceToken belongs to one device: other installations holding it are deleted (Parse's
  default ``duplicateDeviceTokenAction``).

Access differs from Parse on purpose. Parse leaves a client's installation public (anyone
who learns its objectId reads and rewrites it) and refuses clients only ``find`` and
``delete``. Here the installation's ACL is empty (the master key only) and a client acts on the
one installation its request names: the ``installationId`` in the body, else the installation
id every Parse SDK sends with each request (``X-Parse-Installation-Id`` / ``_InstallationId``).
That is what an app needs (``Parse.Installation.currentInstallation()``, save, fetch), without
one device reading or rewriting another's push token. A client may link its installation to
itself (``user``), never to someone else (119).
"""

from __future__ import annotations

from typing import Any

from mindharbor.errors import (
    InstallationIdMissing,
    InvalidInstallationChange,
    InvalidInstallationId,
    ObjectNotFound,
    OperationForbidden,
    PushMisconfigured,
)
from mindharbor.hooks import Hooks, SaveRequest
from mindharbor.storage.repository import FindQuery, Repository

CLASS = "_Installation"
MAX_MATCHES = 1000
IOS_TOKEN_LENGTH = 64
CLIENTS_MAY_NOT = (
    "Clients aren't allowed to perform the {} operation on the installation collection."
)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _pointer_id(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("__type") == "Pointer":
        return str(value.get("objectId"))
    return None


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    """Parse's spelling: installationId lower-cased, an iOS (64-character) token too."""
    out = dict(body)
    token = _text(out.get("deviceToken"))
    if token is not None and len(token) == IOS_TOKEN_LENGTH:
        out["deviceToken"] = token.lower()
    installation_id = _text(out.get("installationId"))
    if installation_id is not None:
        out["installationId"] = installation_id.lower()
    return out


def refuse_client(repo: Repository, operation: str) -> None:
    """``find`` and ``delete`` of installations need the master key (Parse's SharedRest)."""
    if not repo.auth.is_master:
        raise OperationForbidden(CLIENTS_MAY_NOT.format(operation))


def _claimed_id(repo: Repository, body: dict[str, Any]) -> str | None:
    """The installation a request names: its body's installationId, else the request's own."""
    claimed = _text(body.get("installationId"))
    if claimed is None and not repo.auth.is_master:
        claimed = _text(repo.auth.installation_id)
    return claimed.lower() if claimed else None


def _check_client_body(repo: Repository, body: dict[str, Any]) -> None:
    if repo.auth.is_master:
        return
    if "ACL" in body:
        raise OperationForbidden(
            "An installation is reached through its installationId; it takes no ACL."
        )
    user = body.get("user")
    if user is not None and _pointer_id(user) != repo.auth.user_id:
        raise OperationForbidden("A client links an installation to its own user only.")


async def _matches(
    system: Repository, object_id: str | None, installation_id: str | None, token: str | None
) -> list[dict[str, Any]]:
    ors: list[dict[str, Any]] = []
    if object_id:
        ors.append({"objectId": object_id})
    if installation_id:
        ors.append({"installationId": installation_id})
    if token:
        ors.append({"deviceToken": token})
    if not ors:
        return []
    found = await system.find(CLASS, FindQuery(where={"$or": ors}, limit=MAX_MATCHES))
    return found.results


async def _drop_token_holders(
    system: Repository, token: str, keep_installation: str | None, keep_object: str | None
) -> None:
    """A device token names one device: other installations holding it are deleted."""
    where: dict[str, Any] = {"deviceToken": token}
    if keep_installation:
        where["installationId"] = {"$ne": keep_installation}
    if keep_object:
        where["objectId"] = {"$ne": keep_object}
    found = await system.find(CLASS, FindQuery(where=where, limit=MAX_MATCHES))
    for row in found.results:
        await system.delete(CLASS, row["objectId"])


async def _target(
    system: Repository,
    object_id: str | None,
    installation_id: str | None,
    body: dict[str, Any],
) -> str | None:
    """The stored installation this write updates (None: create one), per Parse's rules."""
    token = _text(body.get("deviceToken"))
    rows = await _matches(system, object_id, installation_id, token)
    by_object = next((r for r in rows if object_id and r["objectId"] == object_id), None)
    by_installation = next(
        (r for r in rows if installation_id and r.get("installationId") == installation_id), None
    )
    by_token = [r for r in rows if token and r.get("deviceToken") == token]
    if object_id and by_object is None:
        raise ObjectNotFound("Object not found for update.")
    matched = by_installation or by_object
    if object_id is None and matched is None and not body.get("deviceType"):
        raise InstallationIdMissing("deviceType must be specified in this operation")
    if matched is None:
        if not by_token or token is None:
            return None
        if len(by_token) == 1 and (not by_token[0].get("installationId") or not installation_id):
            return str(by_token[0]["objectId"])
        if not _text(body.get("installationId")):
            raise InvalidInstallationId(
                "Must specify installationId when deviceToken matches multiple Installation objects"
            )
        await _drop_token_holders(system, token, installation_id, None)
        return None
    if len(by_token) == 1 and not by_token[0].get("installationId"):
        if by_token[0]["objectId"] != matched["objectId"]:
            await system.delete(CLASS, by_token[0]["objectId"])  # the same device, twice
    elif token and matched.get("deviceToken") != token:
        await _drop_token_holders(system, token, installation_id, str(matched["objectId"]))
    return str(matched["objectId"])


async def save_installation(
    repo: Repository, body: dict[str, Any], object_id: str | None = None
) -> tuple[int, dict[str, Any]]:
    """Create or update an installation (``POST`` / ``PUT``): (HTTP status, Parse's answer)."""
    body = normalise(body)
    _check_client_body(repo, body)
    installation_id = _claimed_id(repo, body)
    if object_id is None and installation_id is None and not _text(body.get("deviceToken")):
        raise InstallationIdMissing(
            "at least one ID field (deviceToken, installationId) must be specified in this "
            "operation"
        )
    system = repo.system()
    if object_id is not None and not repo.auth.is_master:
        # A client updates the installation it names, and no other: 101 as for a missing one.
        stored = await system.get(CLASS, object_id)
        if installation_id is None or stored.get("installationId") != installation_id:
            raise ObjectNotFound("Object not found for update.")
    target = await _target(system, object_id, installation_id, body)
    writer = repo if repo.auth.is_master else system
    if target is None:
        if installation_id and "installationId" not in body:
            body["installationId"] = installation_id
        if not repo.auth.is_master:
            body["ACL"] = {}
        return 201, await writer.create(CLASS, body)
    if target != object_id:
        body.pop("objectId", None)
        body.pop("createdAt", None)
    answer = await writer.update(CLASS, target, body)
    # Parse answers a create that became an update without the objectId; the SDK then keeps a
    # local id only. Sending it is harmless to Parse clients and lets them update by id.
    return 200, ({"objectId": target, **answer} if object_id is None else answer)


async def get_installation(repo: Repository, object_id: str) -> dict[str, Any]:
    """``GET``: the master key reads any; a client only the installation its request names."""
    if repo.auth.is_master:
        return await repo.get(CLASS, object_id)
    stored = await repo.system().get(CLASS, object_id)
    mine = _text(repo.auth.installation_id)
    if mine is None or stored.get("installationId") != mine.lower():
        raise ObjectNotFound()
    return stored


def refuse_push(repo: Repository, body: dict[str, Any]) -> None:
    """``POST /push``: Parse Server's answers when no push adapter is configured."""
    if "where" in body and "channels" in body:
        raise PushMisconfigured("Channels and query can not be set at the same time.")
    raise PushMisconfigured("Missing push configuration")


async def installation_before_save(request: SaveRequest) -> None:
    """Every write, the master key's included: ids and device type never change (136)."""
    request.body.update(normalise(request.body))
    original = request.original
    if original is None:
        return
    for field in ("installationId", "deviceType"):
        sent, stored = request.body.get(field), original.get(field)
        if sent is not None and stored and sent != stored:
            raise InvalidInstallationChange(f"{field} may not be changed in this operation")


def register(hooks: Hooks) -> None:
    hooks.on_before_save(CLASS)(installation_before_save)
