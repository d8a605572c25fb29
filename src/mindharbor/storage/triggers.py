"""What the object service calls around each write: the trigger protocol of the storage layer.

``Repository`` builds these requests and calls the triggers a ``TriggerSource`` holds; the
application's hook registry (``mindharbor.hooks.Hooks``) is one. Defined here, below the
application, so the storage layer imports nothing above it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from mindharbor.security.auth import Auth

if TYPE_CHECKING:
    from mindharbor.storage.repository import Repository
    from mindharbor.storage.schema import ClassSchema

_UNSET: Any = object()


@dataclass
class SaveRequest:
    """A create or update in progress, as hooks see and shape it."""

    repo: Repository
    schema: ClassSchema
    object_id: str
    original: dict[str, Any] | None  # the stored row (column values) for an update
    body: dict[str, Any]
    server_values: dict[str, Any] = field(default_factory=dict)
    hidden: dict[str, Any] = field(default_factory=dict)
    acl: Any = _UNSET  # ACLJson, or None for public; unset: taken from the body
    context: dict[str, Any] = field(default_factory=dict)  # passed on to after_save

    @property
    def auth(self) -> Auth:
        return self.repo.auth

    @property
    def is_new(self) -> bool:
        return self.original is None

    @property
    def acl_decided(self) -> bool:
        return self.acl is not _UNSET

    def value(self, name: str) -> Any:
        """The field's value after this write: a change if any, else the stored value."""
        for source in (self.server_values, self.body):
            if name in source:
                return source[name]
        return (self.original or {}).get(name)


@dataclass
class AfterSave:
    repo: Repository
    schema: ClassSchema
    object_id: str
    is_new: bool
    row: dict[str, Any]  # column values as written
    original: dict[str, Any] | None
    context: dict[str, Any]


@dataclass
class DeleteRequest:
    repo: Repository
    schema: ClassSchema
    row: dict[str, Any]


SaveHook = Callable[[SaveRequest], Awaitable[None]]
AfterSaveHook = Callable[[AfterSave], Awaitable[None]]
DeleteHook = Callable[[DeleteRequest], Awaitable[None]]
CommitHook = Callable[["Repository"], Awaitable[None]]


class TriggerSource(Protocol):
    """The triggers of each class, and what runs just before every commit."""

    @property
    def before_save(self) -> Mapping[str, Sequence[SaveHook]]: ...
    @property
    def after_save(self) -> Mapping[str, Sequence[AfterSaveHook]]: ...
    @property
    def before_delete(self) -> Mapping[str, Sequence[DeleteHook]]: ...
    @property
    def after_delete(self) -> Mapping[str, Sequence[DeleteHook]]: ...
    @property
    def before_commit(self) -> Sequence[CommitHook]: ...


@dataclass
class NoTriggers:
    """A store without an application: no triggers at all (migrations, tools)."""

    before_save: dict[str, list[SaveHook]] = field(default_factory=dict)
    after_save: dict[str, list[AfterSaveHook]] = field(default_factory=dict)
    before_delete: dict[str, list[DeleteHook]] = field(default_factory=dict)
    after_delete: dict[str, list[DeleteHook]] = field(default_factory=dict)
    before_commit: list[CommitHook] = field(default_factory=list)


class FileRefs(Protocol):
    """What the object service asks of the file store: may this caller attach these files, and
    the signed, expiring URLs of the files a caller may read."""

    async def check_refs(self, auth: Auth, body: Any, original: Any) -> None: ...
    def sign_refs(self, value: Any, auth: Auth) -> Any: ...
