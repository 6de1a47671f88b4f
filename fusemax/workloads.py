"""Attention workloads: the paper's transformer models and user-given shapes.

A workload gives the rank sizes of one attention layer: batch ``B``, heads
``H``, query/key embedding ``E``, value embedding ``F``, key length ``M`` and
query length ``P``.  Model shapes are read from FLAT's configuration table
(the source of every model's B, D, E, F, H and S in the FuseMax artifact).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fusemax.errors import SpecError
from fusemax.mapping import read_configuration_table

MODELS = ("BERT", "TrXL", "T5", "XLM")
PAPER_LENGTHS = ("1K", "4K", "16K", "64K", "256K", "1M")
SHAPE_RANKS = ("B", "H", "E", "F", "M", "P")


@dataclass(frozen=True)
class Workload:
    """Rank sizes of one attention layer, plus model dimensions when known.

    ``model_dim`` (D) and ``ffn_dim`` (S) are the hidden and feed-forward sizes,
    used only by end-to-end studies.
    """

    B: int
    H: int
    E: int
    F: int
    M: int
    P: int
    model: str | None = None
    model_dim: int | None = None
    ffn_dim: int | None = None

    @property
    def sizes(self) -> dict[str, int]:
        return {rank: getattr(self, rank) for rank in SHAPE_RANKS}

    @property
    def length_label(self) -> str:
        """The sequence length as the paper writes it (``4K``, ``1M``), or the plain number."""
        return format_length(self.M) if self.M == self.P else f"{self.M}x{self.P}"


def parse_length(text: str, where: str = "--seq-len") -> int:
    """Parse a sequence length such as ``1024``, ``1K``, ``64K`` or ``1M`` (K = 1024).

    Examples
    --------
    >>> parse_length("64K"), parse_length("1M"), parse_length("1000")
    (65536, 1048576, 1000)
    """
    match = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)\s*", str(text))
    if match is None:
        raise SpecError(f"{where}: invalid length {text!r}; use an integer with an optional K or M suffix, as 4096 or 4K")
    value = int(match.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[match.group(2).lower()]
    if value <= 0:
        raise SpecError(f"{where}: length must be positive, got {text!r}")
    return value


def format_length(value: int) -> str:
    """Write a length the paper's way when it is a power-of-two multiple of 1K (``4096`` -> ``4K``)."""
    if value % (1024 * 1024) == 0:
        return f"{value // (1024 * 1024)}M"
    if value % 1024 == 0:
        return f"{value // 1024}K"
    return str(value)


def model_workload(model: str, seq_len: int) -> Workload:
    """Return the workload of a paper model at a sequence length (M = P = ``seq_len``).

    Raises
    ------
    SpecError
        For an unknown model name; the message lists the models.

    Examples
    --------
    >>> model_workload("BERT", 1024).sizes
    {'B': 64, 'H': 12, 'E': 64, 'F': 64, 'M': 1024, 'P': 1024}
    """
    rows = [r for r in read_configuration_table("flat_validation.csv") if r["platform"] == "cloud"]
    for row in rows:
        if row["models"] == model:
            return Workload(
                B=int(row["B"]),
                H=int(row["H"]),
                E=int(row["E"]),
                F=int(row["F"]),
                M=seq_len,
                P=seq_len,
                model=model,
                model_dim=int(row["D"]),
                ffn_dim=int(row["S"]),
            )
    raise SpecError(f"--model: unknown model {model!r}; models: {', '.join(MODELS)}")


def parse_shape(text: str, seq_len: int | None) -> Workload:
    """Parse ``B=64,H=12,E=64,F=64[,M=4096,P=4096]`` into a workload.

    ``seq_len`` sets M and P when the shape omits them; when both are given
    they must agree.

    Raises
    ------
    SpecError
        On a malformed entry, an unknown or missing rank, a non-positive size or
        a length conflict.
    """
    values: dict[str, int] = {}
    for entry in str(text).split(","):
        if not entry.strip():
            continue
        if "=" not in entry:
            raise SpecError(f"--shape: invalid entry {entry.strip()!r}; write RANK=SIZE, as H=12")
        rank, raw = (part.strip() for part in entry.split("=", 1))
        if rank not in SHAPE_RANKS:
            raise SpecError(f"--shape: unknown rank {rank!r}; ranks: {', '.join(SHAPE_RANKS)}")
        if rank in values:
            raise SpecError(f"--shape: rank {rank} is given twice; give each rank once")
        values[rank] = parse_length(raw, f"--shape {rank}")
    for rank in ("M", "P"):
        if seq_len is not None:
            if rank in values and values[rank] != seq_len:
                raise SpecError(f"--shape gives {rank}={values[rank]} but --seq-len is {seq_len}; they must agree")
            values[rank] = seq_len
    missing = [rank for rank in SHAPE_RANKS if rank not in values]
    if missing:
        hint = " or give --seq-len" if set(missing) <= {"M", "P"} else ""
        raise SpecError(f"--shape: missing rank(s) {', '.join(missing)}{hint}")
    return Workload(**values)


@dataclass(frozen=True)
class RankSizes:
    """Sizes of arbitrary ranks, for cascades other than attention (``model`` only labels results)."""

    sizes: dict[str, int]
    model: str | None = None
    length_label: str = ""


@dataclass(frozen=True)
class LinearLayer:
    """One linear layer of a transformer block: ``count`` identical matmuls of the given sizes."""

    name: str
    workload: RankSizes
    count: int


def linear_layers(workload: Workload) -> list[LinearLayer]:
    """List the six matmuls of one transformer block, as the FuseMax evaluation counts them.

    Tokens M = B x P; the Q, K and V projections (D -> E x H, counted as three
    identical layers), the output projection (E x H -> D) and the two
    feed-forward layers (D -> S, S -> D).

    Raises
    ------
    SpecError
        If the workload has no model dimension D or feed-forward dimension S.
    """
    if workload.model_dim is None or workload.ffn_dim is None:
        raise SpecError("end-to-end evaluation needs a model's hidden and feed-forward sizes; use --model")
    tokens = workload.B * workload.P
    projected = workload.E * workload.H
    shapes = [
        ("qkv_projection", workload.model_dim, projected, 3),
        ("output_projection", projected, workload.model_dim, 1),
        ("ffn1", workload.model_dim, workload.ffn_dim, 1),
        ("ffn2", workload.ffn_dim, workload.model_dim, 1),
    ]
    return [
        LinearLayer(name, RankSizes({"K": k, "M": tokens, "N": n}, workload.model, workload.length_label), count)
        for name, k, n, count in shapes
    ]


def parse_sizes(text: str) -> RankSizes:
    """Parse ``R=N,...`` into sizes for any cascade's ranks (``K=768,M=64K,N=768``).

    Raises
    ------
    SpecError
        On a malformed entry, a rank given twice or a non-positive size.

    Examples
    --------
    >>> parse_sizes("K=768,M=64K,N=768").sizes
    {'K': 768, 'M': 65536, 'N': 768}
    """
    sizes: dict[str, int] = {}
    for entry in str(text).split(","):
        if not entry.strip():
            continue
        if "=" not in entry:
            raise SpecError(f"--sizes: invalid entry {entry.strip()!r}; write RANK=SIZE, as K=768")
        rank, raw = (part.strip() for part in entry.split("=", 1))
        if not rank or not rank[0].isupper():
            raise SpecError(f"--sizes: invalid rank name {rank!r}; rank names start with an upper-case letter")
        if rank in sizes:
            raise SpecError(f"--sizes: rank {rank} is given twice; give each rank once")
        sizes[rank] = parse_length(raw, f"--sizes {rank}")
    if not sizes:
        raise SpecError("--sizes: no sizes given; write RANK=SIZE pairs, as K=768,M=65536,N=768")
    return RankSizes(sizes)
