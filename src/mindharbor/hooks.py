"""Server hooks ("cloud code" in Python): triggers per class and callable functions.

The product's own rules (identity, care teams, later the clinical workflows) register here
exactly as a deployer's module would. Triggers run inside the request's transaction, so a hook
that raises rolls the whole write back. A ``before_save`` hook may edit the client's changes
(``body``), add values only the server may set (``server_values``), set raw hidden columns
(``hidden``) and decide the ACL (``acl``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mindharbor.errors import ScriptFailed
from mindharbor.security.auth import Auth
from mindharbor.storage.triggers import (
    AfterSave,
    AfterSaveHook,
    CommitHook,
    DeleteHook,
    DeleteRequest,
    SaveHook,
    SaveRequest,
)

if TYPE_CHECKING:
    from mindharbor.storage.repository import Repository

__all__ = [
    "AfterSave",
    "CloudFunction",
    "DeleteRequest",
    "FunctionRequest",
    "Hooks",
    "Job",
    "JobRequest",
    "SaveRequest",
]


@dataclass
class FunctionRequest:
    repo: Repository
    params: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)  # request id, ip, user agent

    @property
    def auth(self) -> Auth:
        return self.repo.auth


@dataclass
class JobRequest:
    repo: Repository
    params: dict[str, Any]
    status_id: str | None = None


CloudFunction = Callable[[FunctionRequest], Awaitable[Any]]
Job = Callable[[JobRequest], Awaitable[Any]]


class Hooks:
    """The registry; built once at start-up and shared by every request."""

    def __init__(self) -> None:
        self.before_save: dict[str, list[SaveHook]] = defaultdict(list)
        self.after_save: dict[str, list[AfterSaveHook]] = defaultdict(list)
        self.before_delete: dict[str, list[DeleteHook]] = defaultdict(list)
        self.after_delete: dict[str, list[DeleteHook]] = defaultdict(list)
        self.functions: dict[str, CloudFunction] = {}
        self.jobs: dict[str, Job] = {}
        # Run inside every transaction just before it commits (the audit flush).
        self.before_commit: list[CommitHook] = []

    def on_before_save(self, *classes: str) -> Callable[[SaveHook], SaveHook]:
        def register(fn: SaveHook) -> SaveHook:
            for name in classes:
                self.before_save[name].append(fn)
            return fn

        return register

    def on_after_save(self, *classes: str) -> Callable[[AfterSaveHook], AfterSaveHook]:
        def register(fn: AfterSaveHook) -> AfterSaveHook:
            for name in classes:
                self.after_save[name].append(fn)
            return fn

        return register

    def on_before_delete(self, *classes: str) -> Callable[[DeleteHook], DeleteHook]:
        def register(fn: DeleteHook) -> DeleteHook:
            for name in classes:
                self.before_delete[name].append(fn)
            return fn

        return register

    def on_after_delete(self, *classes: str) -> Callable[[DeleteHook], DeleteHook]:
        def register(fn: DeleteHook) -> DeleteHook:
            for name in classes:
                self.after_delete[name].append(fn)
            return fn

        return register

    def function(self, name: str) -> Callable[[CloudFunction], CloudFunction]:
        def register(fn: CloudFunction) -> CloudFunction:
            self.functions[name] = fn
            return fn

        return register

    def job(self, name: str) -> Callable[[Job], Job]:
        def register(fn: Job) -> Job:
            self.jobs[name] = fn
            return fn

        return register

    async def call_function(self, name: str, request: FunctionRequest) -> Any:
        fn = self.functions.get(name)
        if fn is None:
            raise ScriptFailed(f'Invalid function: "{name}"')
        return await fn(request)
