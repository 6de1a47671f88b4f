"""Properties of the pass analysis: counts never depend on names or on the order Einsums are written in."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from einsum_cascades.ir import Access, AffineExpr, Call, Cascade, Condition, Einsum, Index, Iteration, Partition, RankSize, Term
from einsum_cascades.library import library_names, load_library_cascade
from einsum_cascades.passes import analyze_passes
from einsum_cascades.passes_footprint import live_footprint, rank_symbol
from einsum_cascades.passes_ranks import rank_classes
from einsum_cascades.passes_reads import resolve_reads

NAMES = sorted(library_names())
CASCADES = {name: load_library_cascade(name) for name in NAMES}
REPORTS = {name: analyze_passes(cascade) for name, cascade in CASCADES.items()}


class Renaming:
    """Consistent new names for the ranks (and so the rank variables) and the tensors of a cascade."""

    def __init__(self, ranks: dict[str, str], tensors: dict[str, str]):
        self.ranks = ranks
        self.tensors = tensors

    def factor(self, factor: str) -> str:
        if factor.islower():
            return self.ranks[factor.upper()].lower()
        return self.ranks[factor]

    def affine(self, expr: AffineExpr) -> AffineExpr:
        return AffineExpr(tuple(Term(term.coefficient, tuple(self.factor(f) for f in term.factors)) for term in expr.terms))

    def condition(self, condition: Condition) -> Condition:
        return Condition(self.affine(condition.left), condition.operator, self.affine(condition.right))

    def access(self, access: Access) -> Access:
        indices = tuple(
            Index(self.affine(index.expr), tuple(self.condition(c) for c in index.filters)) for index in access.indices
        )
        return Access(self.tensors[access.tensor], indices, access.position)

    def expr(self, expr):
        if isinstance(expr, Access):
            return self.access(expr)
        if isinstance(expr, Call):
            return replace(expr, args=tuple(self.expr(arg) for arg in expr.args))
        if isinstance(expr, RankSize):
            return RankSize(self.ranks[expr.rank])
        return expr

    def einsum(self, einsum: Einsum) -> Einsum:
        return replace(
            einsum,
            output=self.access(einsum.output),
            expr=self.expr(einsum.expr),
            reduced_variables=tuple(self.factor(v) for v in einsum.reduced_variables),
        )

    def cascade(self, cascade: Cascade) -> Cascade:
        iteration = None
        if cascade.iteration is not None:
            iteration = Iteration(self.factor(cascade.iteration.variable), self.condition(cascade.iteration.stop))
        return replace(
            cascade,
            ranks=tuple(self.ranks[r] for r in cascade.ranks),
            batch_ranks=tuple(self.ranks[r] for r in cascade.batch_ranks),
            partitions=tuple(Partition(self.ranks[p.rank], tuple(self.ranks[r] for r in p.parts)) for p in cascade.partitions),
            inputs=tuple(self.tensors[t] for t in cascade.inputs),
            outputs=tuple(self.tensors[t] for t in cascade.outputs),
            tensors={self.tensors[t]: tuple(self.ranks[r] for r in ranks) for t, ranks in cascade.tensors.items()},
            initialization=tuple(self.einsum(e) for e in cascade.initialization),
            einsums=tuple(self.einsum(e) for e in cascade.einsums),
            iteration=iteration,
            reference=None,
        )


@st.composite
def renamed_cascades(draw):
    name = draw(st.sampled_from(NAMES))
    cascade = CASCADES[name]
    rank_names = draw(
        st.lists(st.from_regex(r"[A-Z][A-Z0-9]{0,3}", fullmatch=True), min_size=len(cascade.ranks),
                 max_size=len(cascade.ranks), unique=True)
    )
    tensor_names = draw(
        st.lists(st.from_regex(r"[A-Z][A-Za-z0-9_]{0,5}", fullmatch=True), min_size=len(cascade.tensors),
                 max_size=len(cascade.tensors), unique=True)
    )
    renaming = Renaming(dict(zip(cascade.ranks, rank_names)), dict(zip(cascade.tensors, tensor_names)))
    return name, renaming, renaming.cascade(cascade)


@settings(max_examples=60, deadline=None)
@given(renamed_cascades())
def test_renaming_keeps_pass_counts(case):
    name, renaming, renamed = case
    expected = {renaming.ranks[rank]: count for rank, count in REPORTS[name].passes.items()}
    assert analyze_passes(renamed).passes == expected


@settings(max_examples=30, deadline=None)
@given(renamed_cascades())
def test_renaming_keeps_levels_and_fibers(case):
    name, renaming, renamed = case
    report = analyze_passes(renamed)
    for rank, original in REPORTS[name].ranks.items():
        result = report.ranks[renaming.ranks[rank]]
        levels = [(renaming.tensors[e.einsum], e.sweeps, e.level, e.after) for e in original.einsums]
        assert [(e.einsum, e.sweeps, e.level, e.after) for e in result.einsums] == levels
        fibers = {renaming.tensors[tensor]: count for tensor, count in original.tensor_passes.items()}
        assert result.tensor_passes == fibers


@settings(max_examples=20, deadline=None)
@given(renamed_cascades())
def test_renaming_keeps_footprint(case):
    name, renaming, renamed = case
    cascade = CASCADES[name]
    symbols = {rank_symbol(old): rank_symbol(new) for old, new in renaming.ranks.items()}
    report = analyze_passes(renamed)
    for rank, original in REPORTS[name].ranks.items():
        if original.passes < 2:
            continue
        before = live_footprint(cascade, original)
        after = live_footprint(renamed, report.ranks[renaming.ranks[rank]])
        assert after.per_row_words == before.per_row_words.xreplace(symbols)
        assert after.spill_words == before.spill_words.xreplace(symbols)


def _reordered(cascade: Cascade, choices) -> Cascade:
    """The cascade with its Einsums in another order that still writes each value before reading it."""
    classes = rank_classes(cascade)
    einsums = list(cascade.initialization) + list(cascade.einsums)
    offset = len(cascade.initialization)
    needs = {}
    for index in range(offset, len(einsums)):
        needs[index] = {
            writer
            for _, writer, read in resolve_reads(cascade, classes, einsums, index)
            if writer is not None and writer >= offset and writer != index and (read is None or read.kind != "previous")
        }
    order: list[int] = []
    while len(order) < len(needs):
        ready = [index for index in needs if index not in order and needs[index] <= set(order)]
        order.append(choices.choice(sorted(ready)))
    return replace(cascade, einsums=tuple(einsums[index] for index in order))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(NAMES), st.randoms(use_true_random=False))
def test_einsum_order_keeps_pass_counts(name, choices):
    reordered = _reordered(CASCADES[name], choices)
    assert analyze_passes(reordered).passes == REPORTS[name].passes
