"""``fusemax passes``: pass lower bounds of a cascade, what they cost, and the rewrites that remove them.

Prints, for every rank, the minimum number of passes any mapping makes over
it, the Einsums in each pass and the full reduction that forces each extra
pass.  For a rank with more than one pass it adds the live footprint between
passes and the traffic of spilling it.  With ``--arch`` it adds the bytes at
the workload and the sequence length beyond which the footprint no longer
fits.  For a softmax-attention cascade it lists the pass-reducing rewrites and
their extra compute.  ``--dot FILE`` writes the dependency graph colored by
pass.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from einsum_cascades.errors import CascadeError
from einsum_cascades.ir import Cascade
from einsum_cascades.library import resolve_cascade
from einsum_cascades.passes import PassReport, analyze_passes
from einsum_cascades.passes_dot import passes_dot
from einsum_cascades.passes_footprint import live_footprint
from einsum_cascades.rewrite import RewritePlan, plan_rewrites
from fusemax.arch import Architecture, load_architecture
from fusemax.commands.passes_spill import estimate_spill
from fusemax.commands.passes_text import format_report
from fusemax.errors import SpecError
from fusemax.workloads import model_workload, parse_length, parse_shape

DESCRIPTION = (
    "Print the minimum number of passes any mapping makes over each rank of a cascade, the Einsums in each "
    "pass and the full reduction that forces each extra pass. For a rank with more than one pass, add the "
    "live footprint between passes and the memory traffic of spilling it; with --arch, the bytes at the "
    "workload and the sequence length beyond which the footprint no longer fits the global buffer. For a "
    "softmax-attention cascade, list the rewrites that remove passes and their extra compute."
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``passes`` sub-command."""
    parser = commands.add_parser(
        "passes",
        help="minimum passes over each rank, for every mapping, and what extra passes cost",
        description=DESCRIPTION,
    )
    parser.add_argument("cascade", metavar="NAME|FILE", help="a library cascade name or a .cascade file")
    parser.add_argument("--rank", help="report only this rank: a whole rank or a sub-rank such as M0")
    parser.add_argument("--arch", help="architecture spec (YAML path or shipped name) whose global buffer the footprint must fit")
    group = parser.add_argument_group("workload (optional; gives the rank sizes)")
    group.add_argument("--model", help="paper model: BERT, TrXL, T5 or XLM (batch 64)")
    group.add_argument("--shape", help="rank sizes, as B=64,H=12,E=64,F=64[,M=4096,P=4096]")
    group.add_argument("--seq-len", help="sequence length M = P, as 4096, 4K or 1M (K = 1024)")
    group.add_argument("--sizes", metavar="R=N,...", help="sizes of other ranks, such as the tile M0=256 or a window W=512")
    parser.add_argument(
        "--rows",
        type=int,
        default=1,
        help="query rows whose live footprint must be on chip at once, for the spill length (default 1)",
    )
    parser.add_argument(
        "--set", action="append", metavar="PATH=VALUE", help="override an architecture key before validation (repeatable)"
    )
    parser.add_argument("--dot", metavar="FILE", help="write the dependency graph colored by pass as DOT to FILE ('-': standard output)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_passes)


def run_passes(args: argparse.Namespace) -> int:
    """Run ``fusemax passes`` with parsed arguments; return the exit status."""
    if args.dot == "-" and args.json:
        raise SpecError("--dot - and --json both print on standard output; give --dot a file name")
    if args.rows < 1:
        raise SpecError(f"--rows must be a positive integer, got {args.rows}")
    cascade = resolve_cascade(args.cascade)
    report = analyze_passes(cascade, args.rank)
    arch = _architecture(args)
    sizes, tie = _sizes(args, cascade, arch)
    plan = _rewrite_plan(cascade)

    if args.dot is not None:
        text = passes_dot(cascade, report.ranks[_dot_rank(report, args.rank)])
        if args.dot == "-":
            print(text, end="")
            return 0
        try:
            Path(args.dot).write_text(text, encoding="utf-8")
        except OSError as error:
            raise SpecError(f"--dot {args.dot}: cannot write the file: {error.strerror or error}") from None

    result = build_result(cascade, report, plan, sizes, args.rows, arch, tie)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_report(result))
    return 0


def build_result(
    cascade: Cascade,
    report: PassReport,
    plan: RewritePlan | None,
    sizes: dict[str, int] | None,
    rows: int,
    arch: Architecture | None,
    tie_query_rank: bool,
) -> dict:
    """Collect the analysis, footprints, spill estimates and rewrites as one JSON-ready object."""
    result = report.to_json()
    for rank, passes in report.ranks.items():
        if passes.passes < 2:
            continue
        footprint = live_footprint(cascade, passes)
        entry = result["ranks"][rank]
        entry["footprint"] = footprint.to_json()
        if sizes is not None:
            estimate = estimate_spill(cascade, footprint, sizes, rows, arch, tie_query_rank)
            entry["spill"] = estimate.to_json()
    if arch is not None:
        result["arch"] = {
            "name": arch.name,
            "capacity_bytes": arch.global_buffer.capacity_bytes,
            "word_bits": arch.word_bits,
        }
    result["rewrites"] = []
    if plan is not None:
        result["rewrites"] = [step.to_json() for step in plan.steps]
        result["rewrite_rank"] = plan.rank
        if plan.blocked is not None:
            result["rewrite_blocked"] = plan.blocked
    return result


def _rewrite_plan(cascade: Cascade) -> RewritePlan | None:
    """Plan the rewrites of a softmax-attention cascade with more than one pass; return None otherwise."""
    try:
        plan = plan_rewrites(cascade)
    except CascadeError:
        return None
    return plan if plan.passes > 1 else None


def _dot_rank(report: PassReport, rank: str | None) -> str:
    """Choose the rank to color the graph by: the one requested, else the first with the most passes."""
    if rank is not None:
        return rank
    return max(report.ranks, key=lambda name: report.ranks[name].passes)


def _architecture(args: argparse.Namespace) -> Architecture | None:
    overrides = []
    for item in args.set or []:
        if "=" not in item:
            raise SpecError(f"--set {item!r}: expected PATH=VALUE, as global_buffer.capacity_bytes=8388608")
        path, value = item.split("=", 1)
        overrides.append((path.strip(), value))
    if args.arch is None:
        if overrides:
            raise SpecError("--set needs --arch: it overrides a key of the architecture spec")
        return None
    return load_architecture(args.arch, overrides)


def _sizes(args: argparse.Namespace, cascade: Cascade, arch: Architecture | None) -> tuple[dict[str, int] | None, bool]:
    """Rank sizes from the workload options, and whether M and P are one sequence (self-attention).

    Returns None for the sizes when no workload option and no architecture is given.
    """
    seq_len = parse_length(args.seq_len) if args.seq_len is not None else None
    if args.model is not None and args.shape is not None:
        raise SpecError("give at most one of --model NAME or --shape B=..,H=..,E=..,F=..")

    sizes: dict[str, int] = {}
    tie = True
    if args.model is not None:
        workload = model_workload(args.model, seq_len or 1)
        sizes = workload.sizes
        if seq_len is None:
            del sizes["M"], sizes["P"]
    elif args.shape is not None:
        workload = parse_shape(args.shape, seq_len)
        sizes = workload.sizes
        tie = workload.M == workload.P
    elif seq_len is not None:
        sizes = {"M": seq_len, "P": seq_len}
    sizes.update(_parse_sizes(args.sizes))

    if arch is not None:
        # The shipped mappings tile M by the 2D array's rows; a tile size given with --sizes wins.
        for partition in cascade.partitions:
            inner = partition.parts[-1]
            if len(partition.parts) == 2 and inner not in sizes:
                sizes[inner] = arch.arrays.array2d.rows
    if not sizes and arch is None:
        return None, tie
    return sizes, tie


def _parse_sizes(text: str | None) -> dict[str, int]:
    sizes: dict[str, int] = {}
    if text is None:
        return sizes
    for entry in text.split(","):
        if not entry.strip():
            continue
        if "=" not in entry:
            raise SpecError(f"--sizes: invalid entry {entry.strip()!r}; write RANK=SIZE, as M0=256")
        rank, raw = (part.strip() for part in entry.split("=", 1))
        if not rank or not rank[0].isupper():
            raise SpecError(f"--sizes: invalid rank {rank!r}; rank names start with an upper-case letter, as M0")
        sizes[rank] = parse_length(raw, f"--sizes {rank}")
    return sizes
