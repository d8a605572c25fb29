"""What a GraphQL document may cost, decided before any validation or resolver runs.

Checked in this order, each in time linear in the document, on the event loop:

1. size: the query text's UTF-8 length (``graphql_max_document_bytes``);
2. tokens: the parser stops at ``graphql_max_tokens`` (20,000 aliased ``__typename`` are
   refused here, unparsed), and a nesting deep enough to exhaust the parser's stack is refused;
3. cost of every operation in the document, with each fragment's contents counted once per
   spread (``...F`` twice is two copies, as execution would produce them): complexity is the
   number of fields (aliases, ``__typename`` and introspection fields included) plus fragment
   spreads; depth is the nesting of fields outside introspection (GraphiQL's own schema
   query nests deep by nature; ``MaxIntrospectionDepthRule`` bounds its lists instead);
4. introspection (``__schema``, ``__type``): only for the master key or when
   ``graphql_public_introspection`` is on.

Each fragment is summarised once and combined by memoisation, so a fan-out of 20 fragments that
each spread the next twice (2^20 copies) costs 20 steps to refuse. Only a document within these
bounds reaches graphql-core's validation, whose cost is then bounded too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    parse,
)

from mindharbor.errors import InvalidQuery, OperationForbidden
from mindharbor.settings import Settings

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
# GraphQL's lexical tokens (a comment counts as one, which only makes the count stricter).
_TOKEN_RE = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"|#[^\n\r]*|\.\.\.'
    r"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[_A-Za-z][_0-9A-Za-z]*|[!$&()\[\]{}:=@|]"
)


class Refused(Exception):
    """A document refused before validation: the HTTP status and one GraphQL error."""

    def __init__(self, status: int, message: str, extensions: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.error = {"message": message, "extensions": extensions}


def _too_costly(message: str, limit: str, maximum: int) -> Refused:
    return Refused(400, message, {"code": InvalidQuery.code, "limit": limit, "max": maximum})


@dataclass
class _Summary:
    """One selection set, its fragment spreads not yet expanded."""

    fields: int = 0
    depth: int = 0
    introspection: bool = False
    spreads: list[tuple[str, int, bool]] = field(default_factory=list)  # name, depth, in intro


@dataclass(frozen=True)
class Cost:
    fields: int
    depth: int
    introspection: bool


def _summarise(selection_set: Any) -> _Summary:
    """Walk one selection set (iteratively: nesting depth cannot exhaust the stack)."""
    out = _Summary()
    stack: list[tuple[Any, int, bool]] = [(selection_set, 0, False)]
    while stack:
        current, depth, in_intro = stack.pop()
        for node in current.selections:
            if isinstance(node, FieldNode):
                out.fields += 1
                name = node.name.value
                inside = in_intro or name in INTROSPECTION_FIELDS
                out.introspection = out.introspection or name in INTROSPECTION_FIELDS
                level = depth if inside else depth + 1
                out.depth = max(out.depth, level)
                if node.selection_set is not None:
                    stack.append((node.selection_set, level, inside))
            elif isinstance(node, InlineFragmentNode):
                stack.append((node.selection_set, depth, in_intro))
            elif isinstance(node, FragmentSpreadNode):
                out.fields += 1
                out.spreads.append((node.name.value, depth, in_intro))
    return out


class CostAnalysis:
    """Costs of a document's operations, each fragment expanded by memoisation."""

    def __init__(self, document: DocumentNode, cap: int) -> None:
        self.cap = cap  # counts are clamped just above the limit: they only need comparing
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        self.operations: list[OperationDefinitionNode] = []
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                self.fragments.setdefault(definition.name.value, definition)
            elif isinstance(definition, OperationDefinitionNode):
                self.operations.append(definition)
        self.summaries: dict[str, _Summary] = {}
        self.costs: dict[str, Cost] = {}

    def _summary(self, name: str) -> _Summary | None:
        if name not in self.summaries:
            fragment = self.fragments.get(name)
            if fragment is None:
                return None
            self.summaries[name] = _summarise(fragment.selection_set)
        return self.summaries[name]

    def _combine(self, summary: _Summary) -> Cost:
        fields, depth, intro = summary.fields, summary.depth, summary.introspection
        for name, at, in_intro in summary.spreads:
            inner = self.costs.get(name)
            if inner is None:
                continue  # unknown or cyclic: graphql-core's validation reports it
            fields = min(fields + inner.fields, self.cap)
            depth = max(depth, at if in_intro else at + inner.depth)
            intro = intro or inner.introspection
        return Cost(fields, depth, intro)

    def _fragment_costs(self, roots: list[str]) -> None:
        """Post-order over the fragment graph, without recursion; a cycle is cut."""
        visiting: set[str] = set()
        stack: list[tuple[str, bool]] = [(name, False) for name in roots]
        while stack:
            name, expanded = stack.pop()
            if name in self.costs:
                continue
            summary = self._summary(name)
            if summary is None:
                continue
            if expanded:
                visiting.discard(name)
                self.costs[name] = self._combine(summary)
                continue
            if name in visiting:
                continue
            visiting.add(name)
            stack.append((name, True))
            for spread, _at, _intro in summary.spreads:
                if spread not in self.costs and spread not in visiting:
                    stack.append((spread, False))

    def operation_costs(self) -> list[Cost]:
        out = []
        for operation in self.operations:
            summary = _summarise(operation.selection_set)
            self._fragment_costs([s[0] for s in summary.spreads])
            out.append(self._combine(summary))
        return out


def parse_bounded(text: str, settings: Settings) -> DocumentNode:
    """The document, or ``Refused`` for one too large, too long or too deeply nested."""
    size = len(text.encode("utf-8"))
    limit = settings.graphql_max_document_bytes
    if size > limit:
        raise _too_costly(
            f"Query document of {size} bytes exceeds the limit of {limit}.", "size", limit
        )
    # The parser is pure Python (about 5 µs a token); a regular expression counts first, so a
    # document far over the limit costs a scan in C, not a parse up to the limit.
    if len(_TOKEN_RE.findall(text)) > settings.graphql_max_tokens:
        raise _too_many_tokens(settings)
    try:
        return parse(text, max_tokens=settings.graphql_max_tokens)
    except RecursionError:
        raise _too_costly(
            "Query document is nested too deeply.", "depth", settings.graphql_max_depth
        ) from None
    except GraphQLError as exc:
        if "nested too deeply" in exc.message:  # graphql-core's own guard of its stack
            raise _too_costly(
                "Query document is nested too deeply.", "depth", settings.graphql_max_depth
            ) from None
        if "tokens" in exc.message and "Parsing aborted" in exc.message:
            raise _too_many_tokens(settings) from None
        raise


def _too_many_tokens(settings: Settings) -> Refused:
    limit = settings.graphql_max_tokens
    return _too_costly(f"Query document exceeds the limit of {limit} tokens.", "tokens", limit)


def check_cost(document: DocumentNode, settings: Settings, *, may_introspect: bool) -> None:
    """Refuse an operation over the depth or complexity limit, or unauthorised introspection."""
    max_depth, max_complexity = settings.graphql_max_depth, settings.graphql_max_complexity
    for cost in CostAnalysis(document, max_complexity + 1).operation_costs():
        if cost.introspection and not may_introspect:
            raise Refused(
                403,
                "Introspection is not allowed: send the master key (X-Parse-Master-Key), or "
                "set MINDHARBOR_GRAPHQL_PUBLIC_INTROSPECTION=true.",
                {"code": OperationForbidden.code, "limit": "introspection"},
            )
        if cost.depth > max_depth:
            raise _too_costly(
                f"Query depth {cost.depth} exceeds the limit of {max_depth}.", "depth", max_depth
            )
        if cost.fields > max_complexity:
            raise _too_costly(
                "Query complexity (fields and fragment spreads selected, fragments expanded) "
                f"exceeds the limit of {max_complexity}.",
                "complexity",
                max_complexity,
            )
