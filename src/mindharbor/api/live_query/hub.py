"""The live-query hub: subscriptions per connection, and fan-out of committed changes.

A write reaches the hub only after its transaction commits (``Store.change_listeners``). With
``MINDHARBOR_REDIS_URL`` set, each worker publishes its ChangeEvents to one Redis channel and
dispatches what it reads back from that channel, so a client connected to any worker sees every
write; without Redis the events go straight from the listener to the local dispatcher.

Each event is checked for each subscriber at event time, with the same rules REST applies to a
query (design.md §5): the class-level ``find`` permission and pointer permissions, the row's read
list (``_rperm``) against the subscriber's identities, protected fields and ``keys``. The
subscriber's session and roles are cached; a revocation (logout, password change, deletion) or a
role change arrives as a change event and drops the cache at once, so a revoked session ends its
subscriptions with error 209 and a provider removed from a care team stops receiving that
patient's events immediately. An *expired* session is noticed by the sweep, within
``live_query_sweep_seconds``.

Nothing here waits on a client: events are put on each connection's bounded queue, and a
connection whose queue overflows is told so (error 100) and closed, instead of slowing others.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from mindharbor.api.live_query import disclosures, protocol
from mindharbor.api.live_query.disclosures import Delivery
from mindharbor.api.live_query.fanout import RedisFanout
from mindharbor.api.live_query.matcher import Predicate, check_field_names, compile_where
from mindharbor.api.live_query.protocol import ProtocolError
from mindharbor.auth import sessions
from mindharbor.domain import audit
from mindharbor.errors import InvalidSessionToken, OperationForbidden, ParseError
from mindharbor.security.auth import Auth
from mindharbor.security.policy import AccessPolicy
from mindharbor.settings import Settings
from mindharbor.storage.codec import iso
from mindharbor.storage.db import Store
from mindharbor.storage.encoder import ParseEncoder
from mindharbor.storage.repository import ChangeEvent
from mindharbor.storage.schema import ClassSchema
from mindharbor.storage.where import count_terms

log = logging.getLogger(__name__)

LOCAL_QUEUE_SIZE = 100_000  # committed changes waiting for this worker's dispatcher
MAX_SUBSCRIPTIONS = 200  # per connection: each costs a predicate evaluation per event
ALWAYS_SENT = ("className", "objectId", "createdAt", "updatedAt", "ACL")
_SYSTEM_COLUMNS = frozenset({"objectId", "createdAt", "updatedAt"})


# -- access, in Python, for one row -----------------------------------------------------------
def perm_overlap(perms: Iterable[str] | None, identities: Iterable[str]) -> bool:
    """Python counterpart of ``security.policy.perm_overlap``: does the row's permission list
    name any of the caller's identities? (A row without a list is readable by nobody.)"""
    return perms is not None and not set(perms).isdisjoint(identities)


def row_readable(policy: AccessPolicy, schema: ClassSchema, row: dict[str, Any]) -> bool:
    """What ``policy.read_filter`` decides in SQL, decided for one stored row.

    The CLP check is the policy's own (``AccessPolicy.check``); a pointer permission restricts
    to rows whose pointer names the caller, and the row's ``_rperm`` must meet the caller's
    identities. The master key sees everything, as in REST.
    """
    auth = policy.auth
    if auth.is_master:
        return True
    try:
        grant = policy.check(schema, "find")
    except OperationForbidden:
        return False
    if grant.pointer_fields is not None and not any(
        row.get(name) == auth.user_id for name in grant.pointer_fields
    ):
        return False
    return perm_overlap(row.get("_rperm"), auth.identities)


# -- ChangeEvents through Redis -------------------------------------------------------------
def encode_event(event: ChangeEvent) -> bytes:
    """JSON for Redis. Datetimes (top-level column values only) travel tagged: stored JSON
    values cannot carry a ``__dt`` key, since keys starting with ``__`` are refused on write."""

    def row(values: dict[str, Any] | None) -> dict[str, Any] | None:
        if values is None:
            return None
        # str(k): column names from SQLAlchemy rows are str subclasses, which orjson refuses.
        return {
            str(k): {"__dt": v.isoformat()} if isinstance(v, datetime) else v
            for k, v in values.items()
        }

    return orjson.dumps(
        {
            "c": event.class_name,
            "op": event.op,
            "id": event.object_id,
            "old": row(event.old),
            "new": row(event.new),
        }
    )


def decode_event(data: bytes | str) -> ChangeEvent:
    body = orjson.loads(data)

    def row(values: dict[str, Any] | None) -> dict[str, Any] | None:
        if values is None:
            return None
        return {
            k: datetime.fromisoformat(v["__dt"])
            if isinstance(v, dict) and set(v) == {"__dt"}
            else v
            for k, v in values.items()
        }

    return ChangeEvent(body["c"], body["op"], body["id"], row(body["old"]), row(body["new"]))


# -- connections and subscriptions ------------------------------------------------------------
@dataclass
class Subscription:
    request_id: int | float
    class_name: str
    where: dict[str, Any]
    keys: tuple[str, ...] | None
    watch: tuple[str, ...] | None
    token: str | None  # None: anonymous (or the connection's master key)
    compiled: tuple[ClassSchema, frozenset[str], Predicate] | None = None
    encoder: ParseEncoder | None = None
    encoder_for: Auth | None = None


@dataclass(eq=False)  # identity: connections live in a set
class Connection:
    """One WebSocket client; the server module drains ``outbox`` onto the socket."""

    queue_size: int
    client_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    installation_id: str | None = None
    connected: bool = False
    master: bool = False
    token: str | None = None
    subscriptions: dict[int | float, Subscription] = field(default_factory=dict)
    outbox: asyncio.Queue[bytes | None] = field(init=False)
    closing: bool = False
    close_code: int = 1000
    client_ip: str | None = None  # for the audit entries of what it receives
    user_agent: str | None = None

    def __post_init__(self) -> None:
        self.outbox = asyncio.Queue(self.queue_size)

    def push(self, data: bytes) -> None:
        """Queue a message; a client that lets its queue fill up is cut off, not waited for."""
        if self.closing:
            return
        try:
            self.outbox.put_nowait(data)
        except asyncio.QueueFull:
            self.close_with(
                protocol.error(
                    protocol.TOO_SLOW,
                    "The client is not reading its events fast enough; reconnect.",
                    reconnect=True,
                ),
                code=1013,  # "try again later"
            )

    def close_with(self, last: bytes | None, code: int = 1001) -> None:
        """Replace whatever is pending with ``last`` (if any), then close with ``code``."""
        self.closing = True
        self.close_code = code
        while not self.outbox.empty():
            self.outbox.get_nowait()
        if last is not None:
            self.outbox.put_nowait(last)
        self.outbox.put_nowait(None)

    def send(self, op: str, **extra: Any) -> None:
        self.push(protocol.message(op, self.client_id, self.installation_id, **extra))


class Hub:
    """Subscriptions of every connection to this worker, and the dispatcher feeding them."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.connections: set[Connection] = set()
        self._sessions: dict[str, str | None] = {}  # token -> session id, of subscribers
        self._events: asyncio.Queue[ChangeEvent] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._fanout: RedisFanout | None = None
        self._rechecks: set[asyncio.Task[None]] = set()
        self._channel = f"mindharbor:livequery:{settings.app_id}"

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        self._events = asyncio.Queue(LOCAL_QUEUE_SIZE)
        loop = asyncio.get_running_loop()
        if self.settings.redis_url:
            # Connected in the background: a Redis outage must not stop the EHR from starting.
            self._fanout = RedisFanout(
                self.settings.redis_url,
                self._channel,
                self.dispatch,
                self.tell_to_reconnect,
                encode_event,
                decode_event,
                timeout=self.settings.live_query_redis_timeout_seconds,
            )
            await self._fanout.start()
        self._tasks.append(loop.create_task(self._pump()))
        self._tasks.append(loop.create_task(self._sweep()))
        self.store.change_listeners.append(self.on_change)

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.store.change_listeners.remove(self.on_change)
        for conn in list(self.connections):
            conn.close_with(None)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._fanout is not None:
            await self._fanout.stop()
            self._fanout = None

    def queue_depth(self) -> int:
        """Events waiting: to be matched against subscriptions, and in clients' queues."""
        waiting = self._events.qsize() if self._events is not None else 0
        return waiting + sum(conn.outbox.qsize() for conn in self.connections)

    def on_change(self, event: ChangeEvent) -> None:
        """The store's after-commit listener: never blocks the request that made the write.
        This worker's subscribers get the event from here at once; the other workers' through
        Redis (``fanout.py``), which can never delay it."""
        if self._events is None:
            return
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            self.tell_to_reconnect("Too many live updates at once; reconnect to refetch.")
        if self._fanout is not None:
            self._fanout.publish(event)

    def tell_to_reconnect(self, reason: str) -> None:
        """Events this worker's clients should have had may be lost: say so (Parse's error
        event with ``reconnect``), and close, so every SDK reconnects, resubscribes and
        refetches instead of silently missing changes."""
        for conn in list(self.connections):
            if conn.subscriptions and not conn.closing:
                conn.close_with(protocol.error(1, reason, reconnect=True), code=1012)

    async def _pump(self) -> None:
        assert self._events is not None
        while True:
            event = await self._events.get()
            try:
                await self.dispatch(event)
            except Exception:
                log.exception("live query: dispatch failed for %s", event.class_name)

    async def _sweep(self) -> None:
        """Re-read subscribers' sessions now and then, to end those that expired (idle or
        absolute timeout) without waiting for an event. Revocations and role changes arrive as
        change events and act at once, so this only bounds how late an *expiry* is noticed;
        polling every session every few seconds stalled event delivery at 1,000 clients."""
        interval = max(self.settings.live_query_sweep_seconds, 0.1)
        while True:
            await asyncio.sleep(interval)
            tokens = {sub.token for conn in self.connections for sub in conn.subscriptions.values()}
            await self.store.sync_identity_epoch()
            for token in tokens:
                if token is None:
                    continue
                with contextlib.suppress(InvalidSessionToken):
                    await self._auth_for(token)
            for gone in [t for t in self._sessions if t not in tokens]:
                del self._sessions[gone]

    # -- sessions -------------------------------------------------------------------------------
    async def _resolve(self, token: str, *, touch: bool) -> Auth:
        """The Auth for a token (from the worker's identity cache, which every revocation,
        role, care-team and grant change reaches at commit, and which never serves an identity
        past its session's or a grant's end); 209 when it is unknown, expired or idle.

        Only a subscribe counts as the user's activity (``touch``), so an open socket does not
        keep an unattended session alive past its idle timeout (HIPAA automatic log-off).
        """
        auth = await sessions.authenticate(self.store, token, touch=touch, check_epoch=False)
        self._sessions[token] = auth.session_id
        if auth.restricted:
            # A session that still has to enrol a second factor may read nothing yet.
            auth = Auth(session_id=auth.session_id)
        return auth

    async def _auth_for(self, token: str) -> Auth:
        try:
            return await self._resolve(token, touch=False)
        except InvalidSessionToken:
            self._sessions.pop(token, None)
            await self._end_sessions(token)
            raise

    async def _end_sessions(self, token: str) -> None:
        """Every subscription that relied on ``token`` ends with 209."""
        for conn in list(self.connections):
            for sub in [s for s in conn.subscriptions.values() if s.token == token]:
                self._end(conn, sub, InvalidSessionToken())

    def _end(self, conn: Connection, sub: Subscription, exc: ParseError) -> None:
        conn.subscriptions.pop(sub.request_id, None)
        conn.push(protocol.error(exc.code, exc.message, reconnect=False, request_id=sub.request_id))

    async def _subscriber_auth(self, conn: Connection, sub: Subscription) -> Auth:
        if conn.master:
            return Auth.master()
        if sub.token is None:
            return Auth.anonymous()
        return await self._auth_for(sub.token)

    # -- requests from a client ------------------------------------------------------------------
    def open(self, client_ip: str | None = None, user_agent: str | None = None) -> Connection:
        conn = Connection(queue_size=self.settings.live_query_queue_size)
        conn.client_ip, conn.user_agent = client_ip, user_agent
        self.connections.add(conn)
        return conn

    def close(self, conn: Connection) -> None:
        self.connections.discard(conn)
        conn.subscriptions.clear()

    async def handle(self, conn: Connection, text: str | bytes) -> None:
        """One frame from the client; errors go back to it as ``error`` messages."""
        try:
            request = protocol.parse(text)
            if isinstance(request, protocol.Connect):
                self._connect(conn, request)
            elif isinstance(request, protocol.Subscribe):
                await self._subscribe(conn, request)
            else:
                self._unsubscribe(conn, request)
        except ProtocolError as exc:
            conn.push(
                protocol.error(
                    exc.code, exc.message, reconnect=exc.reconnect, request_id=exc.request_id
                )
            )

    def _connect(self, conn: Connection, request: protocol.Connect) -> None:
        settings = self.settings
        master = False
        if not _same(request.application_id, settings.app_id):
            raise ProtocolError(protocol.INVALID_KEYS, "Key in request is not valid")
        if request.master_key is not None:
            if not _same(request.master_key, settings.master_key):
                raise ProtocolError(protocol.INVALID_KEYS, "Key in request is not valid")
            master = True
        else:
            keys = (settings.rest_api_key, settings.javascript_key, settings.client_key)
            configured = [k for k in keys if k]
            if configured and not any(
                _same(given, key) for given in request.client_keys for key in configured
            ):
                raise ProtocolError(protocol.INVALID_KEYS, "Key in request is not valid")
        conn.connected = True
        conn.master = master
        conn.token = request.session_token
        conn.installation_id = request.installation_id
        conn.send("connected")

    async def _subscribe(self, conn: Connection, request: protocol.Subscribe) -> None:
        rid = request.request_id
        if not conn.connected:
            raise ProtocolError(
                protocol.NO_SUBSCRIPTION,
                "Can not find this client, make sure you connect to server before subscribing",
            )
        if rid not in conn.subscriptions and len(conn.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise ProtocolError(
                protocol.BAD_REQUEST,
                f"At most {MAX_SUBSCRIPTIONS} subscriptions per connection.",
                reconnect=False,
                request_id=rid,
            )
        token = request.session_token or conn.token
        auth = Auth.master() if conn.master else Auth.anonymous()
        if token is not None and not conn.master:
            try:
                auth = await self._resolve(token, touch=True)
            except InvalidSessionToken:
                # Parse Server subscribes an unknown token as anonymous (observed), not an error.
                token = None
        sub = Subscription(
            rid, request.class_name, request.where, request.keys, request.watch, token
        )
        try:
            count_terms(request.where, self.settings.max_query_terms)  # before anything else
            schema = await self._schema(request.class_name, auth)
            if schema is not None:
                policy = AccessPolicy(auth, self.store.dialect)
                policy.check(schema, "find")  # 119 now, rather than silence forever
                self._predicate(sub, schema, policy)
        except ParseError as exc:
            conn.subscriptions.pop(rid, None)
            known = self.store.schema_or_none(request.class_name)
            if known is not None and known.phi and exc.code in audit.DENIED_CODES:
                await audit.record_denial(
                    self.store,
                    auth,
                    {"requestId": f"livequery:{conn.client_id}:{rid}", "ip": conn.client_ip},
                    entity_type=known.name,
                    entity_id="*",
                    code=exc.code,
                    face="livequery",
                )
            raise ProtocolError(exc.code, exc.message, reconnect=False, request_id=rid) from exc
        conn.subscriptions[rid] = sub
        conn.send("subscribed", requestId=rid)

    def _unsubscribe(self, conn: Connection, request: protocol.Unsubscribe) -> None:
        if not conn.connected:
            raise ProtocolError(
                protocol.NO_SUBSCRIPTION,
                "Can not find this client, make sure you connect to server before unsubscribing",
            )
        if conn.subscriptions.pop(request.request_id, None) is None:
            raise ProtocolError(
                protocol.NO_SUBSCRIPTION,
                f"Cannot find subscription with client {conn.client_id} subscription id "
                f"{request.request_id}. Make sure you subscribe to live query server before "
                "unsubscribing.",
                request_id=request.request_id,
            )
        conn.send("unsubscribed", requestId=request.request_id)

    async def _schema(self, class_name: str, auth: Auth) -> ClassSchema | None:
        """The class, read through the registry like a REST find would (a class that does not
        exist yet is closed to clients unless client class creation is on)."""
        schema = self.store.schema_or_none(class_name)
        if schema is None:
            async with self.store.unit_of_work(Auth.system()) as repo:
                schema = await repo.lookup_schema(class_name)
        if schema is None and not (auth.is_master or self.settings.allow_client_class_creation):
            raise OperationForbidden(
                f"This user is not allowed to access non-existent class: {class_name}"
            )
        return schema

    def _predicate(self, sub: Subscription, schema: ClassSchema, policy: AccessPolicy) -> Predicate:
        """The subscription's compiled ``where`` for this schema and these protected fields."""
        protected = policy.protected_fields(schema)
        compiled = sub.compiled
        if compiled is None or compiled[0] is not schema or compiled[1] != protected:
            check_field_names(sub.keys, protected, "keys")
            check_field_names(sub.watch, protected, "watch")
            predicate = compile_where(schema, sub.where, self.settings, protected)
            sub.compiled = compiled = (schema, protected, predicate)
        return compiled[2]

    # -- fan-out --------------------------------------------------------------------------------
    async def dispatch(self, event: ChangeEvent) -> None:
        """Deliver one committed change to every subscription of its class on this worker."""
        self._invalidate(event)
        targets = [
            (conn, sub)
            for conn in list(self.connections)
            for sub in list(conn.subscriptions.values())
            if sub.class_name == event.class_name and conn.connected
        ]
        if not targets:
            return
        schema = await self._fresh_schema(event)
        if schema is None:
            return
        await self.store.sync_identity_epoch()  # SQLite: once per event, not per subscriber
        deliveries: list[Delivery] = []
        for conn, sub in targets:
            if conn.subscriptions.get(sub.request_id) is not sub:
                continue  # unsubscribed or ended meanwhile
            try:
                delivery = await self._deliver(conn, sub, schema, event)
            except InvalidSessionToken:
                continue  # already ended with 209 by _auth_for
            except ParseError as exc:
                self._end(conn, sub, exc)  # e.g. a field it queries became protected
                continue
            if delivery is not None:
                deliveries.append(delivery)
        if not deliveries:
            return
        if disclosures.audited(self.store, schema) and not await disclosures.record(
            self.store, schema, event, deliveries
        ):
            for conn in {d.conn for d in deliveries}:
                conn.push(
                    protocol.error(1, "An event could not be delivered; reconnect.", reconnect=True)
                )
            return
        for delivery in deliveries:
            if delivery.conn.subscriptions.get(delivery.sub.request_id) is delivery.sub:
                delivery.conn.send(delivery.op, **delivery.extra)

    def _invalidate(self, event: ChangeEvent) -> None:
        """A session ended (logout, revocation): end its subscriptions now, with 209. Role,
        care-team and grant changes need nothing here: they reach the identity cache at commit
        and every event is checked against it."""
        if event.class_name == "_Session" and event.op == "delete":
            for token, session_id in list(self._sessions.items()):
                if session_id == event.object_id:
                    task = asyncio.get_running_loop().create_task(self._recheck(token))
                    self._rechecks.add(task)
                    task.add_done_callback(self._rechecks.discard)

    async def _recheck(self, token: str) -> None:
        with contextlib.suppress(InvalidSessionToken):
            await self._auth_for(token)

    async def _fresh_schema(self, event: ChangeEvent) -> ClassSchema | None:
        """The class's schema; re-read when the row shows fields this worker does not know
        yet (another worker added them), so events never silently drop a new field."""
        schema = self.store.schema_or_none(event.class_name)
        row = event.new or event.old or {}
        known = schema.fields if schema is not None else {}
        unknown = [k for k in row if k[:1] != "_" and k not in _SYSTEM_COLUMNS and k not in known]
        if schema is None or unknown:
            await self.store.reload_schemas()
            schema = self.store.schema_or_none(event.class_name)
        return schema

    async def _deliver(
        self, conn: Connection, sub: Subscription, schema: ClassSchema, event: ChangeEvent
    ) -> Delivery | None:
        """The message this subscription gets for ``event`` (None: nothing), decided with
        the subscriber's current rights; queued by ``dispatch`` once its disclosure is
        recorded."""
        # Cheap test first with the compiled query; the session is only consulted on a match.
        predicate = sub.compiled[2] if sub.compiled and sub.compiled[0] is schema else None
        if predicate is not None:
            old_hit = event.old is not None and predicate(event.old)
            new_hit = event.new is not None and predicate(event.new)
            if not (old_hit or new_hit):
                return None
        auth = await self._subscriber_auth(conn, sub)
        policy = AccessPolicy(auth, self.store.dialect)
        predicate = self._predicate(sub, schema, policy)
        old = event.old if event.old is not None and predicate(event.old) else None
        new = event.new if event.new is not None and predicate(event.new) else None
        # Each version counts only if the subscriber may read that version.
        old_seen = old is not None and row_readable(policy, schema, old)
        new_seen = new is not None and row_readable(policy, schema, new)
        op = _event_op(event.op, old_seen, new_seen)
        if op is None:
            return None
        if op in ("create", "update") and sub.watch and _unchanged(event, sub.watch):
            # `watch`: only changes of these fields are worth an event; a create counts when
            # it gives one of them a value (Parse compares with the absent original).
            return None
        discloses = True
        encoder = self._encoder(sub, auth, schema)
        extra: dict[str, Any] = {"requestId": sub.request_id}
        if op in ("create", "update", "enter"):
            assert event.new is not None
            extra["object"] = self._encode(encoder, schema, event.new, sub.keys)
        elif op == "delete":
            assert event.old is not None
            extra["object"] = self._encode(encoder, schema, event.old, sub.keys)
        else:  # leave
            assert event.new is not None
            if row_readable(policy, schema, event.new):
                extra["object"] = self._encode(encoder, schema, event.new, sub.keys)
            else:
                # The new version is not the subscriber's to read: say only which object left.
                extra["object"] = _identity(schema, event.new)
                discloses = False
        if (
            op in ("update", "enter", "leave")
            and event.old is not None
            and (old_seen or row_readable(policy, schema, event.old))
        ):
            # Never the previous version of an object the subscriber could not read then
            # (a draft before it was final, a record before it was shared).
            extra["original"] = self._encode(encoder, schema, event.old, sub.keys)
            discloses = True
        return Delivery(conn, sub, auth, op, extra, discloses)

    def _encoder(self, sub: Subscription, auth: Auth, schema: ClassSchema) -> ParseEncoder:
        """The subscriber's encoder: REST's own wire encoding, protected fields included."""
        if sub.encoder is None or sub.encoder_for != auth:
            policy = AccessPolicy(auth, self.store.dialect)
            sub.encoder = ParseEncoder(auth, self.store.files, policy.protected_fields)
            sub.encoder_for = auth
        return sub.encoder

    @staticmethod
    def _encode(
        encoder: ParseEncoder,
        schema: ClassSchema,
        row: dict[str, Any],
        keys: tuple[str, ...] | None,
    ) -> dict[str, Any]:
        body = {"className": schema.name, **encoder.encode(schema, row)}
        if keys is not None:
            wanted = set(keys) | set(ALWAYS_SENT)
            body = {k: v for k, v in body.items() if k in wanted}
        return body


def _identity(schema: ClassSchema, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "className": schema.name,
        "objectId": row["objectId"],
        "createdAt": iso(row["createdAt"]),
        "updatedAt": iso(row["updatedAt"]),
    }


def _unchanged(event: ChangeEvent, fields: tuple[str, ...]) -> bool:
    old, new = event.old or {}, event.new or {}
    return all(old.get(f) == new.get(f) for f in fields)


def _event_op(kind: str, old_seen: bool, new_seen: bool) -> str | None:
    """Parse's event table: create / enter / update / leave / delete, or nothing."""
    if kind == "create":
        return "create" if new_seen else None
    if kind == "delete":
        return "delete" if old_seen else None
    if old_seen and new_seen:
        return "update"
    if new_seen:
        return "enter"
    if old_seen:
        return "leave"
    return None


def _same(given: str | None, expected: str | None) -> bool:
    return given is not None and expected is not None and hmac.compare_digest(given, expected)
