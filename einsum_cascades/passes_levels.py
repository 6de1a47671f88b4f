"""The level computation behind the pass analysis, for one target rank.

Every tensor gets a :class:`TensorState` relative to the target's fiber, and
every Einsum an :class:`EinsumState`.  The Einsums are visited in dependency
order within one step of the iterative rank.  Reads of an earlier iterate
(loop-carried dependencies) feed back into the next round until nothing
changes.  The rules are stated in ``einsum_cascades.passes``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Access, Cascade, Einsum
from einsum_cascades.passes_ranks import IterateRead, Target, fixed_variables, is_relayout, iteration_classes
from einsum_cascades.passes_reads import Read, dependency_order, relayout_sources, resolve_reads


@dataclass(frozen=True)
class TensorState:
    """When the elements of a tensor exist, relative to the sweeps of one fiber.

    ``streamed`` false: every element exists once ``level`` complete sweeps
    are done.  ``streamed`` true: elements appear during sweep ``level + 1``
    as it proceeds, and ``coverage`` lists the rank classes of the fiber that
    each element already depends on in full.  ``origin`` names the Einsum
    whose full reduction made a settled state wait.  ``cause`` is the
    (tensor, full reduction) pair that pushed a streamed state into its sweep.
    ``earlier`` marks a value of an earlier step of an iterative rank that is
    not part of the fiber, whose sweeps may have been of other fibers.
    """

    level: int
    streamed: bool
    coverage: frozenset[str] = frozenset()
    origin: str | None = None
    cause: tuple[str, str] | None = None
    earlier: bool = False

    @property
    def ready(self) -> int:
        """Number of complete sweeps after which every element exists."""
        return self.level + 1 if self.streamed else self.level


AVAILABLE = TensorState(0, False)


@dataclass(frozen=True)
class EinsumState:
    """One Einsum's place among the sweeps of the target fiber.

    ``reads`` and ``writes`` name tensors after resolving relayout copies to
    the tensor they copy, and ``fiber_tensors`` are those of them that have a
    rank of the fiber.  ``forced_by`` is the (tensor, full reduction) pair
    that puts a sweeping Einsum after the previous pass.  ``index`` counts
    initialization Einsums first.  ``needs`` lists (index, strict) of the
    Einsums this one must not precede, strictly when it reads what their
    sweep settles.  ``time`` and ``latest_time`` bound its position in every
    schedule that makes the minimum number of passes.
    """

    einsum: Einsum
    sweeps: bool
    relayout: bool
    level: int
    after: bool
    output: TensorState
    forced_by: tuple[str, str] | None
    cause: str | None
    reads: tuple[str, ...]
    writes: str | None
    fiber_tensors: tuple[str, ...]
    index: int = 0
    needs: tuple[tuple[int, bool], ...] = ()
    latest_time: int = 0

    @property
    def time(self) -> int:
        """Earliest position on a timeline where pass k is ``2k`` and the gap after pass k is ``2k + 1``."""
        if self.sweeps or not self.after:
            return 2 * self.level
        return 2 * self.level + 1

    @property
    def latest_level(self) -> int:
        """Latest pass this Einsum can sweep in without adding a pass (for sweeping Einsums)."""
        return self.latest_time // 2

    def reason(self, rank: str) -> str:
        """Explain in one sentence why the Einsum is at its position."""
        if self.relayout:
            return f"copies {self.reads[0]} into another layout, which is not a sweep"
        if self.sweeps:
            text = f"sweeps the {rank} fiber in pass {self.level}"
            if self.forced_by is not None and self.level > 1:
                waits_for, reduction = self.forced_by
                if self.cause == waits_for:
                    text += f" because it needs {waits_for}, complete only after pass {self.level - 1} ({reduction} needs the whole fiber)"
                else:
                    text += f" because it reads {self.cause}, which waits for {waits_for} ({reduction} needs the whole fiber)"
            if not self.output.streamed:
                text += f"; it reduces the whole fiber, so {self.einsum.name} is complete only after pass {self.level}"
            return text
        if self.after and self.level == 0:
            return f"does not sweep the {rank} fiber and needs no complete pass"
        if self.after and self.output.origin == self.einsum.name:
            return f"reduces the rest of the {rank} fiber from summaries, so it is complete only after pass {self.level}"
        if self.after:
            return f"does not sweep the {rank} fiber; it runs after pass {self.level} because it reads {self.cause}"
        return f"does not sweep the {rank} fiber; it runs on summaries during pass {self.level}"


def analyze_target(cascade: Cascade, classes: dict[str, str], target: Target) -> tuple[EinsumState, ...]:
    """Compute the state of every Einsum (initialization first) relative to ``target``.

    Raises
    ------
    CascadeError
        On a dependency cycle that does not run through the iterative rank,
        or when the passes would grow with the number of iterations.
    """
    einsums = list(cascade.initialization) + list(cascade.einsums)
    sources = [resolve_reads(cascade, classes, einsums, index) for index in range(len(einsums))]
    order = dependency_order(einsums, sources)
    aliases = relayout_sources(einsums, order, sources)

    states: dict[int, EinsumState] = {}
    limit = len(einsums) + 1
    for _ in range(4 * limit + 4):
        changed = False
        for index in order:
            state = _einsum_state(cascade, classes, target, einsums, index, sources[index], states, aliases)
            if state.level > limit:
                raise CascadeError(
                    f"Einsum {state.einsum.name} needs a complete sweep of the {target.rank} fiber at every step "
                    f"of the iterative rank, so its passes grow with the number of iterations; "
                    f"a recurrence may read only a prefix of the fiber",
                    state.einsum.position,
                )
            if states.get(index) != state:
                states[index] = state
                changed = True
        if not changed:
            needs = _ordering_needs(target, states, sources)
            states = {index: replace(state, needs=needs[index]) for index, state in states.items()}
            latest = _latest_times(states, order)
            return tuple(replace(states[index], latest_time=latest[index]) for index in range(len(einsums)))
    raise CascadeError(f"pass analysis of rank {target.rank} did not settle", einsums[0].position)


def _read_state(target: Target, states: dict[int, EinsumState], writer: int | None, read: IterateRead | None) -> TensorState:
    if writer is None:
        return AVAILABLE
    if writer not in states:
        return AVAILABLE
    if read is not None and read.kind == "previous" and read.iterative_class not in target.classes:
        # Whether its sweeps were of this fiber is decided by the sweeping Einsum that uses it.
        return replace(states[writer].output, earlier=True)
    state = states[writer].output
    if read is not None and read.kind == "terminal" and read.iterative_class in target.classes and state.streamed:
        coverage = state.coverage | {read.iterative_class}
        if target.is_full(coverage):
            return TensorState(state.level + 1, False, origin=states[writer].einsum.name)
        return TensorState(state.level, True, coverage, cause=state.cause)
    return state


def _sweeps_other_fiber_each_step(cascade: Cascade, classes: dict[str, str], target: Target, einsum: Einsum) -> bool:
    """Return whether every access of the Einsum that walks the fiber also walks the iterative rank.

    ``BQK[m1, m0, p] = Q[e, p] * BK[e, m1, m0]`` sweeps a new M0 fiber at each
    ``m1``; ``T[i] = A[k] * X[i]`` sweeps the same K fiber of ``A`` at every ``i``.
    """
    if cascade.iteration is None:
        return False
    iterative = classes[cascade.iteration.variable.upper()]
    fixed = fixed_variables(einsum)
    for access in (einsum.output,) + einsum.accesses:
        if not _walks_fiber(classes, target, access, fixed):
            continue
        if not any(classes[v.upper()] == iterative for v in access.variables if v not in fixed):
            return False
    return True


def _walks_fiber(classes: dict[str, str], target: Target, access: Access, fixed: set[str]) -> bool:
    """Return whether an access walks part of the target's fiber (``RM[M1, p]`` reads one iterate and does not)."""
    return any(classes[v.upper()] in target.classes for v in access.variables if v not in fixed)


def _einsum_state(
    cascade: Cascade,
    classes: dict[str, str],
    target: Target,
    einsums: list[Einsum],
    index: int,
    reads: list[Read],
    states: dict[int, EinsumState],
    aliases: dict[str, str],
) -> EinsumState:
    einsum = einsums[index]
    inputs: list[tuple[str, TensorState]] = []
    for access, writer, read in reads:
        inputs.append((access.tensor, _read_state(target, states, writer, read)))

    relayout = is_relayout(einsum)
    sweeps = not relayout and target.is_full(iteration_classes(einsum, classes))
    reduced = frozenset(classes[v.upper()] for v in einsum.reduced_variables) & target.classes
    if sweeps and _sweeps_other_fiber_each_step(cascade, classes, target, einsum):
        # Each step sweeps another fiber (another tile), so what an earlier step
        # completed needs no sweep of this one.
        # NOTE: this undercounts, still a valid lower bound, when the earlier
        # value also depends on a reduction of the whole rank.
        inputs = [(name, AVAILABLE if state.earlier else state) for name, state in inputs]
    if relayout:
        output = inputs[0][1]
        level, after = (output.level + 1, False) if output.streamed else (output.level, True)
        cause, forced_by = None, None
    elif sweeps:
        level, output, cause, forced_by = _sweeping_output(einsum, target, inputs, reduced)
        after = False
    else:
        level, after, output, cause = _summary_output(einsum, target, inputs, reduced)
        forced_by = None

    read_names = tuple(aliases.get(access.tensor, access.tensor) for access, _, _ in reads)
    writes = None if relayout else einsum.name
    fixed = fixed_variables(einsum)
    touched = []
    for (access, _, _), name in zip(reads, read_names):
        if _walks_fiber(classes, target, access, fixed):
            touched.append(name)
    if writes is not None and _walks_fiber(classes, target, einsum.output, fixed):
        touched.append(writes)
    unique = tuple(dict.fromkeys(touched))
    return EinsumState(
        einsum=einsum,
        sweeps=sweeps,
        relayout=relayout,
        level=level,
        after=after,
        output=output,
        forced_by=forced_by,
        cause=cause,
        reads=read_names,
        writes=writes,
        fiber_tensors=unique,
        index=index,
    )


def _sweeping_output(
    einsum: Einsum, target: Target, inputs: list[tuple[str, TensorState]], reduced: frozenset[str]
) -> tuple[int, TensorState, str | None, tuple[str, str] | None]:
    """Sweep number, output state, deciding input and forcing pair of an Einsum that sweeps the fiber."""
    level = max((state.level for _, state in inputs), default=0) + 1
    coverage = set(reduced)
    settled: list[tuple[str, str]] = []
    streamed: list[tuple[str, tuple[str, str] | None]] = []
    for name, state in inputs:
        if state.level != level - 1:
            continue
        if state.streamed:
            # Produced earlier in this same sweep: its coverage counts toward completing the fiber.
            coverage |= state.coverage
            streamed.append((name, state.cause))
        elif state.origin is not None:
            settled.append((name, state.origin))

    cause: str | None = None
    forced_by: tuple[str, str] | None = None
    if settled:
        cause, forced_by = settled[0][0], settled[0]
    elif streamed:
        cause, forced_by = streamed[0]
    if target.is_full(frozenset(coverage)):
        output = TensorState(level, False, origin=einsum.name)
    else:
        output = TensorState(level - 1, True, frozenset(coverage), cause=forced_by)
    return level, output, cause, forced_by


def _summary_output(
    einsum: Einsum, target: Target, inputs: list[tuple[str, TensorState]], reduced: frozenset[str]
) -> tuple[int, bool, TensorState, str | None]:
    """Level, ``after`` flag, output state and deciding input of an Einsum that does not sweep the fiber."""
    streamed_ready = max((state.ready for _, state in inputs if state.streamed), default=None)
    settled_ready = max((state.ready for _, state in inputs if not state.streamed), default=0)

    if streamed_ready is None or streamed_ready <= settled_ready:
        # Everything it reads exists once pass settled_ready is complete.
        deciding = [state for _, state in inputs if not state.streamed and state.level == settled_ready]
        earlier = bool(deciding) and all(state.earlier for state in deciding)
        for name, state in inputs:
            if not state.streamed and state.level == settled_ready and settled_ready > 0:
                return settled_ready, True, TensorState(settled_ready, False, origin=state.origin, earlier=earlier), name
        return settled_ready, True, TensorState(settled_ready, False, earlier=earlier), None

    coverage = set(reduced)
    cause: str | None = None
    forced_by: tuple[str, str] | None = None
    deciding = []
    for name, state in inputs:
        if state.streamed and state.ready == streamed_ready:
            coverage |= state.coverage
            deciding.append(state)
            if cause is None:
                cause, forced_by = name, state.cause
    earlier = all(state.earlier for state in deciding)
    if target.is_full(frozenset(coverage)):
        # Its reduction over summaries finishes what the sweep started.
        return streamed_ready, True, TensorState(streamed_ready, False, origin=einsum.name, earlier=earlier), cause
    output = TensorState(streamed_ready - 1, True, frozenset(coverage), cause=forced_by, earlier=earlier)
    return streamed_ready, False, output, cause


def _ordering_needs(
    target: Target, states: dict[int, EinsumState], sources: list[list[Read]]
) -> dict[int, tuple[tuple[int, bool], ...]]:
    """For each Einsum, the Einsums it must not come before, and whether it must come strictly after.

    A reader of a value a sweep settles, of the last iterate of a recurrence,
    or one that reduces the rest of a streamed value comes after the writer.
    Any other reader may share the writer's position.  Reads of an earlier
    step outside the fiber impose nothing within a step.
    """
    needs: dict[int, list[tuple[int, bool]]] = {index: [] for index in states}
    for consumer, reads in enumerate(sources):
        for _, writer, read in reads:
            if writer is None or writer == consumer:
                continue
            if read is not None and read.kind == "previous" and read.iterative_class not in target.classes:
                continue
            seen = _read_state(target, states, writer, read)
            prefix = read is not None and read.kind == "previous"
            reader = states[consumer]
            # Strict: the value is complete only when the writer's sweep (or the
            # recurrence) ends, or the reader reduces all of what the sweep streams.
            settled_by_sweep = states[writer].sweeps and not seen.streamed and not prefix
            last_iterate = not seen.streamed and states[writer].output.streamed
            completes = seen.streamed and not reader.sweeps and reader.output.origin == reader.einsum.name
            needs[consumer].append((writer, settled_by_sweep or last_iterate or completes))
    return {index: tuple(dict.fromkeys(found)) for index, found in needs.items()}


def _latest_times(states: dict[int, EinsumState], order: list[int]) -> dict[int, int]:
    """Latest timeline position of every Einsum that keeps the pass count at its minimum."""
    passes = max((state.level for state in states.values() if state.sweeps), default=0)
    latest = {index: max(2 * passes + 1, states[index].time) for index in states}
    changed = True
    while changed:
        changed = False
        for index in reversed(order):
            bound = 2 * passes + 1
            for consumer in order:
                for writer, strict in states[consumer].needs:
                    if writer == index:
                        bound = min(bound, latest[consumer] - 1 if strict else latest[consumer])
            if states[index].sweeps:
                bound -= bound % 2
            bound = max(bound, states[index].time)
            if bound != latest[index]:
                latest[index] = bound
                changed = True
    return latest
