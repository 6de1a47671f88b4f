"""The FuseMax paper's taxonomy of exact-attention algorithms by passes, recomputed.

Table I of the paper sorts published attention implementations into 3-pass,
2-pass and 1-pass columns.  Each entry here names the cascade the
implementation computes; :func:`classify_published` runs the pass analysis
on it, so the columns come out of the analysis instead of being copied.

References
----------
N. Nayak et al., "FuseMax: Leveraging Extended Einsums to Optimize Attention
Accelerator Design", MICRO 2024, arXiv 2406.10491, Table I.
M. N. Rabe and C. Staats, "Self-attention Does Not Need O(n^2) Memory",
arXiv 2112.05682.
"""

from __future__ import annotations

from dataclasses import dataclass

from einsum_cascades.ir import Cascade
from einsum_cascades.library import load_library_cascade
from einsum_cascades.passes import analyze_passes
from einsum_cascades.syntax import parse_cascade

# Rabe and Staats keep, per chunk of keys, a local max, a local denominator
# and a local numerator times V, and combine the chunks after the last one.
# The combination reads only chunk summaries, so the keys are read once.
RABE_STAATS = """
# Chunked attention of Rabe and Staats: per-chunk summaries combined at the end.
cascade rabe-staats
ranks B H E F M P
batch B H
partition M = M1 x M0
input Q[e,p], K[e,m], V[f,m]
output AV[f,p]
reference AV = softmax_attention(Q, K, V)

init:
  BK[e,m1,m0] = K[e, m1*M0+m0]
  BV[f,m1,m0] = V[f, m1*M0+m0]

einsums:
  BQK[m1,m0,p] = Q[e,p] * BK[e,m1,m0]
  LM[m1,p] = BQK[m1,m0,p] :: max(m0)
  SLN[m1,m0,p] = exp(BQK[m1,m0,p] - LM[m1,p])
  SLD[m1,p] = SLN[m1,m0,p]
  SLNV[f,m1,p] = SLN[m1,m0,p] * BV[f,m1,m0]
  GM[p] = LM[m1,p] :: max(m1)
  CF[m1,p] = exp(LM[m1,p] - GM[p])
  SD[p] = SLD[m1,p] * CF[m1,p]
  SNV[f,p] = SLNV[f,m1,p] * CF[m1,p]
  AV[f,p] = SNV[f,p] / SD[p]
"""


@dataclass(frozen=True)
class PublishedAlgorithm:
    """An attention implementation of Table I, the cascade it computes and its column there."""

    name: str
    cascade: str
    table_passes: int

    def load(self) -> Cascade:
        """Parse the cascade the implementation computes."""
        if self.cascade == "rabe-staats":
            return parse_cascade(RABE_STAATS, "rabe-staats")
        return load_library_cascade(self.cascade)


TABLE_I = (
    PublishedAlgorithm("PyTorch", "attention-3pass", 3),
    PublishedAlgorithm("TensorFlow", "attention-3pass", 3),
    PublishedAlgorithm("FLAT", "attention-3pass", 3),
    PublishedAlgorithm("E.T.", "attention-3pass", 3),
    PublishedAlgorithm("TileFlow", "attention-2pass", 2),
    PublishedAlgorithm("Choi et al.", "attention-2pass", 2),
    PublishedAlgorithm("FlashAttention", "flash-attention-1", 1),
    PublishedAlgorithm("FlashAttention-2", "attention-1pass", 1),
    PublishedAlgorithm("Rabe and Staats", "rabe-staats", 1),
)


def classify_published() -> list[tuple[PublishedAlgorithm, int]]:
    """Return every Table I entry with the passes over ``M`` the analysis infers for it.

    Examples
    --------
    >>> rows = classify_published()
    >>> [(algorithm.name, passes) for algorithm, passes in rows if algorithm.name in ("PyTorch", "FlashAttention-2")]
    [('PyTorch', 3), ('FlashAttention-2', 1)]
    """
    rows = []
    for algorithm in TABLE_I:
        passes = analyze_passes(algorithm.load(), "M").passes["M"]
        rows.append((algorithm, passes))
    return rows
