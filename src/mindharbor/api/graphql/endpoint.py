"""``/graphql`` over HTTP: authenticate as REST does, bound the document's cost, run one
operation in one unit of work.

The cost check (``limits``) runs before anything else touches the document, so no document can
stall the worker. Credentials are read by REST's own ``build_request`` (same headers, same
checks). The whole operation runs inside one transaction: a mutation request commits only if
every mutation in it succeeded (a failure rolls all of them back and answers ``data: null``),
and a query commits its audit entries together with the data it returns. Errors use the GraphQL
format with the Parse code in ``extensions.code``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import sqlalchemy as sa
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    NoSchemaIntrospectionCustomRule,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
    specified_rules,
    validate,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mindharbor.api.graphql.build import SchemaCache
from mindharbor.api.graphql.context import Context, Skipped
from mindharbor.api.graphql.functions import load_custom_schema
from mindharbor.api.graphql.limits import Refused, check_cost, parse_bounded
from mindharbor.api.graphql.page import graphiql_page, static_mount, wants_html
from mindharbor.api.rest.request import ApiRequest, build_request
from mindharbor.errors import (
    InternalError,
    InvalidJSON,
    InvalidQuery,
    OperationForbidden,
    ParseError,
)
from mindharbor.storage.dberrors import translate_db_error

if TYPE_CHECKING:
    from mindharbor.app import MindHarbor

log = logging.getLogger("mindharbor.graphql")
PATH = "/graphql"
# What a session that must still enrol a second factor may ask (REST's RESTRICTED_ALLOWED).
RESTRICTED_ALLOWED = frozenset({"viewer", "logOut", "enrollMfa", "confirmMfa", "__typename"})
OFF_LOOP_BYTES = 8_192  # documents larger than this are parsed and validated off the loop
T = TypeVar("T")


class _Rollback(Exception):
    """Raised inside the unit of work to roll it back while still answering normally."""


@dataclass
class Outcome:
    """The HTTP answer being built for one request."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)


def error_dict(
    exc: BaseException, *, message: str | None = None, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One entry of ``errors``: GraphQL's shape, the Parse code in ``extensions.code``."""
    out = dict(base or {})
    extensions = dict(out.get("extensions") or {})
    if isinstance(exc, ParseError):
        out["message"] = message or exc.message
        if exc.code:  # Unauthorized has no Parse code, only its 403
            extensions["code"] = exc.code
    else:
        out["message"] = message or "Internal server error."
        extensions["code"] = InternalError.code
    out["extensions"] = extensions
    return out


def as_parse_error(exc: BaseException | None) -> ParseError | None:
    """The Parse error a resolver's exception stands for; None for an unexpected failure."""
    if isinstance(exc, ParseError):
        return exc
    if isinstance(exc, sa.exc.DBAPIError):
        return translate_db_error(exc)
    return None


def request_error(exc: ParseError) -> Outcome:
    return Outcome(exc.http_status, {"errors": [error_dict(exc)]})


class GraphQLEndpoint:
    """Holds the schema cache; one instance per server."""

    def __init__(self, server: MindHarbor) -> None:
        self.server = server
        self.settings = server.settings
        self.cache = SchemaCache(load_custom_schema(self.settings.graphql_schema))

    async def endpoint(self, request: Request) -> Response:
        browsing = request.method == "GET" and "query" not in request.query_params
        if browsing and wants_html(request.headers.get("accept", "")):
            return graphiql_page(PATH, self.settings.app_id)
        request_id = uuid.uuid4().hex
        try:
            outcome = await self.handle(request, request_id)
        except ParseError as exc:
            outcome = request_error(exc)
        except Exception:
            log.exception("unhandled error in GraphQL request %s", request_id)
            outcome = Outcome(500, {"errors": [error_dict(RuntimeError())]})
        return Response(
            orjson.dumps(outcome.body),
            status_code=outcome.status,
            media_type="application/json; charset=utf-8",
            headers={"X-Request-Id": request_id},
        )

    async def handle(self, request: Request, request_id: str) -> Outcome:
        api = await build_request(
            request, PATH, self.settings, self.server.resolve_session, request_id
        )
        query, variables, operation_name = _payload(api)
        # Who may see the schema also decides whether errors may suggest its names.
        may_introspect = api.auth.is_master or self.settings.graphql_public_introspection
        hide = not may_introspect
        try:
            document = await off_loop(len(query), self._checked, query, may_introspect)
        except Refused as exc:
            return Outcome(exc.status, {"errors": [exc.error]})
        except GraphQLError as exc:
            return Outcome(400, {"errors": [_syntax_error(exc)]})
        operation = get_operation_ast(document, operation_name)
        if api.auth.restricted and not root_fields(document, operation) <= RESTRICTED_ALLOWED:
            # As REST: a session that must still enrol a second factor may only do that.
            raise OperationForbidden(
                "Multi-factor enrolment is required: call enrollMfa and confirmMfa first."
            )
        is_mutation = operation is not None and operation.operation == OperationType.MUTATION
        if is_mutation and request.method == "GET":
            return Outcome(
                405, {"errors": [error_dict(InvalidQuery("Mutations must be sent with POST."))]}
            )
        rules = [*specified_rules] + ([] if may_introspect else [NoSchemaIntrospectionCustomRule])
        store = self.server.store
        outcome = Outcome()
        ctx: Context | None = None
        try:
            # A query reads without a transaction (its disclosures group-committed before the
            # answer leaves); a mutation is one transaction.
            unit = store.unit_of_work(api.auth) if is_mutation else store.read_only(api.auth)
            async with unit as repo:
                repo.meta = api.audit_meta()
                schema = self.cache.get(store.all_schemas(), store.hooks.functions)
                problems = await off_loop(
                    len(query), validate, schema, document, rules, hide_suggestions=hide
                )
                if problems:
                    outcome = Outcome(400, {"errors": [_syntax_error(e) for e in problems]})
                    raise _Rollback()
                if is_mutation and api.request_id:
                    await repo.claim_request_id(api.request_id)
                ctx = Context(
                    repo,
                    self.settings,
                    api.client_ip,
                    session_token=api.session_token,
                    installation_id=api.auth.installation_id,
                )
                result = await self._execute(schema, document, ctx, variables, operation_name, hide)
                outcome, commit = self._result(result, is_mutation, request_id)
                if not commit:
                    raise _Rollback()
        except _Rollback:
            pass
        except ParseError as exc:
            # Committed, then answered as an error: a failed login keeps its counter and audit.
            if ctx is None or ctx.deferred_path is None or exc is not ctx.repo.deferred_error:
                raise
            errors = outcome.body.setdefault("errors", [])
            errors.insert(0, error_dict(exc, base={"path": ctx.deferred_path}))
        return outcome

    def _checked(self, query: str, may_introspect: bool) -> DocumentNode:
        document = parse_bounded(query, self.settings)
        check_cost(document, self.settings, may_introspect=may_introspect)
        return document

    async def _execute(
        self,
        schema: GraphQLSchema,
        document: Any,
        ctx: Context,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        hide_suggestions: bool,
    ) -> ExecutionResult:
        result = execute(
            schema,
            document,
            context_value=ctx,
            variable_values=variables,
            operation_name=operation_name,
            hide_suggestions=hide_suggestions,
        )
        if not isinstance(result, ExecutionResult):
            result = await result
        return result

    def _result(
        self, result: ExecutionResult, is_mutation: bool, request_id: str
    ) -> tuple[Outcome, bool]:
        """The answer and whether to commit: a failed mutation, or an unexpected failure in a
        query, rolls everything back and answers ``data: null`` (nothing half-done is shown)."""
        errors: list[dict[str, Any]] = []
        fatal = False
        for error in result.errors or []:
            original = error.original_error
            if isinstance(original, Skipped):
                continue
            formatted = dict(error.formatted)
            if original is None:
                errors.append(_syntax_error(error))
                continue
            mapped = as_parse_error(original)
            if mapped is None or not isinstance(original, ParseError):
                fatal = True
            if mapped is None:
                log.error(
                    "unhandled error in GraphQL request %s",
                    request_id,
                    exc_info=(type(original), original, original.__traceback__),
                )
                errors.append(error_dict(RuntimeError(), base=formatted))
            else:
                errors.append(error_dict(mapped, base=formatted))
        body: dict[str, Any] = {}
        commit = not errors or not (is_mutation or fatal)
        if errors:
            body["errors"] = errors
        body["data"] = result.data if commit else None
        return Outcome(200, body), commit


def root_fields(document: DocumentNode, operation: OperationDefinitionNode | None) -> set[str]:
    """The names of the fields an operation selects at its root (through fragments)."""
    if operation is None:
        return {"?"}
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: set[str] = set()
    seen: set[str] = set()
    pending = [operation.selection_set]
    while pending:
        for node in pending.pop().selections:
            if isinstance(node, FieldNode):
                names.add(node.name.value)
            elif isinstance(node, InlineFragmentNode):
                pending.append(node.selection_set)
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
                seen.add(node.name.value)
                fragment = fragments.get(node.name.value)
                if fragment is not None:
                    pending.append(fragment.selection_set)
    return names


async def off_loop(size: int, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn`` on a worker thread for a large document, so that even its bounded parse and
    validation (tens of milliseconds at the token limit) never hold up other requests on the
    event loop; inline for the usual small one."""
    if size < OFF_LOOP_BYTES:
        return fn(*args, **kwargs)
    return await asyncio.to_thread(fn, *args, **kwargs)


def _payload(api: ApiRequest) -> tuple[str, dict[str, Any] | None, str | None]:
    source = api.body if api.method == "POST" else api.params
    query = source.get("query")
    if not isinstance(query, str) or not query.strip():
        raise InvalidJSON("Send a GraphQL document as `query` (a string).")
    variables = source.get("variables")
    if isinstance(variables, str):  # GET: a JSON string in the URL
        try:
            variables = orjson.loads(variables) if variables else None
        except orjson.JSONDecodeError as exc:
            raise InvalidJSON("variables must be a JSON object.") from exc
    if variables is not None and not isinstance(variables, dict):
        raise InvalidJSON("variables must be a JSON object.")
    operation_name = source.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise InvalidJSON("operationName must be a string.")
    return query, variables, operation_name or None


def _syntax_error(error: GraphQLError) -> dict[str, Any]:
    """A document GraphQL itself refuses (syntax, validation, limits, variables): 102."""
    out: dict[str, Any] = dict(error.formatted)
    extensions: dict[str, Any] = {"code": InvalidQuery.code}
    extensions.update(out.get("extensions") or {})
    out["extensions"] = extensions
    return out


def routes(server: MindHarbor) -> list[BaseRoute]:
    """The GraphQL endpoint (GraphiQL for browsers) and the packaged playground assets."""
    endpoint = GraphQLEndpoint(server)
    return [Route(PATH, endpoint.endpoint, methods=["GET", "POST"]), static_mount()]
