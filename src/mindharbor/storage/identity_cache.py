"""Each worker's resolved sessions, kept until the database says they changed.

A request with a cached token costs no query at all. Copies are dropped by change events
(``storage/identity.py`` announces them inside the changing transaction):

- PostgreSQL: a dedicated connection ``LISTEN``s; the database delivers each ``NOTIFY`` at
  commit, to every worker of every server. While that connection is not known to be alive and
  listening, the cache is *distrusted*: emptied, and every request reads the database, so an
  event lost with a dying connection can never leave a stale identity in use. A lost connection
  is noticed when its socket closes (at once for a terminated backend) or when the periodic
  ping fails; on reconnect the cache starts empty.
- SQLite (one machine): each process compares the epoch row every transaction that changes an
  identity bumps (``read_epoch``), once per request, and empties its cache when it moved.

Races: a database read that started before an invalidation finished is never cached (the
``generation`` counter), and expiry needs no event: an entry is used only before its
``valid_until`` (the session's end or its first emergency grant's end), and an idle-looking
entry is re-read (another worker may have seen the session used since).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from mindharbor.storage.identity import CHANNEL, EVERYONE, Identity

log = logging.getLogger(__name__)


class IdentityCache:
    """Resolved identities of this worker, by token hash."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._by_token: dict[str, Identity] = {}
        self._by_user: dict[str, set[str]] = {}
        self._by_session: dict[str, str] = {}
        self.generation = 0
        self.trusted = False  # set by the change feed once it is listening
        self.epoch: int | None = None  # SQLite: the epoch the entries were read under
        self.hits = 0
        self.misses = 0
        # Role closures of any user (a message's recipient, a provider being assigned):
        # (roles, first grant end or None).
        self._roles: dict[str, tuple[frozenset[str], datetime | None]] = {}

    def __len__(self) -> int:
        return len(self._by_token)

    def get(self, token_hash: str) -> Identity | None:
        if not self.trusted:
            return None
        found = self._by_token.get(token_hash)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, token_hash: str, identity: Identity, generation: int) -> None:
        """Keep ``identity`` unless an invalidation happened since ``generation`` was read."""
        if not self.trusted or generation != self.generation:
            return
        if len(self._by_token) >= self.max_entries:
            self._forget(next(iter(self._by_token)))  # the oldest entry
        self._forget(token_hash)
        self._by_token[token_hash] = identity
        self._by_user.setdefault(identity.user_id, set()).add(token_hash)
        self._by_session[identity.session_id] = token_hash

    def get_roles(self, user_id: str, now: datetime) -> frozenset[str] | None:
        if not self.trusted:
            return None
        found = self._roles.get(user_id)
        if found is None or (found[1] is not None and now >= found[1]):
            return None
        return found[0]

    def put_roles(
        self, user_id: str, roles: frozenset[str], valid_until: datetime | None, generation: int
    ) -> None:
        if not self.trusted or generation != self.generation:
            return
        if len(self._roles) >= self.max_entries:
            self._roles.pop(next(iter(self._roles)))
        self._roles[user_id] = (roles, valid_until)

    def touched(self, token_hash: str, at: datetime) -> None:
        found = self._by_token.get(token_hash)
        if found is not None:
            self._by_token[token_hash] = replace(found, last_used_at=at)

    def drop(self, token_hash: str) -> None:
        self.generation += 1
        self._forget(token_hash)

    def invalidate(self, scopes: Iterable[str]) -> None:
        """Forget what the scopes name: ``*``, ``u:<userId>`` or ``s:<sessionId>``."""
        self.generation += 1
        for scope in scopes:
            if scope == EVERYONE:
                self._clear()
                return
            kind, _, value = scope.partition(":")
            if kind == "u":
                self._roles.pop(value, None)
                for token_hash in list(self._by_user.get(value, ())):
                    self._forget(token_hash)
            elif kind == "s":
                hashed = self._by_session.get(value)
                if hashed is not None:
                    self._forget(hashed)

    def distrust(self) -> None:
        """The change feed is down: empty, and read the database until it is back."""
        self.trusted = False
        self.generation += 1
        self._clear()

    def trust(self) -> None:
        """The change feed is (back) up; nothing from before it can be relied on."""
        self.generation += 1
        self._clear()
        self.trusted = True

    def _clear(self) -> None:
        self._roles.clear()
        self._by_token.clear()
        self._by_user.clear()
        self._by_session.clear()

    def _forget(self, token_hash: str) -> None:
        found = self._by_token.pop(token_hash, None)
        if found is None:
            return
        tokens = self._by_user.get(found.user_id)
        if tokens is not None:
            tokens.discard(token_hash)
            if not tokens:
                del self._by_user[found.user_id]
        if self._by_session.get(found.session_id) == token_hash:
            del self._by_session[found.session_id]


class PostgresFeed:
    """LISTEN on a connection of its own; distrust the cache whenever it may miss events."""

    def __init__(
        self, dsn: str, cache: IdentityCache, ping_seconds: float = 1.0, timeout: float = 2.0
    ) -> None:
        self.dsn = dsn
        self.cache = cache
        self.ping_seconds = ping_seconds
        self.timeout = timeout
        self.connection: Any = None
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        # Serve from the database until listening; don't hold start-up for long.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), 5.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.cache.distrust()

    async def _run(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        delay = 0.2
        while True:
            conn: Any = None
            try:
                conn = await asyncio.wait_for(asyncpg.connect(self.dsn), self.timeout * 5)
                conn.add_termination_listener(self._lost)
                await conn.add_listener(CHANNEL, self._notified)
                self.connection = conn
                self.cache.trust()
                self.connected.set()
                delay = 0.2
                while not conn.is_closed():
                    await asyncio.sleep(self.ping_seconds)
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), self.timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "identity feed unavailable (%s); sessions are read from the database",
                    type(exc).__name__,
                )
            finally:
                self.cache.distrust()
                self.connected.clear()
                self.connection = None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.cache.invalidate(payload.split() or [EVERYONE])

    def _lost(self, _conn: Any) -> None:
        self.cache.distrust()
