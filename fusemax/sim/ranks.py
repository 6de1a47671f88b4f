"""Block coverage of an Einsum's ranks: exact points per block and register words per tile.

Ranks are whole partitions (``M`` when an Einsum iterates both ``M1`` and
``M0``) or single ranks, each split into the mapping's factors, outermost
first.  A block fixes the factors that are block loops; the others run inside
the block.
"""

from __future__ import annotations

from math import prod

from einsum_cascades.ir import Cascade

ARRAYS = ("array2d", "array1d")


def rank_descriptors(cascade: Cascade, einsum: str, factors, tiling, block_loops) -> tuple[int, list[tuple[int, int, dict[int, int]]]]:
    """Describe a block's points: a base count and, per rank with block loops, (size, inner, loop weights)."""
    ranks = list(dict.fromkeys(cascade.batch_ranks + tuple(v.upper() for v in cascade.einsum(einsum).variables)))
    grouped: list[tuple[int, list[str]]] = []
    for partition in cascade.partitions:
        if all(part in ranks for part in partition.parts):
            parts: list[str] = []
            for part in partition.parts:
                parts.extend(tiling[part].factors if part in tiling else [part])
                ranks.remove(part)
            grouped.append((factors.rank_size[partition.rank], parts))
    for rank in ranks:
        grouped.append((factors.rank_size[rank], list(tiling[rank].factors) if rank in tiling else [rank]))
    base = 1
    descriptors = []
    for size, rank_factors in grouped:
        rank_factors = [f for f in rank_factors if factors.size[f] > 1]  # loops of one iteration change nothing
        in_block = [f for f in rank_factors if f in block_loops]
        if not in_block:
            base *= size
            continue
        prefix = rank_factors[: len(in_block)]
        if prefix != in_block:
            base *= size  # NOTE: a block loop inside a non-block factor of the same rank; partial tiles are not split
            continue
        inner = prod(factors.size[f] for f in rank_factors[len(in_block) :])
        weights = {}
        for i, factor in enumerate(in_block):
            weights[block_loops.index(factor)] = prod(factors.size[f] for f in in_block[i + 1 :])
        descriptors.append((size, inner, weights))
    return base, descriptors


def register_words(names, arrays, lags, dependencies, cascade, factors, block_loops, arch) -> dict[str, int]:
    """Register words per processing element that the lags need for tensors read in place."""
    live: dict[tuple[str, str], int] = {}
    for dep in dependencies:
        if dep.path != "registers" or arrays[dep.producer] != arrays[dep.consumer]:
            continue
        key = (arrays[dep.producer], dep.tensor)
        blocks_live = lags[dep.consumer] - lags[dep.producer] + dep.distance + 1
        live[key] = max(live.get(key, 0), blocks_live)
    words: dict[str, int] = {array: 0 for array in ARRAYS}
    for (array, tensor), blocks_live in live.items():
        tile = 1
        for rank in cascade.tensor_ranks(tensor):
            rank_factors = factors.factors_of(rank) or [rank]
            tile *= prod(factors.size[f] for f in rank_factors if f not in block_loops)
        elements = arch.array(array).processing_elements
        words[array] += blocks_live * -(-tile // elements)
    return words
