"""Cloud code for the Parse GraphQL guide's examples, loaded as a deployer's hook module.

* ``hello`` and ``addToCart``: the guide's "Cloud Code Resolvers" functions, ported to Python
  (``addToCart`` decodes the Relay id with ``from_global_id``, as the guide's JS does with
  graphql-relay).
* ``PINNED``: the guide's examples name objects by fixed ids (``GameScore:6mtiMrkW6v``...). A
  test queues the id the next object of a class must get, and a ``before_save`` hook assigns it,
  so the examples' exact text (ids included) runs and their answers compare exactly.
"""

from __future__ import annotations

from typing import Any

from mindharbor.api.graphql.ids import from_global_id, to_global_id
from mindharbor.errors import ObjectNotFound
from mindharbor.hooks import FunctionRequest, Hooks, SaveRequest
from mindharbor.storage.repository import FindQuery

PINNED: dict[str, list[str]] = {}
PINNED_CLASSES = ("GameScore", "_User", "Item", "CartItem", "Country", "City")


def pin(class_name: str, object_id: str) -> None:
    PINNED.setdefault(class_name, []).append(object_id)


async def pinned_id(request: SaveRequest) -> None:
    queue = PINNED.get(request.schema.name)
    if request.is_new and queue:
        request.object_id = queue.pop(0)


async def hello(_request: FunctionRequest) -> str:
    return "Hello, world!"


def _pointer(class_name: str, object_id: str) -> dict[str, str]:
    return {"__type": "Pointer", "className": class_name, "objectId": object_id}


async def add_to_cart(request: FunctionRequest) -> dict[str, Any]:
    repo, user_id = request.repo, request.auth.user_id
    decoded = from_global_id(str(request.params.get("id")))
    if user_id is None or decoded is None:
        raise ObjectNotFound()
    item = await repo.get("Item", decoded[1])
    where = {"item": _pointer("Item", item["objectId"]), "user": _pointer("_User", user_id)}
    found = await repo.find("CartItem", FindQuery(where=where, limit=1))
    if found.results:
        existing = found.results[0]
        await repo.update("CartItem", existing["objectId"], {"quantity": existing["quantity"] + 1})
        saved_id = existing["objectId"]
    else:
        created = await repo.create("CartItem", {"quantity": 1, **where})
        saved_id = created["objectId"]
    saved = await repo.get("CartItem", saved_id)
    return {**saved, "id": to_global_id("CartItem", saved_id)}


def register(hooks: Hooks) -> None:
    for class_name in PINNED_CLASSES:  # first: the product's own hooks use the id (user ACLs)
        hooks.before_save[class_name].insert(0, pinned_id)
    hooks.function("hello")(hello)
    hooks.function("addToCart")(add_to_cart)
