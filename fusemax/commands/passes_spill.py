"""On-chip footprint and spill length of a multi-pass cascade on one architecture.

The symbolic footprint of :mod:`einsum_cascades.passes_footprint` is
evaluated at the workload's rank sizes and compared with the global buffer's
capacity.  The spill length is the largest sequence length at which the live
footprint of ``rows`` query rows still fits: beyond it every mapping spills,
because the live fiber of even those rows does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Cascade
from einsum_cascades.passes_footprint import Footprint, evaluate_words, largest_fitting_length, missing_sizes
from fusemax.arch import Architecture


@dataclass(frozen=True)
class SpillEstimate:
    """A footprint evaluated at one workload, in words and, with an architecture, in bytes.

    ``fits_up_to`` is the largest length of ``length_ranks`` whose live
    footprint for ``rows`` rows fits in the global buffer, and
    ``all_rows_fit_up_to`` the same for every row of every batch and head at
    once.  Each is None when it fits at every length and 0 when it fits at
    none.  Sizes are None where a rank size they need was not given.
    """

    rank: str
    sizes: dict[str, int]
    rows: int
    length_ranks: tuple[str, ...]
    per_row_words: int | None
    total_words: int | None
    spill_words: int | None
    word_bits: int | None
    capacity_bytes: int | None
    fits_up_to: int | None
    all_rows_fit_up_to: int | None = None

    def bytes(self, words: int | None) -> float | None:
        """Convert words to bytes with the architecture's word width."""
        if words is None or self.word_bits is None:
            return None
        return words * self.word_bits / 8

    @property
    def resident_bytes(self) -> float | None:
        """Bytes the live footprint of ``rows`` rows needs."""
        return self.bytes(None if self.per_row_words is None else self.per_row_words * self.rows)

    @property
    def spills(self) -> bool | None:
        """Whether ``rows`` rows of the live footprint exceed the global buffer at this workload."""
        if self.resident_bytes is None or self.capacity_bytes is None:
            return None
        return self.resident_bytes > self.capacity_bytes

    def to_json(self) -> dict:
        result = {
            "sizes": dict(self.sizes),
            "rows": self.rows,
            "per_row_words": self.per_row_words,
            "total_words": self.total_words,
            "spill_traffic_words": self.spill_words,
        }
        if self.word_bits is not None:
            result.update(
                {
                    "per_row_bytes": self.bytes(self.per_row_words),
                    "resident_bytes": self.resident_bytes,
                    "total_bytes": self.bytes(self.total_words),
                    "spill_traffic_bytes": self.bytes(self.spill_words),
                    "capacity_bytes": self.capacity_bytes,
                    "spills": self.spills,
                    "length_ranks": list(self.length_ranks),
                    "fits_up_to": self.fits_up_to,
                    "all_rows_fit_up_to": self.all_rows_fit_up_to,
                }
            )
        return result


def length_ranks(cascade: Cascade, rank: str, tie_query_rank: bool) -> tuple[str, ...]:
    """Return the ranks whose common size is the sequence length in the spill-length search.

    A sub-rank's whole rank is used (tiles are a mapping choice).  In
    self-attention, where the key rank M and the query rank P are the same
    sequence, both grow together.
    """
    partition = cascade.partition_of(rank)
    whole = partition.rank if partition is not None else rank
    if tie_query_rank and whole in ("M", "P") and {"M", "P"} <= set(cascade.ranks):
        return ("M", "P")
    return (whole,)


def estimate_spill(
    cascade: Cascade,
    footprint: Footprint,
    sizes: dict[str, int],
    rows: int,
    arch: Architecture | None,
    tie_query_rank: bool,
) -> SpillEstimate:
    """Evaluate a footprint at ``sizes`` and, with an architecture, find the spill length.

    Raises
    ------
    CascadeError
        If the spill length needs a rank size that ``sizes`` lacks.
    """
    per_row = _maybe(cascade, footprint.per_row_words, sizes)
    total = _maybe(cascade, footprint.total_words, sizes)
    spill = _maybe(cascade, footprint.spill_words, sizes)
    ranks = length_ranks(cascade, footprint.rank, tie_query_rank)

    fits_up_to = all_rows_fit_up_to = None
    word_bits = capacity = None
    if arch is not None:
        word_bits = arch.word_bits
        capacity = arch.global_buffer.capacity_bytes
        budget_words = capacity * 8 // (word_bits * rows)
        trial = dict(sizes)
        trial.update({rank: 1 for rank in ranks})
        missing = missing_sizes(cascade, footprint.per_row_words, trial)
        if missing:
            needed = ", ".join(missing)
            raise CascadeError(
                f"the spill length over {footprint.rank} needs the size of rank(s) {needed}; "
                f"give --model, --shape or --sizes {missing[0]}=N"
            )
        fits_up_to = largest_fitting_length(cascade, footprint.per_row_words, sizes, ranks, budget_words)
        if not missing_sizes(cascade, footprint.total_words, trial):
            all_budget_words = capacity * 8 // word_bits
            all_rows_fit_up_to = largest_fitting_length(cascade, footprint.total_words, sizes, ranks, all_budget_words)
    return SpillEstimate(
        footprint.rank, dict(sizes), rows, ranks, per_row, total, spill, word_bits, capacity, fits_up_to, all_rows_fit_up_to
    )


def _maybe(cascade: Cascade, expr, sizes: dict[str, int]) -> int | None:
    """Evaluate ``expr``, or None when a size it needs is missing."""
    if missing_sizes(cascade, expr, sizes):
        return None
    return evaluate_words(cascade, expr, sizes)
