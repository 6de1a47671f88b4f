"""Lower bounds on the passes a cascade makes over each rank, valid for every mapping.

A pass over rank R is one sweep that touches every element of an R fiber.  An
extra pass is forced when an Einsum sweeps a fiber and needs a value that is
complete only after the whole fiber was swept.  Such a value is a full
reduction (the row max ``GM = max over m of QK``) or the last iterate of a
recurrence over R.
Only the cascade is inspected, never a mapping, so the counts hold for every
mapping, fused or not, and no count depends on rank sizes or names.

The analysis gives every tensor a *state* relative to the fiber of one target
rank: ``settled at L`` (every element exists once L complete sweeps are done)
or ``streamed at L`` (elements appear one by one during sweep L + 1).  An
Einsum that sweeps the fiber runs in sweep ``max L of its inputs + 1``.  Its
output is settled at that sweep when the output needs every coordinate of the
fiber, and streamed otherwise.  An Einsum that does not sweep the fiber (it
works on M1-length summaries, or has no R at all) runs between or alongside
the sweeps.  The pass count is the highest sweep number.

References
----------
N. Nayak et al., "FuseMax: Leveraging Extended Einsums to Optimize Attention
Accelerator Design", MICRO 2024, arXiv 2406.10491, section III-A (passes and
the rule that a read-after-full-reduction forces another pass).
"""

from __future__ import annotations

from dataclasses import dataclass

from einsum_cascades.ir import Cascade
from einsum_cascades.passes_levels import EinsumState, analyze_target
from einsum_cascades.passes_ranks import find_target, pass_targets, rank_classes


@dataclass(frozen=True)
class EinsumLevel:
    """Position of one Einsum among the passes over a rank.

    ``level`` is the pass the Einsum sweeps in when ``sweeps`` is true.  An
    Einsum that does not sweep the fiber runs during pass ``level`` (on
    summaries, alongside the sweep) or, when ``after`` is true, once pass
    ``level`` is complete (level 0: before the first pass).
    """

    einsum: str
    initialization: bool
    sweeps: bool
    level: int
    after: bool
    relayout: bool
    reason: str

    def to_json(self) -> dict:
        return {
            "einsum": self.einsum,
            "init": self.initialization,
            "level": self.level,
            "sweeps": self.sweeps,
            "after": self.after,
            "relayout": self.relayout,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ExtraPass:
    """One pass beyond the first and the full reduction that forces it.

    ``einsum`` sweeps the fiber in pass ``number`` because it needs
    ``waits_for``, which is complete only after pass ``number - 1``, because
    ``reduction`` (a full reduction, or a recurrence whose last iterate is
    read) needs the whole fiber.
    """

    number: int
    einsum: str
    waits_for: str
    reduction: str

    def __str__(self) -> str:
        return (
            f"pass {self.number}: {self.einsum} sweeps the fiber again because it needs {self.waits_for}, "
            f"which is complete only after pass {self.number - 1} ({self.reduction} needs the whole fiber)"
        )

    def to_json(self) -> dict:
        return {"pass": self.number, "einsum": self.einsum, "waits_for": self.waits_for, "reduction": self.reduction}


@dataclass(frozen=True)
class RankPasses:
    """Pass lower bound over one rank, with the level of every Einsum and the reasons.

    ``tensor_passes`` gives, for every tensor with a rank of this fiber, the
    number of distinct passes that must read or write its fiber.  A tensor
    with more than one stays on chip between passes or is read again.
    """

    rank: str
    passes: int
    einsums: tuple[EinsumLevel, ...]
    tensor_passes: dict[str, int]
    extra_passes: tuple[ExtraPass, ...]
    states: tuple[EinsumState, ...]

    def einsums_in_pass(self, number: int) -> tuple[str, ...]:
        """Names of the Einsums that sweep the fiber in pass ``number``."""
        return tuple(level.einsum for level in self.einsums if level.sweeps and level.level == number)

    def to_json(self) -> dict:
        return {
            "passes": self.passes,
            "einsums": [level.to_json() for level in self.einsums],
            "tensors": dict(self.tensor_passes),
            "extra_passes": [extra.to_json() for extra in self.extra_passes],
        }


@dataclass(frozen=True)
class PassReport:
    """Pass lower bounds of a cascade over each of its ranks (batch ranks left out)."""

    cascade: str
    ranks: dict[str, RankPasses]

    @property
    def passes(self) -> dict[str, int]:
        """Rank name to pass count; a partitioned rank and each of its sub-ranks appear."""
        return {rank: result.passes for rank, result in self.ranks.items()}

    def to_json(self) -> dict:
        return {
            "cascade": self.cascade,
            "passes": self.passes,
            "ranks": {rank: result.to_json() for rank, result in self.ranks.items()},
        }


def analyze_passes(cascade: Cascade, rank: str | None = None) -> PassReport:
    """Infer the minimum number of passes over every rank of ``cascade``.

    Parameters
    ----------
    cascade : Cascade
        A parsed cascade.
    rank : str, optional
        Analyze only this rank (a whole rank or a sub-rank such as ``M0``).

    Returns
    -------
    PassReport
        One :class:`RankPasses` per rank: partitioned ranks first, each
        followed by its sub-ranks, then the others in declaration order.

    Raises
    ------
    CascadeError
        For an unknown ``rank``, a dependency cycle that does not run through
        the iterative rank, or a recurrence that needs a complete sweep at
        every step (its pass count would grow with a rank size).

    Examples
    --------
    >>> from einsum_cascades.library import load_library_cascade
    >>> analyze_passes(load_library_cascade("attention-1pass")).passes
    {'M': 1, 'M1': 1, 'M0': 2, 'E': 1, 'F': 1, 'P': 1}
    >>> report = analyze_passes(load_library_cascade("attention-3pass"), "M")
    >>> report.ranks["M"].einsums_in_pass(2)
    ('SN', 'SD')
    >>> print(report.ranks["M"].extra_passes[0])  # doctest: +NORMALIZE_WHITESPACE
    pass 2: SN sweeps the fiber again because it needs GM, which is complete
    only after pass 1 (GM needs the whole fiber)
    """
    classes = rank_classes(cascade)
    targets = pass_targets(cascade, classes)
    if rank is not None:
        targets = [find_target(targets, rank)]

    results = {}
    for target in targets:
        states = analyze_target(cascade, classes, target)
        results[target.rank] = _rank_passes(target.rank, states)
    return PassReport(cascade.name, results)


def _rank_passes(rank: str, states: tuple[EinsumState, ...]) -> RankPasses:
    passes = max((state.level for state in states if state.sweeps), default=0)

    levels = []
    for state in states:
        levels.append(
            EinsumLevel(
                einsum=state.einsum.name,
                initialization=state.einsum.initialization,
                sweeps=state.sweeps,
                level=state.level,
                after=state.after,
                relayout=state.relayout,
                reason=state.reason(rank),
            )
        )

    intervals: dict[str, list[tuple[int, int]]] = {}
    for state in states:
        if not state.sweeps:
            continue
        for tensor in state.fiber_tensors:
            intervals.setdefault(tensor, []).append((state.level, state.latest_level))
    tensor_passes = {tensor: _stabbing_number(spans) for tensor, spans in intervals.items()}

    extra = []
    for number in range(2, passes + 1):
        for state in states:
            if state.sweeps and state.level == number and state.forced_by is not None:
                waits_for, reduction = state.forced_by
                extra.append(ExtraPass(number, state.einsum.name, waits_for, reduction))
                break
    return RankPasses(rank, passes, tuple(levels), tensor_passes, tuple(extra), states)


def _stabbing_number(spans: list[tuple[int, int]]) -> int:
    """Return the minimum number of passes that meet every (earliest, latest) span of a tensor's touches."""
    count = 0
    last = None
    for earliest, latest in sorted(spans, key=lambda span: span[1]):
        if last is None or earliest > last:
            count += 1
            last = latest
    return count
