"""What one GraphQL request may cost, checked before it runs, as GraphQL servers bound queries:
its nesting depth, its top-level fields (each a read of the store; aliases count, so one field
asked 1,000 times under 1,000 names is 1,000 reads) and all the fields it selects, fragments
followed each time they are spread. While it runs, the `Loader` counts the rows it reads
(`MAX_ROWS`), and the answer has a size limit (`MAX_ANSWER_BYTES`).

The official SDKs' test helpers ask a few top-level fields of a few dozen fields each.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

MAX_DEPTH = 12
#: top-level fields of one operation (aliases included): each reads the store
MAX_ROOT_FIELDS = 20
#: fields selected in all, fragments counted at each spread
MAX_FIELDS = 1000
#: store rows (runs, steps, events) one request may read
MAX_ROWS = 20_000
#: the largest JSON answer: room for one run's whole state (a batch's events, its steps'
#: outputs: up to 32 MiB on Inngest), which the SDKs' test helpers read in one query
MAX_ANSWER_BYTES = 64 * 1024 * 1024


#: selections walked while measuring (fields and fragment spreads): bounds the measuring itself
_MAX_VISITS = 4 * MAX_FIELDS
#: fragments spread inside fragments, at most
_MAX_FRAGMENT_NESTING = 32


class _TooCostlyError(Exception):
    pass


@dataclass(slots=True)
class _Measure:
    fragments: dict[str, FragmentDefinitionNode]
    visits: int = 0
    fields: int = 0
    roots: int = 0

    def walk(self, selection_set: SelectionSetNode | None, seen: frozenset[str], depth: int) -> None:
        for selection in selection_set.selections if selection_set is not None else ():
            self.visits += 1
            if self.visits > _MAX_VISITS:
                raise _TooCostlyError(f"the query makes over {_MAX_VISITS} selections (fragments counted where spread)")
            if isinstance(selection, FieldNode):
                self.fields += 1
                self.roots += depth == 0
                if depth + 1 > MAX_DEPTH:
                    raise _TooCostlyError(f"the query is nested deeper than {MAX_DEPTH} levels")
                self.walk(selection.selection_set, seen, depth + 1)
            elif isinstance(selection, InlineFragmentNode):
                self.walk(selection.selection_set, seen, depth)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    if len(seen) >= _MAX_FRAGMENT_NESTING:
                        raise _TooCostlyError(f"fragments are spread in fragments over {_MAX_FRAGMENT_NESTING} deep")
                    self.walk(fragment.selection_set, seen | {selection.name.value}, depth)


def cost_errors(document: DocumentNode) -> list[GraphQLError]:
    """Why one of the document's operations costs too much to run, or []."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        measure = _Measure(fragments)
        try:
            measure.walk(definition.selection_set, frozenset(), 0)
        except _TooCostlyError as exc:
            return [GraphQLError(str(exc))]
        if measure.roots > MAX_ROOT_FIELDS:
            return [
                GraphQLError(
                    f"the query asks for {measure.roots} top-level fields (aliases count), "
                    f"the limit is {MAX_ROOT_FIELDS}"
                )
            ]
        if measure.fields > MAX_FIELDS:
            return [GraphQLError(f"the query selects {measure.fields} fields, the limit is {MAX_FIELDS}")]
    return []
