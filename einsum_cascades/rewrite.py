"""Rewrites that reduce the passes of a softmax-attention cascade, and what they cost.

Two techniques, applied in this order to a cascade of the softmax-attention
family (see :mod:`einsum_cascades.passes_softmax`):

1. *Division deferral*, by distributivity: ``sum over m of (SN / SD) * V``
   equals ``(sum over m of SN * V) / SD`` because ``SD`` does not depend on
   ``m``.  The third pass disappears and the divisions drop from one per
   ``(m, p)`` to one per ``(f, p)``.
2. *Iterative construction* with a running maximum and a correction factor.
   The rank ``M`` is split into tiles ``M1 x M0``.  A running max ``RM``,
   running denominator ``RD`` and running weighted sum ``RNV`` are rescaled by
   ``PRM = e^(RM[m1] - RM[m1+1])`` at each tile, so nothing waits for the
   global max.  One pass remains, at the price of extra exponentials,
   multiplies and adds per tile.

The max itself cannot be deferred: the exponent must be shifted before the sum
for the sum to stay finite.

References
----------
N. Nayak et al., "FuseMax: Leveraging Extended Einsums to Optimize Attention
Accelerator Design", MICRO 2024, arXiv 2406.10491, section III-C (the two
techniques) and Cascade 5 (the 1-pass result).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy

from einsum_cascades.counts import einsum_ranks, operator_counts
from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Access, Call, Cascade, Einsum, Index
from einsum_cascades.passes import analyze_passes
from einsum_cascades.passes_footprint import rank_symbol
from einsum_cascades.passes_iterative import iterative_construction
from einsum_cascades.passes_softmax import (
    SoftmaxAttention,
    find_softmax_attention,
    fresh_name,
    plain_indices,
    substitute,
    weighted_operands,
)


@dataclass(frozen=True)
class RewriteStep:
    """One pass-reducing rewrite, the cascade it produces and its extra compute.

    ``extra_operations`` maps each operator whose count changes to the
    applications added per batch and head (negative: saved), in the original
    cascade's rank sizes.  A tile grid ``M1 x M0`` is counted as ``M`` points,
    which is exact when the tile divides ``M``.
    """

    technique: str
    passes_before: int
    passes_after: int
    cascade: Cascade
    extra_operations: dict[str, sympy.Expr]

    def to_json(self) -> dict:
        return {
            "technique": self.technique,
            "passes_before": self.passes_before,
            "passes_after": self.passes_after,
            "cascade": self.cascade.name,
            "extra_operations": {name: str(count) for name, count in self.extra_operations.items()},
        }


@dataclass(frozen=True)
class RewritePlan:
    """The rewrites that take a softmax-attention cascade toward one pass over ``rank``.

    ``blocked`` gives the reason iterative construction could not be applied
    (an Einsum before the softmax that reduces ``rank``, for one), or None.
    """

    rank: str
    passes: int
    steps: tuple[RewriteStep, ...]
    blocked: str | None = None


def plan_rewrites(cascade: Cascade) -> RewritePlan:
    """Derive the fewer-pass cascades of a softmax-attention cascade, one technique at a time.

    Raises
    ------
    CascadeError
        If the cascade is not in the softmax-attention family, or division
        deferral cannot be expressed (an index that is not a plain rank
        variable).  When iterative construction cannot be expressed, the plan
        stops before it and records the reason in ``blocked``.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> plan = plan_rewrites(load_library_cascade("attention-3pass"))
    >>> [(step.technique, step.passes_after) for step in plan.steps]
    [('division deferral', 2), ('iterative construction', 1)]
    >>> plan.steps[0].extra_operations
    {'div': F*P - M*P}
    """
    found = find_softmax_attention(cascade)
    rank = found.rank
    passes = analyze_passes(cascade, rank).passes[rank]

    steps: list[RewriteStep] = []
    current, current_passes = cascade, passes
    if not found.deferred:
        deferred = defer_division(current, found)
        deferred_passes = analyze_passes(deferred, rank).passes[rank]
        steps.append(RewriteStep("division deferral", current_passes, deferred_passes, deferred, _extra(current, deferred)))
        current, current_passes = deferred, deferred_passes
        found = find_softmax_attention(current)

    try:
        one_pass = iterative_construction(current, found)
    except CascadeError as error:
        return RewritePlan(rank, passes, tuple(steps), blocked=str(error))
    one_pass_passes = analyze_passes(one_pass, rank).passes[rank]
    steps.append(
        RewriteStep("iterative construction", current_passes, one_pass_passes, one_pass, _extra(current, one_pass))
    )
    return RewritePlan(rank, passes, tuple(steps))


def rewrite_to_passes(cascade: Cascade, passes: int) -> Cascade:
    """Rewrite a softmax-attention cascade to make ``passes`` passes over its softmax rank.

    Parameters
    ----------
    cascade : Cascade
        A cascade of the softmax-attention family, such as ``attention-3pass``.
    passes : int
        The pass count wanted, at least 1 and at most the cascade's own.

    Returns
    -------
    Cascade
        The cascade itself when it already makes ``passes`` passes, otherwise a
        new cascade named ``NAME-to-Npass``.

    Raises
    ------
    CascadeError
        If ``passes`` is out of range, the cascade is not in the family, or
        no rewrite reaches ``passes``.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> from einsum_cascades.passes import analyze_passes
    >>> two = rewrite_to_passes(load_library_cascade("attention-3pass"), 2)
    >>> [einsum.name for einsum in two.einsums]
    ['QK', 'GM', 'SN', 'SD', 'SNV', 'AV']
    >>> one = rewrite_to_passes(load_library_cascade("attention-3pass"), 1)
    >>> analyze_passes(one).passes
    {'M': 1, 'M1': 1, 'M0': 2, 'E': 1, 'F': 1, 'P': 1}
    """
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        raise CascadeError(f"--passes must be a positive integer, got {passes!r}")
    found = find_softmax_attention(cascade)
    current = analyze_passes(cascade, found.rank).passes[found.rank]
    if passes == current:
        return cascade
    if passes > current:
        raise CascadeError(
            f"cascade {cascade.name} makes {current} pass(es) over {found.rank}; a rewrite only removes passes, "
            f"so --passes must be between 1 and {current}"
        )
    plan = plan_rewrites(cascade)
    for step in plan.steps:
        if step.passes_after == passes:
            return step.cascade
    text = f"no rewrite of {cascade.name} makes {passes} pass(es) over {found.rank}"
    if plan.steps:
        text += "; the rewrites reach " + ", ".join(str(step.passes_after) for step in plan.steps)
    if plan.blocked is not None:
        text += f"; iterative construction is not possible: {plan.blocked}"
    raise CascadeError(text)


def defer_division(cascade: Cascade, found: SoftmaxAttention) -> Cascade:
    """Replace ``A = SN / SD`` and ``O = A * V`` (summed over m) by ``SNV = SN * V`` and ``O = SNV / SD``.

    Raises
    ------
    CascadeError
        If the denominator depends on the summed rank variable, so it cannot
        leave the sum.
    """
    normalized, weighted = found.normalized, found.weighted
    position, weights, value = weighted_operands(weighted, normalized.name)

    # Express the numerator and denominator accesses of A in the variables of the weighted sum.
    names = plain_indices(normalized.output, "the normalized tensor")
    renaming = {name: weights.indices[i].expr for i, name in enumerate(names)}
    numerator_access, denominator_access = normalized.expr.args
    numerator_access = _rename_access(numerator_access, renaming)
    denominator_access = _rename_access(denominator_access, renaming)
    if found.variable in denominator_access.variables:
        raise CascadeError(
            f"division deferral needs the denominator {denominator_access.tensor} to be constant along "
            f"{found.variable}, but it is read as {denominator_access.tensor}[{', '.join(denominator_access.variables)}]",
            normalized.position,
        )

    used_names = set(cascade.tensors) | set(cascade.ranks)
    product_name = fresh_name(found.numerator.name + value.tensor, used_names)
    factors = [numerator_access, value] if position == 0 else [value, numerator_access]
    product = Einsum(
        output=Access(product_name, weighted.output.indices),
        expr=Call("mul", tuple(factors)),
        reduce_operator="add",
        reduced_variables=weighted.reduced_variables,
    )
    output = Einsum(
        output=Access(weighted.name, weighted.output.indices),
        expr=Call("div", (Access(product_name, weighted.output.indices), denominator_access)),
        reduce_operator="add",
        reduced_variables=(),
    )

    einsums: list[Einsum] = []
    for einsum in cascade.einsums:
        if einsum is normalized:
            continue
        if einsum is weighted:
            einsums.extend([product, output])
        else:
            einsums.append(einsum)
    tensors = dict(cascade.tensors)
    del tensors[normalized.name]
    tensors[product_name] = tensors[weighted.name]
    note = (
        f"Rewritten by division deferral: {weighted.name} = ({found.numerator.name} x {value.tensor} summed over "
        f"{found.variable}) / {found.denominator.name}."
    )
    return replace(
        cascade,
        name=f"{cascade.name}-to-2pass",
        description=_append(cascade.description, note),
        tensors=tensors,
        einsums=tuple(einsums),
    )


def _rename_access(access: Access, renaming: dict) -> Access:
    indices = tuple(Index(substitute(index.expr, renaming), index.filters) for index in access.indices)
    return Access(access.tensor, indices)


def _append(description: str, note: str) -> str:
    return f"{description}\n{note}" if description else note


def operation_counts(cascade: Cascade) -> dict[str, sympy.Expr]:
    """Applications of each operator in the whole cascade, as expressions in the rank sizes.

    One application per iteration-space point and operator, with the
    convention of :func:`einsum_cascades.counts.operator_counts` (a
    sum-reduced multiply is one ``mac``).  Filters are ignored, so a causal
    mask's halving is not reflected.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> operation_counts(load_library_cascade("attention-3pass"))["div"]
    B*H*M*P
    """
    totals: dict[str, sympy.Expr] = {}
    for einsum in cascade.all_einsums:
        points = sympy.Mul(*(rank_symbol(rank) for rank in einsum_ranks(cascade, einsum)))
        for operator, count in operator_counts(einsum).items():
            totals[operator] = totals.get(operator, sympy.Integer(0)) + count * points
    return totals


def _extra(before: Cascade, after: Cascade) -> dict[str, sympy.Expr]:
    """Operator applications ``after`` adds to ``before``, per batch-and-head instance."""
    counts_before = operation_counts(before)
    counts_after = operation_counts(after)
    per_instance = {rank_symbol(rank): 1 for rank in before.batch_ranks}
    tiles = {}
    for partition in after.partitions:
        if len(partition.parts) == 2 and before.partition_of(partition.rank) is None:
            outer, inner = partition.parts
            tiles[rank_symbol(inner)] = rank_symbol(partition.rank) / rank_symbol(outer)

    extra = {}
    for operator in list(counts_before) + [name for name in counts_after if name not in counts_before]:
        change = counts_after.get(operator, 0) - counts_before.get(operator, 0)
        change = sympy.expand(sympy.sympify(change).subs(tiles).subs(per_instance))
        if change != 0:
            extra[operator] = change
    return extra
