"""Depth and complexity limits, as validation rules: an expensive query is refused before any
resolver runs (and before any SQL), with a message saying which limit and by how much.

Depth counts nested selections (``findMessage { results { patient { user { username } } } }``
is 5). Complexity counts selected fields with fragments expanded, so aliasing one field many
times costs as much as writing it out. Introspection (``__schema``, ``__type``) is exempt: the
playground's own schema query is deep by nature and reads no data.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    ValidationContext,
)

from mindharbor.errors import InvalidQuery


def measure(
    selections: Any, fragments: dict[str, FragmentDefinitionNode], seen: frozenset[str]
) -> tuple[int, int]:
    """(depth, field count) of a selection set; fragment cycles are cut (and reported by the
    standard ``NoFragmentCycles`` rule)."""
    depth = count = 0
    for node in selections:
        if isinstance(node, FieldNode):
            if node.name.value.startswith("__"):
                continue
            sub_depth = sub_count = 0
            if node.selection_set is not None:
                sub_depth, sub_count = measure(node.selection_set.selections, fragments, seen)
            depth = max(depth, 1 + sub_depth)
            count += 1 + sub_count
        elif isinstance(node, InlineFragmentNode):
            sub_depth, sub_count = measure(node.selection_set.selections, fragments, seen)
            depth, count = max(depth, sub_depth), count + sub_count
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen:
                continue
            sub_depth, sub_count = measure(
                fragment.selection_set.selections, fragments, seen | {name}
            )
            depth, count = max(depth, sub_depth), count + sub_count
    return depth, count


def limit_rule(max_depth: int, max_complexity: int) -> type[ASTValidationRule]:
    """A validation rule class enforcing the configured limits."""

    class QueryLimits(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments = {
                d.name.value: d
                for d in context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            depth, count = measure(node.selection_set.selections, self.fragments, frozenset())
            code = {"code": InvalidQuery.code}
            if depth > max_depth:
                self.report_error(
                    GraphQLError(
                        f"Query depth {depth} exceeds the limit of {max_depth}.",
                        node,
                        extensions={**code, "limit": "depth", "max": max_depth},
                    )
                )
            if count > max_complexity:
                self.report_error(
                    GraphQLError(
                        f"Query complexity {count} (fields selected) exceeds the limit of "
                        f"{max_complexity}.",
                        node,
                        extensions={**code, "limit": "complexity", "max": max_complexity},
                    )
                )

    return QueryLimits
