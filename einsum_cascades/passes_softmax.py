"""Recognize the softmax-attention family in a cascade, and small IR building helpers.

The family is the numerically stable softmax along one rank variable ``m``,
followed by a weighted sum over the same variable::

    GM[p]   = S[m,p] :: max(m)            global max of the scores S
    SN[m,p] = exp(S[m,p] - GM[p])         numerator
    SD[p]   = SN[m,p]                     denominator (sum over m)
    A[m,p]  = SN[m,p] / SD[p]             normalized weights
    AV[f,p] = A[m,p] * V[f,m]             weighted sum

or, with the division deferred, ``SNV[f,p] = SN[m,p] * V[f,m]`` and
``AV[f,p] = SNV[f,p] / SD[p]``.  Tensor and rank names are free; only the
structure is matched.
"""

from __future__ import annotations

from dataclasses import dataclass

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Access, AffineExpr, Call, Cascade, Condition, Einsum, Expr, Index, Term

FAMILY = (
    "the softmax-attention family: GM = S :: max(m), SN = exp(S - GM), SD = SN summed over m, then either "
    "A = SN / SD with O = A * V summed over m, or SNV = SN * V summed over m with O = SNV / SD"
)


@dataclass(frozen=True)
class SoftmaxAttention:
    """The Einsums of one softmax over rank variable ``variable`` and the weighted sum after it.

    ``normalized`` is the Einsum ``A = SN / SD``, or None when the division
    is already deferred.  ``weighted`` sums ``A * V`` (or ``SN * V``) over the
    variable.  ``output`` is the Einsum that writes the result, ``weighted``
    itself when the division is not deferred.
    """

    variable: str
    maximum: Einsum
    numerator: Einsum
    denominator: Einsum
    normalized: Einsum | None
    weighted: Einsum
    output: Einsum

    @property
    def score(self) -> Access:
        """The access of the scores in the max Einsum (``QK[m, p]``)."""
        return self.maximum.expr  # an Access: find_softmax_attention matches only that

    @property
    def rank(self) -> str:
        return self.variable.upper()

    @property
    def deferred(self) -> bool:
        return self.normalized is None


def find_softmax_attention(cascade: Cascade) -> SoftmaxAttention:
    """Find the softmax-attention structure of ``cascade``.

    Raises
    ------
    CascadeError
        If the cascade is not in the family; the message describes the family.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> found = find_softmax_attention(load_library_cascade("attention-3pass"))
    >>> found.variable, found.maximum.name, found.normalized.name, found.output.name
    ('m', 'GM', 'A', 'AV')
    """
    for maximum in cascade.einsums:
        if maximum.reduce_operator != "max" or len(maximum.reduced_variables) != 1 or maximum.populate:
            continue
        if not isinstance(maximum.expr, Access):
            continue
        found = _match_from_maximum(cascade, maximum, maximum.reduced_variables[0])
        if found is not None:
            return found
    raise CascadeError(f"cascade {cascade.name} is not in {FAMILY}")


def _match_from_maximum(cascade: Cascade, maximum: Einsum, variable: str) -> SoftmaxAttention | None:
    score = maximum.expr
    numerator = _single(
        cascade,
        lambda e: _is_call(e.expr, "sub_exp")
        and _reads(e.expr.args[0], score.tensor)
        and _reads(e.expr.args[1], maximum.name)
        and not e.reduced_variables
        and variable in e.output.variables,
    )
    if numerator is None:
        return None
    denominator = _single(
        cascade,
        lambda e: _reads(e.expr, numerator.name) and e.reduce_operator == "add" and e.reduced_variables == (variable,),
    )
    if denominator is None:
        return None

    if not _only_consumers(cascade, score.tensor, {maximum, numerator}) or not _only_consumers(cascade, maximum.name, {numerator}):
        return None

    normalized = _single(
        cascade,
        lambda e: _is_call(e.expr, "div")
        and _reads(e.expr.args[0], numerator.name)
        and _reads(e.expr.args[1], denominator.name)
        and not e.reduced_variables,
    )
    if normalized is not None:
        weighted = _weighted_sum(cascade, normalized.name, variable)
        if weighted is None or not _only_consumers(cascade, normalized.name, {weighted}):
            return None
        if not _only_consumers(cascade, numerator.name, {denominator, normalized}):
            return None
        if not _only_consumers(cascade, denominator.name, {normalized}):
            return None
        return SoftmaxAttention(variable, maximum, numerator, denominator, normalized, weighted, weighted)

    weighted = _weighted_sum(cascade, numerator.name, variable)
    if weighted is None:
        return None
    output = _single(
        cascade,
        lambda e: _is_call(e.expr, "div")
        and _reads(e.expr.args[0], weighted.name)
        and _reads(e.expr.args[1], denominator.name)
        and not e.reduced_variables,
    )
    if output is None:
        return None
    if not _only_consumers(cascade, numerator.name, {denominator, weighted}):
        return None
    if not _only_consumers(cascade, denominator.name, {output}) or not _only_consumers(cascade, weighted.name, {output}):
        return None
    return SoftmaxAttention(variable, maximum, numerator, denominator, None, weighted, output)


def _weighted_sum(cascade: Cascade, weights: str, variable: str) -> Einsum | None:
    return _single(
        cascade,
        lambda e: _is_call(e.expr, "mul")
        and any(_reads(arg, weights) for arg in e.expr.args)
        and e.reduce_operator == "add"
        and e.reduced_variables == (variable,)
        and not e.populate,
    )


def weighted_operands(weighted: Einsum, weights: str) -> tuple[int, Access, Access]:
    """Position of the weights among the two factors of ``weighted``, the weights' access and the other factor.

    Raises
    ------
    CascadeError
        If the other factor is not a plain tensor access.
    """
    first, second = weighted.expr.args  # a two-operand mul: _weighted_sum matches only that
    position = 0 if _reads(first, weights) else 1
    other = second if position == 0 else first
    if not isinstance(other, Access):
        raise CascadeError(
            f"the weighted sum {weighted.name} must multiply the weights by one tensor, such as V[f, m]",
            weighted.position,
        )
    return position, weighted.expr.args[position], other


def _single(cascade: Cascade, predicate) -> Einsum | None:
    found = [einsum for einsum in cascade.einsums if predicate(einsum)]
    return found[0] if len(found) == 1 else None


def _only_consumers(cascade: Cascade, tensor: str, allowed: set[Einsum]) -> bool:
    """Return whether ``tensor`` is an intermediate that only the ``allowed`` Einsums read.

    A rewrite removes or re-indexes the softmax tensors, so no other Einsum
    and no cascade output may need them.
    """
    if tensor in cascade.outputs:
        return False
    readers = [einsum for einsum in cascade.all_einsums if tensor in einsum.inputs]
    return all(reader in allowed for reader in readers)


def _is_call(expr: Expr, operator: str) -> bool:
    return isinstance(expr, Call) and expr.operator == operator and len(expr.args) == 2


def _reads(expr: Expr, tensor: str) -> bool:
    return isinstance(expr, Access) and expr.tensor == tensor


# -- IR building helpers ---------------------------------------------------


def variable(name: str) -> AffineExpr:
    """Return the affine expression of one bare rank variable."""
    return AffineExpr((Term(1, (name,)),))


def shifted(name: str, offset: int) -> AffineExpr:
    """``name + offset``."""
    return AffineExpr((Term(1, (name,)), Term(offset, ())))


def size(rank: str) -> AffineExpr:
    """Return the size of ``rank`` as a constant index (``M1`` in ``RNV[f, M1, p]``)."""
    return AffineExpr((Term(1, (rank,)),))


def access(tensor: str, indices: list[Index] | tuple[Index, ...]) -> Access:
    return Access(tensor, tuple(indices))


def plain_indices(access_: Access, what: str) -> tuple[str, ...]:
    """Variables of an access whose every index is one bare rank variable without filters.

    Raises
    ------
    CascadeError
        Naming the access, if an index is an expression or carries a filter.
    """
    names = []
    for index in access_.indices:
        single = index.expr.single_variable
        if single is None or index.filters:
            raise CascadeError(
                f"the rewrite needs every index of {what} {access_.tensor} to be one rank variable without a filter",
                access_.position,
            )
        names.append(single)
    return tuple(names)


def substitute(expr: AffineExpr, replacements: dict[str, AffineExpr]) -> AffineExpr:
    """Replace rank variables in an affine expression (``m`` by ``m1*M0 + m0``)."""
    terms: list[Term] = []
    for term in expr.terms:
        hit = [factor for factor in term.factors if factor in replacements]
        if not hit:
            terms.append(term)
            continue
        rest = tuple(factor for factor in term.factors if factor != hit[0])
        for inner in replacements[hit[0]].terms:
            terms.append(Term(term.coefficient * inner.coefficient, inner.factors + rest))
    return AffineExpr(tuple(terms))


def substitute_condition(condition: Condition, replacements: dict[str, AffineExpr]) -> Condition:
    return Condition(substitute(condition.left, replacements), condition.operator, substitute(condition.right, replacements))


def fresh_name(base: str, used_names: set[str]) -> str:
    """``base``, or ``base`` with the smallest numeric suffix not in ``used_names``; the result is added to ``used_names``."""
    name = base
    suffix = 2
    while name in used_names:
        name = f"{base}{suffix}"
        suffix += 1
    used_names.add(name)
    return name
