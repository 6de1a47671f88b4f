"""Checks that turn parsed or built statements into a validated :class:`Cascade`.

The text parser and the Python builder both fill a :class:`Draft` and call
:func:`build_cascade`, so a cascade is checked the same way whichever way it
was written.  Every error is a :class:`CascadeError` with the position of the
construct at fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from einsum_cascades.errors import CascadeError
from einsum_cascades.actions import ReduceAction
from einsum_cascades.ir import (
    Access,
    Call,
    Cascade,
    Einsum,
    Expr,
    Iteration,
    OperatorDef,
    Partition,
    RankSize,
    Reference,
    SourcePosition,
    collect_calls,
)
from einsum_cascades.operators import BUILTINS, reduction_identity

POPULATE_OPERATORS = ("add", "max", "min")


@dataclass
class Draft:
    """The statements of a cascade before checking, with the positions used in messages."""

    path: str
    name: str | None = None
    description: str = ""
    ranks: list[str] = field(default_factory=list)
    batch: list[str] = field(default_factory=list)
    partitions: list[Partition] = field(default_factory=list)
    inputs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    input_positions: dict[str, SourcePosition | None] = field(default_factory=dict)
    outputs: list[tuple[str, tuple[str, ...], SourcePosition | None]] = field(default_factory=list)
    iteration: Iteration | None = None
    iteration_position: SourcePosition | None = None
    operators: list[OperatorDef] = field(default_factory=list)
    reference: Reference | None = None
    initialization: list[Einsum] = field(default_factory=list)
    einsums: list[Einsum] = field(default_factory=list)
    start: SourcePosition | None = None


def make_einsum(
    output: Access,
    expr: Expr,
    reduces: list[ReduceAction],
    populate: str | None,
    initialization: bool,
    position: SourcePosition | None,
) -> Einsum:
    """Build one Einsum and work out which rank variables it reduces, and with what.

    Without a reduce action every rank variable on the right that is absent
    on the left is sum-reduced (the FuseMax paper's shorthand).  With reduce actions,
    each such variable must be named by one of them.

    Raises
    ------
    CascadeError
        If an output index is not one rank variable, a variable repeats on the
        left, a filter uses a variable outside the iteration space, or the
        reduce actions disagree with the ranks that are reduced.
    """
    output_variables: list[str] = []
    for index in output.indices:
        found = index.expr.variables
        if len(found) != 1:
            raise CascadeError(
                "each output index must use exactly one rank variable (such as m1 or m1+1); write one fixed "
                "coordinate as a filter, as RM[m1 : m1 = 0, p]", position
            )
        if found[0] in output_variables:
            raise CascadeError(
                f"rank variable {found[0]} indexes two positions of {output.tensor}; each output index needs "
                f"its own rank variable",
                output.position,
            )
        output_variables.append(found[0])

    on_right: list[str] = []
    first_access: dict[str, Access] = {}
    accesses: list[Access] = []
    _accesses(expr, accesses)
    for access in accesses:
        for variable in access.variables:
            if variable not in on_right:
                on_right.append(variable)
                first_access[variable] = access
    space = set(output_variables) | set(on_right)
    for access in [output] + accesses:
        for condition in access.filters:
            for variable in condition.variables:
                if variable not in space:
                    raise CascadeError(
                        f"rank variable {variable} appears only in a filter; a filter may test the rank variables "
                        f"that index the output or an operand ({', '.join(sorted(space)) or 'none'})",
                        access.position,
                    )

    implicit = tuple(variable for variable in on_right if variable not in output_variables)
    operator = "add"
    if reduces:
        operator = reduces[0].operator
        named: list[str] = []
        for action in reduces:
            if action.operator != operator:
                raise CascadeError(
                    f"one Einsum reduces with one operator, but this one names {operator} and {action.operator}; "
                    f"split it into two Einsums",
                    action.position,
                )
            for variable in action.variables:
                if variable in output_variables:
                    raise CascadeError(
                        f"rank variable {variable} is on the left of {output.tensor}, so it cannot be reduced",
                        action.position,
                    )
                if variable not in on_right:
                    raise CascadeError(
                        f"the reduction names {variable}, but no operand on the right uses it; operands use "
                        f"{', '.join(on_right) or 'no rank variable'}",
                        action.position,
                    )
                named.append(variable)
        for variable in implicit:
            if variable not in named:
                raise CascadeError(
                    f"rank variable {variable} is on the right but neither on the left nor reduced; add it to "
                    f"{output.tensor}'s indices or to the reduction, as in :: {operator}({', '.join(named + [variable])})",
                    first_access[variable].position,
                )
    merges: dict[str, str | None] = {}
    calls: list[Call] = []
    collect_calls(expr, calls)
    for call in calls:
        if merges.setdefault(call.operator, call.merge) != call.merge:
            raise CascadeError(
                f"the applications of {call.operator} in one Einsum share one merge (a map action sets them all); "
                f"split the Einsum to merge them differently",
                position,
            )
    if populate is not None and populate not in POPULATE_OPERATORS:
        raise CascadeError(f"unknown populate operator {populate!r}; valid: =, +=, max=, min=", position)
    return Einsum(
        output=output,
        expr=expr,
        reduce_operator=operator,
        reduced_variables=implicit,
        initialization=initialization,
        position=position,
        populate=populate,
    )


def _accesses(expr: Expr, found: list[Access]) -> None:
    if isinstance(expr, Access):
        found.append(expr)
    elif isinstance(expr, Call):
        for arg in expr.args:
            _accesses(arg, found)


def build_cascade(draft: Draft) -> Cascade:
    """Check a draft and return the cascade it describes.

    Raises
    ------
    CascadeError
        On the first problem found, with its position.
    """
    start = draft.start or SourcePosition(draft.path, 1, 1)
    if draft.name is None:
        raise CascadeError("missing 'cascade NAME' statement", start)
    if not draft.einsums:
        raise CascadeError("the cascade has no Einsums; add an 'einsums:' section", start)

    variables = {rank.lower(): rank for rank in draft.ranks}
    operators = {definition.name: definition for definition in draft.operators}
    tensors: dict[str, tuple[str, ...]] = dict(draft.inputs)
    writers: dict[tuple[str, bool], Einsum] = {}
    for einsum in draft.initialization + draft.einsums:
        _check_variables(einsum, variables)
        _check_operators(einsum, operators)
        ranks = tuple(variables[index.expr.variables[0]] for index in einsum.output.indices)
        known = tensors.get(einsum.name)
        if known is not None and known != ranks:
            raise CascadeError(
                f"tensor {einsum.name} written with ranks [{', '.join(ranks)}] but declared with "
                f"[{', '.join(known)}]",
                einsum.output.position,
            )
        if einsum.name in draft.inputs:
            raise CascadeError(
                f"input tensor {einsum.name} is written by an Einsum; inputs are read only, so write a new tensor",
                einsum.output.position,
            )
        previous = writers.get((einsum.name, einsum.initialization))
        if previous is not None:
            where = f" (line {previous.position.line})" if previous.position is not None else ""
            section = "initialization" if einsum.initialization else "cascade"
            raise CascadeError(
                f"tensor {einsum.name} is written by two Einsums of the {section}{where}; give each its own tensor",
                einsum.output.position,
            )
        writers[(einsum.name, einsum.initialization)] = einsum
        tensors[einsum.name] = ranks

    for name in tensors:
        if name in draft.ranks:
            position = draft.input_positions.get(name)
            if position is None:
                position = next(e.output.position for e in draft.initialization + draft.einsums if e.name == name)
            raise CascadeError(f"tensor {name} has the name of a rank; rename the tensor", position)

    for einsum in draft.initialization + draft.einsums:
        for access in einsum.accesses:
            if access.tensor not in tensors:
                defined = ", ".join(sorted(tensors))
                raise CascadeError(f"undefined tensor {access.tensor!r}; defined tensors: {defined}", access.position)
            expected = len(tensors[access.tensor])
            if expected != len(access.indices):
                raise CascadeError(
                    f"tensor {access.tensor} has {expected} rank(s) [{', '.join(tensors[access.tensor])}] "
                    f"but is accessed with {len(access.indices)} index(es)",
                    access.position,
                )
    for name, ranks, position in draft.outputs:
        if name not in tensors or name in draft.inputs:
            raise CascadeError(f"output {name!r} is never written by an Einsum", position)
        if tensors[name] != ranks:
            raise CascadeError(
                f"output {name} declared with ranks [{', '.join(ranks)}] but written with "
                f"[{', '.join(tensors[name])}]",
                position,
            )
    if draft.iteration is not None:
        _check_iteration(draft.iteration, variables, draft.iteration_position)

    cascade = Cascade(
        name=draft.name,
        description=draft.description,
        ranks=tuple(draft.ranks),
        batch_ranks=tuple(draft.batch),
        partitions=tuple(draft.partitions),
        inputs=tuple(draft.inputs),
        outputs=tuple(name for name, _, _ in draft.outputs),
        tensors=tensors,
        initialization=tuple(draft.initialization),
        einsums=tuple(draft.einsums),
        iteration=draft.iteration,
        source=draft.path,
        operators=tuple(draft.operators),
        reference=draft.reference,
    )

    # Imported here: both modules build on the IR checked above.
    from einsum_cascades.graph import check_dependencies
    from einsum_cascades.references import check_reference

    check_dependencies(cascade, start, draft.iteration_position)
    check_reference(cascade)
    return cascade


def _check_variables(einsum: Einsum, variables: dict[str, str]) -> None:
    for access in (einsum.output,) + einsum.accesses:
        for index in access.indices:
            factors = [factor for term in index.expr.terms for factor in term.factors]
            for condition in index.filters:
                for side in (condition.left, condition.right):
                    factors.extend(factor for term in side.terms for factor in term.factors)
            for factor in factors:
                if factor.islower() and factor not in variables:
                    raise CascadeError(
                        f"unknown rank variable {factor!r}; rank variables: {', '.join(variables)}",
                        access.position,
                    )
                if not factor.islower() and factor not in variables.values():
                    raise CascadeError(
                        f"unknown rank size {factor!r}; ranks: {', '.join(variables.values())}",
                        access.position,
                    )
    _check_rank_sizes(einsum.expr, variables, einsum)


def _check_rank_sizes(expr: Expr, variables: dict[str, str], einsum: Einsum) -> None:
    if isinstance(expr, RankSize) and expr.rank not in variables.values():
        raise CascadeError(f"unknown rank size {expr.rank!r}; ranks: {', '.join(variables.values())}", einsum.position)
    if isinstance(expr, Call):
        for arg in expr.args:
            _check_rank_sizes(arg, variables, einsum)


def _check_operators(einsum: Einsum, operators: dict[str, OperatorDef]) -> None:
    calls: list[Call] = []
    collect_calls(einsum.expr, calls)
    for call in calls:
        if call.operator in BUILTINS:
            arity = BUILTINS[call.operator].arity
        elif call.operator in operators:
            arity = operators[call.operator].arity
        else:
            valid = ", ".join(sorted(set(BUILTINS) | set(operators)))
            raise CascadeError(f"unknown operator {call.operator!r}; valid: {valid}", einsum.position)
        if len(call.args) != arity:
            raise CascadeError(f"{call.operator} takes {arity} argument(s), got {len(call.args)}", einsum.position)
    if einsum.reduced_variables and reduction_identity(einsum.reduce_operator, tuple(operators.values())) is None:
        raise CascadeError(
            f"operator {einsum.reduce_operator!r} cannot reduce: a reduction needs a binary operator with an identity "
            f"(add, max, min, mul, or a user-defined operator declared with 'identity VALUE')",
            einsum.position,
        )


def _check_iteration(iteration: Iteration, variables: dict[str, str], position: SourcePosition | None) -> None:
    stop = iteration.stop
    if stop.variable != iteration.variable:
        raise CascadeError(
            f"the stopping condition must test {iteration.variable!r} alone on its left side", position
        )
    if stop.operator not in (">=", ">", "="):
        raise CascadeError(
            f"a stopping condition has the form {iteration.variable} >= N, {iteration.variable} > N or "
            f"{iteration.variable} = N, not {stop.operator!r}",
            position,
        )
    if stop.right.variables:
        raise CascadeError(
            f"the bound of a stopping condition uses rank sizes and integers only, not {', '.join(stop.right.variables)}",
            position,
        )
    for size in stop.right.sizes:
        if size not in variables.values():
            raise CascadeError(f"unknown rank size {size!r}; ranks: {', '.join(variables.values())}", position)
