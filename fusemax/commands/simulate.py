"""``fusemax simulate``: cycle-level simulation of a mapped cascade, or of one GEMM on a systolic array.

With ``--arch`` and ``--mapping`` it simulates one workload and compares the
cycles with the analytical model.  With ``--gemm`` it simulates a plain GEMM
with SCALE-Sim's conventions.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from fusemax.arch import load_architecture
from fusemax.cli import _add_workload_arguments, _overrides, _workload
from fusemax.errors import SpecError
from fusemax.mapping import load_mapping
from fusemax.sim.gemm import DATAFLOWS, GemmResult, parse_array, parse_gemm, simulate_gemm
from fusemax.sim.pipeline import STALL_CAUSES
from fusemax.sim.simulator import DEFAULT_TRACE_LIMIT, SimulationResult, simulate

MODEL_VARIANTS = ("paper", "corrected")

DESCRIPTION = (
    "Simulate a mapped cascade cycle by cycle: the 2D and 1D arrays issue one block (one tile of the mapping's "
    "DRAM and outermost buffer loops) at a time, wait for producers, transfers and buffer space, and the result "
    "is compared with the analytical model. With --gemm, simulate one GEMM on a plain systolic array with "
    "SCALE-Sim's conventions (ifmap M x K, filter K x N, ofmap M x N)."
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``simulate`` sub-command."""
    parser = commands.add_parser("simulate", help="cycle-level simulation of one point, or of one GEMM", description=DESCRIPTION)

    parser.add_argument("--arch", help="architecture spec: a YAML path or a shipped name")
    parser.add_argument("--mapping", help="mapping spec: a YAML path or a shipped name")
    _add_workload_arguments(parser)
    parser.add_argument(
        "--set",
        action="append",
        metavar="PATH=VALUE",
        help="override a spec key before validation, as simulation.dram_latency_cycles=200; prefix mapping keys with 'mapping.' (repeatable)",
    )
    parser.add_argument("--model-variant", choices=MODEL_VARIANTS, default="paper", help="which spec variant to use (default: paper)")
    parser.add_argument("--trace", metavar="FILE", help="write one CSV row per simulated block: phase, Einsum, unit, block, start and end cycle")
    parser.add_argument(
        "--trace-limit",
        type=int,
        default=DEFAULT_TRACE_LIMIT,
        metavar="N",
        help=f"rows the trace keeps at most, the first N blocks (default {DEFAULT_TRACE_LIMIT})",
    )
    parser.add_argument("--no-fast-forward", action="store_true", help="step every period instead of skipping repeated ones (same result, slower)")

    gemm = parser.add_argument_group("GEMM mode")
    gemm.add_argument("--gemm", metavar="M=..,N=..,K=..", help="simulate one GEMM: ifmap M x K, filter K x N")
    gemm.add_argument("--array", metavar="RxC", help="systolic array rows x columns, as 256x256")
    gemm.add_argument("--dataflow", choices=DATAFLOWS, help="output, weight or input stationary")
    gemm.add_argument(
        "--no-overlap",
        action="store_true",
        help="run folds back to back as SCALE-Sim does; by default the array is double-buffered across folds",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    """Run ``fusemax simulate`` with parsed arguments; return the exit status."""
    if args.gemm is not None:
        return _run_gemm(args)
    for flag, value in (("--array", args.array), ("--dataflow", args.dataflow), ("--no-overlap", args.no_overlap)):
        if value:
            raise SpecError(f"{flag} belongs to GEMM mode; give --gemm M=..,N=..,K=.. too, or drop {flag}")
    missing = [flag for flag, value in (("--arch", args.arch), ("--mapping", args.mapping)) if value is None]
    if missing:
        raise SpecError(f"missing {' and '.join(missing)}; simulate needs --arch and --mapping, or --gemm for GEMM mode")
    if args.trace_limit <= 0:
        raise SpecError(f"--trace-limit must be a positive integer, got {args.trace_limit}")

    workload = _workload(args)
    arch_overrides, mapping_overrides = _overrides(args.set or [])
    arch = load_architecture(args.arch, arch_overrides, args.model_variant)
    mapping, row = load_mapping(args.mapping, mapping_overrides, workload.model, workload.length_label, args.model_variant)
    trace_limit = args.trace_limit if args.trace else 0
    result = simulate(arch, mapping, workload, row, fast_forward=not args.no_fast_forward, trace_limit=trace_limit)
    if args.trace:
        _write_trace(result, Path(args.trace))
    if args.json:
        data = result.to_json()
        data["trace_file"] = args.trace
        print(json.dumps(data, indent=2))
    else:
        print(_text(result, args.trace))
    return 0


def _run_gemm(args: argparse.Namespace) -> int:
    given = [flag for flag, value in (("--arch", args.arch), ("--mapping", args.mapping), ("--model", args.model), ("--shape", args.shape), ("--sizes", args.sizes), ("--seq-len", args.seq_len), ("--set", args.set), ("--trace", args.trace)) if value]
    if given:
        raise SpecError(f"--gemm simulates a plain GEMM; drop {', '.join(given)}, or drop --gemm to simulate a mapping")
    missing = [flag for flag, value in (("--array", args.array), ("--dataflow", args.dataflow)) if value is None]
    if missing:
        raise SpecError(f"--gemm needs {' and '.join(missing)}, as --array 256x256 --dataflow os")
    M, N, K = parse_gemm(args.gemm)
    rows, cols = parse_array(args.array)
    result = simulate_gemm(M, N, K, rows, cols, args.dataflow, overlap=not args.no_overlap, fast_forward=not args.no_fast_forward)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(_gemm_text(result))
    return 0


def _write_trace(result: SimulationResult, path: Path) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["phase", "einsum", "unit", "block", "start_cycle", "end_cycle"])
            for event in result.trace or []:
                writer.writerow([event.phase, event.einsum, event.unit, event.block, event.start_cycle, event.end_cycle])
    except OSError as error:
        raise SpecError(f"--trace {path}: cannot write the trace: {error.strerror}") from None


def _text(result: SimulationResult, trace: str | None) -> str:
    evaluation = result.evaluation
    sizes = ", ".join(f"{k}={v}" for k, v in evaluation.workload.sizes.items())
    lines = [
        f"{evaluation.mapping.name} on {evaluation.arch.name}, {evaluation.workload.model or 'shape'} ({sizes})",
        f"  cycles         {result.cycles} simulated, {result.analytical_cycles:.0f} analytical "
        f"({result.relative_difference:+.4%}); {result.latency_s:.6g} s",
        f"  utilization    2D {result.utilization['array2d']:.4f}, 1D {result.utilization['array1d']:.4f}",
        f"  global buffer  peak {result.buffer_peak_bytes} of {evaluation.arch.global_buffer.capacity_bytes} bytes",
        f"  DRAM traffic   {result.traffic_bytes} bytes (analytical {evaluation.traffic_bytes:.0f})",
        f"  {'unit':<9}{'busy':>18}" + "".join(f"{cause:>16}" for cause in STALL_CAUSES),
    ]
    for unit in ("array2d", "array1d"):
        stalls = "".join(f"{result.stall_cycles_by_unit[unit][cause]:>16}" for cause in STALL_CAUSES)
        lines.append(f"  {unit:<9}{result.busy_cycles[unit]:>18}{stalls}")
    lines.append(f"  {'dram':<9}{result.busy_cycles['dram']:>18}")
    for phase in result.phases:
        lags = ", ".join(f"{name}={lag}" for name, lag in phase.plan.lags.items() if lag)
        lines.append(
            f"  phase {phase.name}: {phase.cycles} cycles; lags {lags or 'none'}; "
            f"fast-forward skipped {phase.skipped_rounds} of {phase.plan.blocks} blocks"
        )
    if trace:
        note = " (truncated)" if result.trace_truncated else ""
        lines.append(f"  trace          {len(result.trace or [])} blocks written to {trace}{note}")
    return "\n".join(lines)


def _gemm_text(result: GemmResult) -> str:
    mode = "folds back to back (SCALE-Sim)" if not result.overlap else "double-buffered folds"
    return "\n".join(
        [
            f"GEMM M={result.M}, N={result.N}, K={result.K} on a {result.rows}x{result.cols} {result.dataflow} array, {mode}",
            f"  cycles              {result.cycles}",
            f"  folds               {result.folds} of {result.fold_cycles} cycles each when back to back",
            f"  MACs                {result.macs}",
            f"  utilization         {result.utilization:.4f}",
            f"  mapping efficiency  {result.mapping_efficiency:.4f}",
        ]
    )
