"""Cycle-level GEMM on a plain systolic array, with SCALE-Sim's conventions.

A GEMM multiplies an ifmap of M x K by a filter of K x N into an ofmap of
M x N.  Each dataflow maps two of the three ranks onto the array and streams
the third through it (SCALE-Sim's spatial rows Sr, spatial columns Sc and
temporal T):

========  ==========  ==========  =========  ===================================
dataflow  Sr (rows)   Sc (cols)   T          stationary operand
========  ==========  ==========  =========  ===================================
``os``    M           N           K          the ofmap (partial sums stay in PEs)
``ws``    K           N           M          the filter
``is``    K           M           N          the ifmap
========  ==========  ==========  =========  ===================================

When Sr or Sc exceeds the array, the work is split into folds of at most
rows x cols.  A partial fold is padded, so it takes as long as a full one.
In a fold, operands enter skewed, so processing element (i, j) performs its
t-th multiply-accumulate ``i + j`` cycles after the t-th operand enters the
array.  Weight- and input-stationary folds first preload the stationary
operand, one array row per cycle.  One fold therefore lasts

* ``T + rows + cols - 2`` cycles for ``os``, because results drain on a
  separate path while the next fold runs;
* ``2 rows + cols + T - 2`` cycles for ``ws`` and ``is``.

Without overlap, folds run back to back.  With overlap (the default), the
array is double-buffered: the next fold's operands enter right behind the
current fold's, and the next stationary operand is preloaded while the
current fold streams.  Full folds run before partial ones, which changes
no count.

``cycles`` is the cycle, counted from 0 at the first operand, in which the
last multiply-accumulate happens.  SCALE-Sim 3.0.0 (the ``scalesim`` pip
package) reports the same number as its compute cycles, so without overlap
F folds give ``F x fold_cycles - 1``.  ``tests/test_sim_gemm.py`` checks this
against SCALE-Sim's own outputs.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numba
import numpy as np

from fusemax.errors import SpecError

DATAFLOWS = ("os", "ws", "is")


@dataclass(frozen=True)
class GemmResult:
    """Cycle-level result of one GEMM; counts are exact integers."""

    M: int
    N: int
    K: int
    rows: int
    cols: int
    dataflow: str
    overlap: bool
    cycles: int
    folds: int
    fold_cycles: int
    macs: int
    active_cycles: int
    fast_forward_folds: int

    @property
    def utilization(self) -> float:
        """MACs over ``cycles x rows x cols`` (SCALE-Sim's overall utilization)."""
        return self.macs / (self.cycles * self.rows * self.cols) if self.cycles else 0.0

    @property
    def mapping_efficiency(self) -> float:
        """Mean fraction of the array that the folds map work onto."""
        spatial_rows, spatial_cols, temporal = fold_geometry(self.M, self.N, self.K, self.dataflow)
        return spatial_rows * spatial_cols / (self.folds * self.rows * self.cols)

    def to_json(self) -> dict:
        """Return the result as the JSON object of ``fusemax simulate --gemm --json``."""
        data = asdict(self)
        data["utilization"] = self.utilization
        data["mapping_efficiency"] = self.mapping_efficiency
        return data


def parse_gemm(text: str) -> tuple[int, int, int]:
    """Parse ``M=..,N=..,K=..`` into ``(M, N, K)``.

    Raises
    ------
    SpecError
        On a malformed entry, an unknown or missing rank, or a size that is not a positive integer.

    Examples
    --------
    >>> parse_gemm("M=1024,N=1024,K=64")
    (1024, 1024, 64)
    """
    sizes: dict[str, int] = {}
    for entry in str(text).split(","):
        if not entry.strip():
            continue
        match = re.fullmatch(r"\s*([MNK])\s*=\s*(\d+)\s*", entry)
        if match is None:
            raise SpecError(f"--gemm: invalid entry {entry.strip()!r}; write M=..,N=..,K=.. with positive integers")
        sizes[match.group(1)] = int(match.group(2))
    missing = [rank for rank in "MNK" if rank not in sizes]
    if missing:
        raise SpecError(f"--gemm: missing {', '.join(missing)}; write M=..,N=..,K=.., as M=1024,N=1024,K=64")
    zero = [rank for rank in "MNK" if sizes[rank] <= 0]
    if zero:
        raise SpecError(f"--gemm: invalid {zero[0]}={sizes[zero[0]]}; sizes must be positive integers")
    return sizes["M"], sizes["N"], sizes["K"]


def parse_array(text: str) -> tuple[int, int]:
    """Parse an array size ``RxC`` (rows by columns) into ``(rows, cols)``.

    Examples
    --------
    >>> parse_array("256x128")
    (256, 128)
    """
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if match is None or int(match.group(1)) <= 0 or int(match.group(2)) <= 0:
        raise SpecError(f"--array: invalid array size {text!r}; write ROWSxCOLS with positive integers, as 256x256")
    return int(match.group(1)), int(match.group(2))


def fold_geometry(M: int, N: int, K: int, dataflow: str) -> tuple[int, int, int]:
    """Return ``(Sr, Sc, T)``: the ranks mapped to array rows, to array columns and to time."""
    if dataflow == "os":
        return M, N, K
    if dataflow == "ws":
        return K, N, M
    if dataflow == "is":
        return K, M, N
    raise SpecError(f"--dataflow: unknown dataflow {dataflow!r}; dataflows: {', '.join(DATAFLOWS)}")


def fold_cycles(rows: int, cols: int, temporal: int, dataflow: str) -> int:
    """Cycles one (padded) fold occupies the array when folds run back to back."""
    skew = temporal + rows + cols - 2
    return skew if dataflow == "os" else rows + skew


def simulate_gemm(
    M: int,
    N: int,
    K: int,
    rows: int,
    cols: int,
    dataflow: str,
    overlap: bool = True,
    fast_forward: bool = True,
) -> GemmResult:
    """Simulate a GEMM on a ``rows x cols`` systolic array, stepping every cycle.

    Parameters
    ----------
    M, N, K : int
        Ifmap M x K, filter K x N, ofmap M x N (SCALE-Sim's GEMM convention).
    rows, cols : int
        Array size in processing elements.
    dataflow : {"os", "ws", "is"}
        Output, weight or input stationary.
    overlap : bool
        Double-buffer the array so consecutive folds overlap; False runs
        folds back to back as SCALE-Sim does.
    fast_forward : bool
        Skip runs of identical folds once the fold pipeline is periodic; the
        result equals stepping every cycle.

    Returns
    -------
    GemmResult
        ``cycles`` is the cycle of the last multiply-accumulate, counted from 0.

    Examples
    --------
    >>> simulate_gemm(1024, 1024, 64, 256, 256, "os", overlap=False).cycles
    9183
    >>> simulate_gemm(1024, 1024, 64, 256, 256, "os").cycles
    1533
    """
    spatial_rows, spatial_cols, temporal = fold_geometry(M, N, K, dataflow)
    for name, value in (("M", M), ("N", N), ("K", K), ("rows", rows), ("cols", cols)):
        if int(value) <= 0:
            raise SpecError(f"GEMM {name} must be a positive integer, got {value}")
    row_folds = -(-spatial_rows // rows)
    col_folds = -(-spatial_cols // cols)
    last_rows = spatial_rows - (row_folds - 1) * rows
    last_cols = spatial_cols - (col_folds - 1) * cols
    preload = 0 if dataflow == "os" else rows
    last_mac, macs, active, skipped = _gemm_kernel(
        row_folds, col_folds, rows, cols, last_rows, last_cols, temporal, preload, overlap, fast_forward
    )
    return GemmResult(
        M=M,
        N=N,
        K=K,
        rows=rows,
        cols=cols,
        dataflow=dataflow,
        overlap=overlap,
        cycles=int(last_mac),
        folds=row_folds * col_folds,
        fold_cycles=fold_cycles(rows, cols, temporal, dataflow),
        macs=int(macs),
        active_cycles=int(active),
        fast_forward_folds=int(skipped),
    )


@numba.njit(cache=True)
def _macs_up_to(x: int, fold_rows: int, fold_cols: int) -> int:
    """Count PEs (i, j) of a fold with ``i + j <= x``: the diagonals the skewed wavefront has reached."""
    if x < 0:
        return 0
    reach = x + 1
    last_row = min(fold_rows - 1, x)
    full = min(max(reach - fold_cols + 1, 0), last_row + 1)
    count = full * fold_cols
    first = full
    if first <= last_row:
        terms = last_row - first + 1
        count += terms * reach - (first + last_row) * terms // 2
    return count


@numba.njit(cache=True)
def _fold_dims(fold, row_folds, col_folds, rows, cols, last_rows, last_cols):
    """Rows and columns that fold ``fold`` maps; full folds come first, partial ones last."""
    full_rows = row_folds - 1
    full_cols = col_folds - 1
    if fold < full_rows * full_cols:
        return rows, cols
    fold -= full_rows * full_cols
    if fold < full_rows:
        return rows, last_cols
    fold -= full_rows
    if fold < full_cols:
        return last_rows, cols
    return last_rows, last_cols


@numba.njit(cache=True)
def _gemm_kernel(row_folds, col_folds, rows, cols, last_rows, last_cols, temporal, preload, overlap, fast_forward):
    # Fold f's operands start streaming at cycle preload + f * spacing, and PE (i, j)
    # does the fold's t-th MAC t + i + j cycles later. Back to back, a fold takes
    # its preload, its T operands and the skew across the array. Double-buffered,
    # the next fold streams right behind the current one unless its preload,
    # which waits for the current fold to start streaming, takes longer.
    folds = row_folds * col_folds
    tail = rows + cols - 2
    if overlap:
        spacing = max(temporal, preload)
    else:
        spacing = preload + temporal + tail
    end = preload + (folds - 1) * spacing + temporal + tail  # one past the cycle of the last MAC

    macs = np.int64(0)
    active = np.int64(0)
    skipped = np.int64(0)
    fold_start_macs = np.int64(0)
    fold_start_active = np.int64(0)
    cycle = np.int64(0)
    # One iteration of this loop is one cycle: it counts the MACs of every fold in flight.
    while cycle < end:
        offset = cycle - preload
        newest = offset // spacing if offset >= 0 else -1
        newest = min(newest, folds - 1)
        if fast_forward and offset >= spacing and offset % spacing == 0 and newest < folds:
            # Cycle `cycle` starts fold `newest`. If every fold in flight since the
            # previous fold start, and the next `run` folds, map the same shape,
            # the next `run` fold periods repeat the last one exactly.
            oldest = (offset - spacing - temporal - tail) // spacing + 1
            shape = _fold_dims(max(oldest, 0), row_folds, col_folds, rows, cols, last_rows, last_cols)
            uniform = oldest >= 0  # the previous period must already contain a full set of folds
            for fold in range(max(oldest, 0), newest + 1):
                if not uniform:
                    break
                if _fold_dims(fold, row_folds, col_folds, rows, cols, last_rows, last_cols) != shape:
                    uniform = False
            run = 0
            if uniform:
                while newest + run < folds - 1:
                    if _fold_dims(newest + run, row_folds, col_folds, rows, cols, last_rows, last_cols) != shape:
                        break
                    run += 1
            if run > 0:
                macs += run * (macs - fold_start_macs)
                active += run * (active - fold_start_active)
                skipped += run
                cycle += run * spacing
                continue
            fold_start_macs = macs
            fold_start_active = active
        elif offset >= 0 and offset % spacing == 0:
            fold_start_macs = macs
            fold_start_active = active

        count = np.int64(0)
        oldest = max(0, (offset - temporal - tail) // spacing + 1) if offset >= 0 else 0
        for fold in range(oldest, newest + 1):
            fold_rows, fold_cols = _fold_dims(fold, row_folds, col_folds, rows, cols, last_rows, last_cols)
            local = offset - fold * spacing
            count += _macs_up_to(local, fold_rows, fold_cols) - _macs_up_to(local - temporal, fold_rows, fold_cols)
        macs += count
        if count > 0:
            active += 1
        cycle += 1
    return end - 1, macs, active, skipped
