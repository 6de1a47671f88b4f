"""What extra passes cost: the live footprint between passes and the traffic of spilling it.

Between pass b and pass b + 1 a tensor is *live* when one Einsum touches it at
or before pass b and another touches it after pass b.  The bounds take the
schedule, among those that make the minimum number of passes, that keeps the
least live.  Keeping every live tensor
on chip avoids re-reading.  The alternative is to spill it to memory after its
last touch before the boundary and read it back in each later pass that
needs it.  All sizes are sympy expressions in the rank sizes, in words
(elements), with every rank's name as its symbol.

References
----------
N. Nayak et al., "FuseMax: Leveraging Extended Einsums to Optimize Attention
Accelerator Design", MICRO 2024, arXiv 2406.10491, section III-B: with more
than one pass over R, a whole R fiber is live between the passes, so it is
either buffered, at a capacity proportional to the fiber length, or spilled
and re-read.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

import sympy

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Cascade
from einsum_cascades.passes import RankPasses
from einsum_cascades.passes_ranks import find_target, pass_targets, rank_classes
from einsum_cascades.passes_schedules import (
    crosses,
    forced_touches,
    minimum_pass_schedules,
    scheduled_touches,
    spill_transfers,
)


def rank_symbol(rank: str) -> sympy.Symbol:
    """Return the sympy symbol of a rank's size, a positive integer named like the rank."""
    return sympy.Symbol(rank, positive=True, integer=True)


@dataclass(frozen=True)
class LiveSet:
    """Tensors live between pass ``boundary`` and pass ``boundary + 1``, and their size in words."""

    boundary: int
    tensors: tuple[str, ...]
    per_row_words: sympy.Expr
    total_words: sympy.Expr


@dataclass(frozen=True)
class Footprint:
    """Live footprint of the passes over one rank and the traffic of spilling it instead.

    ``row_ranks`` are the ranks every live tensor has besides the fiber's
    (the query rank P in attention).  A *row* is one coordinate of them and of
    the batch ranks.  ``per_row_words`` and ``total_words`` are the largest
    live set over the pass boundaries (``sympy.Max`` when the sets' sizes do
    not compare symbolically).  ``spill_words`` is the extra memory traffic,
    writes plus reads, when every live tensor spills; ``spill_by_tensor``
    splits it.  ``compulsory_words`` (inputs read once, outputs written once)
    gives the scale it adds to.
    """

    rank: str
    passes: int
    row_ranks: tuple[str, ...]
    live: tuple[LiveSet, ...]
    per_row_words: sympy.Expr
    total_words: sympy.Expr
    spill_words: sympy.Expr
    spill_words_per_row: sympy.Expr
    spill_by_tensor: dict[str, sympy.Expr]
    compulsory_words: sympy.Expr

    def to_json(self) -> dict:
        return {
            "row_ranks": list(self.row_ranks),
            "live": [
                {
                    "after_pass": live.boundary,
                    "tensors": list(live.tensors),
                    "per_row_words": str(live.per_row_words),
                    "total_words": str(live.total_words),
                }
                for live in self.live
            ],
            "per_row_words": str(self.per_row_words),
            "total_words": str(self.total_words),
            "spill_traffic_words": str(self.spill_words),
            "spill_traffic_words_per_row": str(self.spill_words_per_row),
            "spill_traffic_by_tensor": {name: str(words) for name, words in self.spill_by_tensor.items()},
            "compulsory_traffic_words": str(self.compulsory_words),
        }


def live_footprint(cascade: Cascade, passes: RankPasses) -> Footprint:
    """Compute the live footprint and spill traffic of the passes over one rank.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> from einsum_cascades.passes import analyze_passes
    >>> cascade = load_library_cascade("attention-3pass")
    >>> footprint = live_footprint(cascade, analyze_passes(cascade, "M").ranks["M"])
    >>> footprint.row_ranks, footprint.per_row_words, footprint.total_words
    (('P',), M, B*H*M*P)
    >>> footprint.spill_words
    4*B*H*M*P
    """
    plans = _plans(passes)
    every_live: list[str] = []
    for live_sets, _ in plans:
        for _, live in live_sets:
            every_live.extend(tensor for tensor in live if tensor not in every_live)
    row_ranks = _row_ranks(cascade, passes, every_live)

    evaluated = []
    for live_sets, transfers in plans:
        results = []
        for boundary, live in live_sets:
            per_row = sum((_words(cascade, tensor, row_ranks) for tensor in live), sympy.Integer(0))
            total = sum((_words(cascade, tensor, None) for tensor in live), sympy.Integer(0))
            results.append(LiveSet(boundary, live, per_row, total))
        spill = {tensor: count * _words(cascade, tensor, None) for tensor, count in transfers}
        spill_per_row = sum((count * _words(cascade, tensor, row_ranks) for tensor, count in transfers), sympy.Integer(0))
        evaluated.append((tuple(results), spill, sympy.expand(spill_per_row)))

    per_row = _smallest([_largest([live.per_row_words for live in results]) for results, _, _ in evaluated])
    total = _smallest([_largest([live.total_words for live in results]) for results, _, _ in evaluated])
    spill_total = _smallest([sympy.expand(sum(spill.values(), sympy.Integer(0))) for _, spill, _ in evaluated])
    spill_per_row = _smallest([row for _, _, row in evaluated])
    least_live = next(
        (item for item in evaluated if _largest([live.per_row_words for live in item[0]]) == per_row), evaluated[0]
    )
    cheapest = next(
        (item for item in evaluated if sympy.expand(sum(item[1].values(), sympy.Integer(0))) == spill_total),
        evaluated[0],
    )

    compulsory = sympy.Integer(0)
    for tensor in cascade.inputs + cascade.outputs:
        compulsory += _words(cascade, tensor, None)

    return Footprint(
        rank=passes.rank,
        passes=passes.passes,
        row_ranks=row_ranks,
        live=least_live[0],
        per_row_words=per_row,
        total_words=total,
        spill_words=spill_total,
        spill_words_per_row=spill_per_row,
        spill_by_tensor=cheapest[1],
        compulsory_words=compulsory,
    )


def _plans(passes: RankPasses) -> list[tuple[tuple[tuple[int, tuple[str, ...]], ...], tuple[tuple[str, int], ...]]]:
    """Distinct (live sets per boundary, spill transfers per tensor) over the minimum-pass schedules."""
    schedules = minimum_pass_schedules(passes)
    if schedules is None:
        # NOTE: with too many schedules to enumerate, only the tensors that every
        # schedule keeps live count, which can miss a choice between two tensors.
        candidates = [forced_touches(passes)]
    else:
        candidates = [scheduled_touches(passes, schedule) for schedule in schedules] or [{}]

    plans = []
    for touches in candidates:
        live_sets = tuple(
            (boundary, tuple(tensor for tensor, found in touches.items() if crosses(found, boundary)))
            for boundary in range(1, passes.passes)
        )
        transfers = tuple(
            (tensor, spill_transfers(found)) for tensor, found in touches.items() if spill_transfers(found) > 0
        )
        if (live_sets, transfers) not in plans:
            plans.append((live_sets, transfers))
    return plans


def _row_ranks(cascade: Cascade, passes: RankPasses, live: list[str]) -> tuple[str, ...]:
    if not live:
        return ()
    classes = rank_classes(cascade)
    fiber = find_target(pass_targets(cascade, classes), passes.rank).classes
    common: list[str] | None = None
    for tensor in live:
        ranks = [rank for rank in cascade.tensors[tensor] if classes[rank] not in fiber]
        common = ranks if common is None else [rank for rank in common if rank in ranks]
    return tuple(common or ())


def _words(cascade: Cascade, tensor: str, row_ranks: tuple[str, ...] | None) -> sympy.Expr:
    """Elements of ``tensor``: all of them (``row_ranks`` None) or those of one row."""
    if row_ranks is None:
        ranks = cascade.tensor_ranks(tensor)
    else:
        ranks = tuple(rank for rank in cascade.tensors[tensor] if rank not in row_ranks)
    return sympy.Mul(*(rank_symbol(rank) for rank in ranks))


def _largest(values: list[sympy.Expr]) -> sympy.Expr:
    """Return the largest value, or ``sympy.Max`` of those no other value provably exceeds."""
    return _extreme(values, largest=True)


def _smallest(values: list[sympy.Expr]) -> sympy.Expr:
    """Return the smallest value, or ``sympy.Min`` of those no other value is provably below."""
    return _extreme(values, largest=False)


def _extreme(values: list[sympy.Expr], largest: bool) -> sympy.Expr:
    if not values:
        return sympy.Integer(0)
    candidates: list[sympy.Expr] = []
    for value in dict.fromkeys(sympy.expand(value) for value in values):
        if any(_at_least(other, value) if largest else _at_least(value, other) for other in candidates):
            continue
        candidates = [other for other in candidates if not (_at_least(value, other) if largest else _at_least(other, value))]
        candidates.append(value)
    if len(candidates) == 1:
        return candidates[0]
    return sympy.Max(*candidates) if largest else sympy.Min(*candidates)


def _at_least(first: sympy.Expr, second: sympy.Expr) -> bool:
    """Return whether ``first >= second`` for all positive rank sizes, as far as sympy can prove it."""
    return bool(sympy.expand(first - second).is_nonnegative)


def evaluate_words(cascade: Cascade, expr: sympy.Expr, sizes: dict[str, int]) -> int:
    """Evaluate a size expression at given rank sizes.

    The outermost sub-rank of a partition, when not given, is the whole rank
    over the inner sub-ranks, rounded up (the last tile may be partial).

    Raises
    ------
    CascadeError
        If a rank the expression needs has no size.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> cascade = load_library_cascade("attention-1pass")
    >>> evaluate_words(cascade, rank_symbol("M1") * rank_symbol("P"), {"M": 1000, "M0": 256, "P": 3})
    12
    """
    missing = missing_sizes(cascade, expr, sizes)
    if missing:
        raise CascadeError(f"missing size for rank(s) {', '.join(missing)}; give each as RANK=SIZE")
    known = _complete_sizes(cascade, sizes)
    value = expr.subs({rank_symbol(rank): size for rank, size in known.items()})
    return int(value)


def missing_sizes(cascade: Cascade, expr: sympy.Expr, sizes: dict[str, int]) -> list[str]:
    """Ranks that ``expr`` needs and ``sizes`` does not give (nor derives), sorted."""
    known = _complete_sizes(cascade, sizes)
    return sorted(symbol.name for symbol in expr.free_symbols if symbol.name not in known)


def _complete_sizes(cascade: Cascade, sizes: dict[str, int]) -> dict[str, int]:
    """Add the outermost sub-rank of each partition: the whole rank over the inner tile, rounded up."""
    known = dict(sizes)
    for partition in cascade.partitions:
        inner = partition.parts[1:]
        if partition.rank in known and all(part in known for part in inner):
            tile = prod(known[part] for part in inner)
            known[partition.parts[0]] = -(-known[partition.rank] // tile)
    return known


def largest_fitting_length(
    cascade: Cascade,
    expr: sympy.Expr,
    sizes: dict[str, int],
    length_ranks: tuple[str, ...],
    budget_words: int,
) -> int | None:
    """Largest common size of ``length_ranks`` at which ``expr`` stays within ``budget_words``.

    Every other rank keeps its size from ``sizes``.  Returns None when the
    expression does not grow with the length and fits (it never exceeds the
    budget), and 0 when it exceeds the budget at length 1.

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> cascade = load_library_cascade("attention-3pass")
    >>> largest_fitting_length(cascade, 2 * rank_symbol("M"), {}, ("M", "P"), 1000)
    500
    """

    def fits(length: int) -> bool:
        trial = dict(sizes)
        for rank in length_ranks:
            trial[rank] = length
        return evaluate_words(cascade, expr, trial) <= budget_words

    if not fits(1):
        return 0
    ceiling = 1 << 62
    if fits(ceiling):
        return None
    low, high = 1, ceiling
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low
