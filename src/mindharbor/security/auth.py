"""The caller: who is asking, resolved once per request and handed to the repository.

``identities`` is what the SQL read/write filters compare with a row's permission lists: always
``*``, plus the user's objectId and ``role:<name>`` for every role held (transitively). The master
key and the server's own jobs use ``Auth.master()``; nothing else bypasses the filters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Auth:
    """Identity of one request. Immutable so a repository cannot widen its own rights."""

    user_id: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    is_master: bool = False
    session_id: str | None = None
    installation_id: str | None = None
    # A session that must enrol a second factor before it may do anything else.
    restricted: bool = False
    # The server acting on its own behalf (hooks, jobs); a master-key request is not this.
    is_system: bool = False
    # When a session's identity changes by itself (an emergency grant or the session expires):
    # a cached copy must be re-resolved from then on. None: never (master, anonymous).
    valid_until: datetime | None = field(default=None, compare=False)

    @classmethod
    def anonymous(cls) -> Auth:
        return cls()

    @classmethod
    def master(cls) -> Auth:
        return cls(is_master=True)

    @classmethod
    def system(cls) -> Auth:
        return cls(is_master=True, is_system=True)

    @classmethod
    def user(cls, user_id: str, roles: frozenset[str] | set[str] = frozenset()) -> Auth:
        return cls(user_id=user_id, roles=frozenset(roles))

    @property
    def identities(self) -> list[str]:
        ids = ["*"]
        if self.user_id:
            ids.append(self.user_id)
        ids.extend(sorted(f"role:{r}" for r in self.roles))
        return ids

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None or self.is_master
