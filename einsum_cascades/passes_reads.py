"""Reads resolved to the Einsums that wrote them, and the order of Einsums within one step.

Initialization Einsums come first, then the cascade proper; an Einsum is
referred to by its index in that list.  A read of an earlier iterate of the
iterative rank (a loop-carried dependency) does not order Einsums within a
step, so only such reads may close a cycle.
"""

from __future__ import annotations

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Access, Cascade, Einsum
from einsum_cascades.passes_ranks import IterateRead, is_relayout, iterate_read

# A resolved read: the access, the index of the Einsum that wrote the value
# (None for a cascade input) and how it reads an iterate (None if plainly).
Read = tuple[Access, int | None, IterateRead | None]


def resolve_reads(cascade: Cascade, classes: dict[str, str], einsums: list[Einsum], index: int) -> list[Read]:
    """Resolve each read of Einsum ``index`` to the Einsum that wrote the value it reads."""
    einsum = einsums[index]
    init_writer = {e.name: i for i, e in enumerate(einsums) if e.initialization}
    main_writer = {e.name: i for i, e in enumerate(einsums) if not e.initialization}

    reads: list[Read] = []
    for access in einsum.accesses:
        tensor = access.tensor
        if einsum.initialization or tensor not in main_writer:
            reads.append((access, init_writer.get(tensor), None))
            continue
        writer = main_writer[tensor]
        read = iterate_read(cascade, classes, access, einsums[writer])
        if read is not None and read.kind == "fixed" and tensor in init_writer:
            reads.append((access, init_writer[tensor], None))
        else:
            reads.append((access, writer, read))
    if einsum.populate is not None and not einsum.initialization and einsum.name in init_writer:
        # Populating with add, max or min combines with the value the initialization wrote.
        reads.append((einsum.output, init_writer[einsum.name], None))
    return reads


def dependency_order(einsums: list[Einsum], sources: list[list[Read]]) -> list[int]:
    """Order Einsums so that each comes after the writers of what it reads in the same step."""
    needs: dict[int, set[int]] = {index: set() for index in range(len(einsums))}
    for index, reads in enumerate(sources):
        for _, writer, read in reads:
            if writer is None or (read is not None and read.kind == "previous"):
                continue
            needs[index].add(writer)

    order: list[int] = []
    done: set[int] = set()
    while len(order) < len(einsums):
        ready = [index for index in range(len(einsums)) if index not in done and needs[index] <= done]
        if not ready:
            stuck = [einsums[index] for index in range(len(einsums)) if index not in done]
            names = ", ".join(e.name for e in stuck)
            raise CascadeError(
                f"dependency cycle among Einsums {names} that does not run through the iterative rank; "
                f"a value may depend on itself only through an earlier iterate such as RM[m1, p]",
                stuck[0].position,
            )
        order.append(ready[0])
        done.add(ready[0])
    return order


def relayout_sources(einsums: list[Einsum], order: list[int], sources: list[list[Read]]) -> dict[str, str]:
    """Map each tensor that a relayout copy writes to the tensor it copies, through chains."""
    aliases: dict[str, str] = {}
    for index in order:
        einsum = einsums[index]
        if is_relayout(einsum):
            source = sources[index][0][0].tensor
            aliases[einsum.name] = aliases.get(source, source)
    return aliases


def dependency_edges(cascade: Cascade, classes: dict[str, str]) -> list[tuple[int | None, int, str, str]]:
    """List every read as (writer index or None for an input, reader index, tensor, kind).

    Indices count initialization Einsums first, then the cascade proper.
    ``kind`` is ``plain``, ``previous`` (an earlier iterate), ``initial``
    (the first iterate, which the initialization writes and ``previous``
    reads at the first step), ``current``, ``terminal`` (the last iterate)
    or ``fixed``.
    """
    einsums = list(cascade.initialization) + list(cascade.einsums)
    init_writer = {e.name: i for i, e in enumerate(einsums) if e.initialization}
    edges = []
    for index in range(len(einsums)):
        for access, writer, read in resolve_reads(cascade, classes, einsums, index):
            edges.append((writer, index, access.tensor, "plain" if read is None else read.kind))
            if read is not None and read.kind == "previous" and access.tensor in init_writer:
                # At the first step the earlier iterate is the one the initialization wrote.
                edges.append((init_writer[access.tensor], index, access.tensor, "initial"))
    return edges
