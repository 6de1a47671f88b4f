"""Iterative construction: turn a deferred-division softmax into the 1-pass recurrence.

Given ``GM = S :: max(m)``, ``SN = exp(S - GM)``, ``SD = sum SN``,
``SNV = sum SN * V`` and ``O = SNV / SD``, the rank of ``m`` is split into
tiles (``M = M1 x M0``, ``m = m1*M0 + m0``) and the result is the recurrence
of FuseMax's Cascade 5::

    LM[m1,p]      = S[m1,m0,p] :: max(m0)          local max
    RM[m1+1,p]    = max(RM[m1,p], LM[m1,p])         running max
    SLN[m1,m0,p]  = exp(S[m1,m0,p] - RM[m1+1,p])    local numerator
    SLD[m1,p]     = SLN[m1,m0,p]                    local denominator
    SLNV[f,m1,p]  = SLN[m1,m0,p] * V[f,m1,m0]       local weighted sum
    PRM[m1,p]     = exp(RM[m1,p] - RM[m1+1,p])      correction factor
    SPD, RD       running denominator, rescaled by PRM
    SPNV, RNV     running weighted sum, rescaled by PRM
    O[f,p]        = RNV[f,M1,p] / RD[M1,p]

Einsums that produce the scores along ``m`` are re-indexed over
``(m1, m0)``.  Inputs with rank ``M`` are first copied into tiled layouts
(``BK[e,m1,m0] = K[e, m1*M0+m0]``), and filters on ``m`` (a causal mask)
are rewritten over ``m1*M0 + m0``.
"""

from __future__ import annotations

from dataclasses import replace

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import (
    Access,
    AffineExpr,
    Call,
    Cascade,
    Condition,
    Constant,
    Einsum,
    Expr,
    Index,
    Iteration,
    Partition,
    Term,
)
from einsum_cascades.passes_softmax import (
    SoftmaxAttention,
    access,
    fresh_name,
    plain_indices,
    shifted,
    size,
    substitute_condition,
    variable,
    weighted_operands,
)


def iterative_construction(cascade: Cascade, found: SoftmaxAttention) -> Cascade:
    """Return the 1-pass form of a softmax-attention cascade whose division is deferred.

    Raises
    ------
    CascadeError
        If the division is not deferred, the cascade already has an iterative
        rank or partitions the softmax rank, or an Einsum reduces ``m`` or
        reads it other than as a bare index.
    """
    if not found.deferred:
        raise CascadeError("iterative construction needs the division deferred first")
    if cascade.iteration is not None or cascade.initialization:
        raise CascadeError(f"cascade {cascade.name} already has an iterative rank or initialization Einsums")
    rank = found.rank
    if cascade.partition_of(rank) is not None:
        raise CascadeError(f"rank {rank} of cascade {cascade.name} is already partitioned")

    used_names = set(cascade.tensors) | set(cascade.ranks)
    outer, inner = fresh_name(f"{rank}1", used_names), fresh_name(f"{rank}0", used_names)
    builder = _Tiler(cascade, found.variable, outer, inner, used_names)
    softmax = {found.maximum, found.numerator, found.denominator, found.weighted, found.output}

    einsums: list[Einsum] = []
    for einsum in cascade.einsums:
        if einsum in softmax:
            continue
        if found.variable in einsum.variables:
            einsums.append(builder.tile_einsum(einsum))
        else:
            einsums.append(einsum)
    recurrence, initialization = _recurrence(builder, found)
    einsums.extend(recurrence)

    tensors = {name: cascade.tensors[name] for name in cascade.inputs}
    for einsum in builder.relayouts + initialization + einsums:
        tensors[einsum.name] = tuple(index.expr.variables[0].upper() for index in einsum.output.indices)

    note = (
        f"Rewritten by iterative construction: {rank} is walked in tiles {outer} x {inner} with a running max, "
        f"a running denominator and a running weighted sum, each rescaled by a correction factor."
    )
    return replace(
        cascade,
        name=cascade.name.removesuffix("-to-2pass") + "-to-1pass",
        description=f"{cascade.description}\n{note}" if cascade.description else note,
        ranks=cascade.ranks + (outer, inner),
        partitions=cascade.partitions + (Partition(rank, (outer, inner)),),
        tensors=tensors,
        initialization=tuple(builder.relayouts + initialization),
        einsums=tuple(einsums),
        iteration=Iteration(builder.outer, Condition(variable(builder.outer), ">=", size(outer))),
    )


class _Tiler:
    """Re-indexes accesses from ``m`` to ``(m1, m0)`` and collects the relayout copies of inputs."""

    def __init__(self, cascade: Cascade, walked: str, outer: str, inner: str, used_names: set[str]):
        self.cascade = cascade
        self.walked = walked
        self.outer = outer.lower()
        self.inner = inner.lower()
        self.combined = AffineExpr((Term(1, (self.outer, inner)), Term(1, (self.inner,))))
        self.used_names = used_names
        self.relayouts: list[Einsum] = []
        self.relayout_names: dict[str, str] = {}
        self.tiled_names: dict[str, str] = {}

    def tile_access(self, original: Access) -> Access:
        """``T[.., m, ..]`` becomes ``T[.., m1, m0, ..]``, an input read through its tiled copy."""
        if self.walked not in original.variables and not self._filtered(original):
            return original
        for index in original.indices:
            if self.walked in index.expr.variables and index.expr.single_variable != self.walked:
                raise CascadeError(
                    f"iterative construction needs {original.tensor} to be read at {self.walked} itself, "
                    f"not at an expression of it",
                    original.position,
                )
        tensor = original.tensor
        if tensor in self.cascade.inputs:
            tensor = self._relayout(original)
        elif self.walked in original.variables:
            # A tiled intermediate gets a new name, as QK becomes BQK in Cascade 5.
            tensor = self._tiled_name(tensor)
        indices: list[Index] = []
        for index in original.indices:
            filters = tuple(substitute_condition(c, {self.walked: self.combined}) for c in index.filters)
            if index.expr.single_variable == self.walked:
                indices.append(Index(variable(self.outer)))
                indices.append(Index(variable(self.inner), filters))
            else:
                indices.append(Index(index.expr, filters))
        return Access(tensor, tuple(indices), original.position)

    def tile_expr(self, expr: Expr) -> Expr:
        if isinstance(expr, Access):
            return self.tile_access(expr)
        if isinstance(expr, Call):
            return replace(expr, args=tuple(self.tile_expr(arg) for arg in expr.args))
        return expr

    def tile_einsum(self, einsum: Einsum) -> Einsum:
        """Re-index an Einsum that produces the scores elementwise along ``m``."""
        if self.walked in einsum.reduced_variables or self.walked not in einsum.output.variables:
            raise CascadeError(
                f"iterative construction needs {einsum.name} to keep {self.walked} (it may not reduce it)",
                einsum.position,
            )
        return replace(einsum, output=self.tile_access(einsum.output), expr=self.tile_expr(einsum.expr), position=None)

    def _tiled_name(self, tensor: str) -> str:
        if tensor not in self.tiled_names:
            self.tiled_names[tensor] = fresh_name("B" + tensor, self.used_names)
        return self.tiled_names[tensor]

    def _filtered(self, original: Access) -> bool:
        return any(self.walked in condition.variables for condition in original.filters)

    def _relayout(self, original: Access) -> str:
        """Name of the tiled copy of an input, adding ``BX[.., m1, m0, ..] = X[.., m1*M0 + m0, ..]`` once."""
        tensor = original.tensor
        if tensor in self.relayout_names:
            return self.relayout_names[tensor]
        name = fresh_name("B" + tensor, self.used_names)
        self.relayout_names[tensor] = name

        declared = self.cascade.tensors[tensor]
        position = next(i for i, index in enumerate(original.indices) if index.expr.single_variable == self.walked)
        written: list[Index] = []
        read: list[Index] = []
        for i, rank in enumerate(declared):
            if i == position:
                written += [Index(variable(self.outer)), Index(variable(self.inner))]
                read.append(Index(self.combined))
            else:
                written.append(Index(variable(rank.lower())))
                read.append(Index(variable(rank.lower())))
        self.relayouts.append(
            Einsum(access(name, written), access(tensor, read), "add", (), initialization=True)
        )
        return name


def _recurrence(tiler: _Tiler, found: SoftmaxAttention) -> tuple[list[Einsum], list[Einsum]]:
    """Build the Einsums of the running max, denominator and weighted sum, and their initialization."""
    used_names = tiler.used_names
    names = {base: fresh_name(base, used_names) for base in ("LM", "RM", "SLN", "SLD", "SLNV", "PRM", "SPD", "RD", "SPNV", "RNV")}
    outer, inner = tiler.outer, tiler.inner

    rows = plain_indices(found.maximum.output, "the max")
    if plain_indices(found.denominator.output, "the denominator") != rows:
        raise CascadeError(
            f"iterative construction needs the max {found.maximum.name} and the denominator "
            f"{found.denominator.name} to have the same indices",
            found.denominator.position,
        )
    # The weighted sum keeps every index of the max: it reduces only the softmax variable.
    value_indices = plain_indices(found.weighted.output, "the weighted sum")

    def tiled(tensor: str, tile: Index, indices: list[Index] | tuple[Index, ...], names: tuple[str, ...]) -> Access:
        # The tile index goes before the last row index, as in RM[m1, p] and RNV[f, m1, p].
        at = max((i for i, name in enumerate(names) if name in rows), default=len(names))
        placed = list(indices)
        placed.insert(at, tile)
        return access(tensor, placed)

    def running(tensor: str, tile: AffineExpr) -> Access:
        return tiled(names[tensor], Index(tile), [Index(variable(k)) for k in rows], rows)

    def weighted(tensor: str, tile: AffineExpr) -> Access:
        return tiled(names[tensor], Index(tile), [Index(variable(k)) for k in value_indices], value_indices)

    now, following = variable(outer), shifted(outer, 1)
    position, numerator_in_sum, value = weighted_operands(found.weighted, found.numerator.name)
    score_in_numerator, max_in_numerator = found.numerator.expr.args
    local_numerator = access(names["SLN"], tiler.tile_access(numerator_in_sum).indices)
    local_factors = [local_numerator, tiler.tile_access(value)]
    if position == 1:
        local_factors.reverse()
    running_max = tiled(names["RM"], Index(following), max_in_numerator.indices, rows)

    einsums = [
        Einsum(running("LM", now), tiler.tile_access(found.score), "max", (inner,)),
        Einsum(running("RM", following), Call("max", (running("RM", now), running("LM", now))), "add", ()),
        Einsum(
            access(names["SLN"], tiler.tile_access(found.numerator.output).indices),
            Call("sub_exp", (tiler.tile_access(score_in_numerator), running_max)),
            "add",
            (),
        ),
        Einsum(running("SLD", now), access(names["SLN"], tiler.tile_access(found.denominator.expr).indices), "add", (inner,)),
        Einsum(weighted("SLNV", now), Call("mul", tuple(local_factors)), "add", (inner,)),
        Einsum(running("PRM", now), Call("sub_exp", (running("RM", now), running("RM", following))), "add", ()),
        Einsum(running("SPD", now), Call("mul", (running("RD", now), running("PRM", now))), "add", ()),
        Einsum(running("RD", following), Call("add", (running("SLD", now), running("SPD", now))), "add", ()),
        Einsum(weighted("SPNV", now), Call("mul", (weighted("RNV", now), running("PRM", now))), "add", ()),
        Einsum(weighted("RNV", following), Call("add", (weighted("SLNV", now), weighted("SPNV", now))), "add", ()),
    ]

    # The output divides the last iterates: O[f, p] = RNV[f, M1, p] / RD[M1, p].
    last = Index(size(outer.upper()))
    weighted_in_output, denominator_in_output = found.output.expr.args
    final_sum = tiled(names["RNV"], last, weighted_in_output.indices, value_indices)
    final_denominator = tiled(names["RD"], last, denominator_in_output.indices, rows)
    einsums.append(Einsum(found.output.output, Call("div", (final_sum, final_denominator)), "add", ()))

    first = Index(variable(outer), (Condition(variable(outer), "=", AffineExpr((Term(0, ()),))),))
    initialization = [
        Einsum(_with_first(running("RM", now), first), Constant(float("-inf"), "-inf"), "add", (), initialization=True),
        Einsum(_with_first(running("RD", now), first), Constant(0.0, "0"), "add", (), initialization=True),
        Einsum(_with_first(weighted("RNV", now), first), Constant(0.0, "0"), "add", (), initialization=True),
    ]
    return einsums, initialization


def _with_first(written: Access, first: Index) -> Access:
    """Replace the tile index of ``written`` by the first iterate, as in ``RM[m1 : m1 = 0, p]``."""
    indices = tuple(first if index.expr.single_variable == first.expr.single_variable else index for index in written.indices)
    return Access(written.tensor, indices)
