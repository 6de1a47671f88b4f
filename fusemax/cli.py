"""The ``fusemax`` command line.

User errors print one line, ``error: ...``, on standard error and exit with
status 2; ``--json`` prints one JSON object on standard output and nothing else.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from pathlib import Path

from einsum_cascades.errors import CascadeError
from fusemax.commands import MODULES
from fusemax.arch import load_architecture
from fusemax.errors import SpecError
from fusemax.mapping import load_mapping
from fusemax.model.evaluate import Evaluation, evaluate_best
from fusemax.specs import MODEL_VARIANTS
from fusemax.workloads import RankSizes, Workload, model_workload, parse_length, parse_shape, parse_sizes

logger = logging.getLogger("fusemax")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line with status 2."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        sys.stderr.write(f"error: {message}; run '{self.prog} --help' for usage\n")
        raise SystemExit(2)


def _add_workload_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("workload (one of --model, --shape or --sizes)")
    group.add_argument("--model", help="paper model: BERT, TrXL, T5 or XLM (batch 64)")
    group.add_argument("--shape", help="attention rank sizes, as B=64,H=12,E=64,F=64[,M=4096,P=4096]")
    group.add_argument(
        "--sizes", help="sizes of any cascade's ranks, as K=768,M=65536,N=768 for the matmul cascade"
    )
    group.add_argument("--seq-len", help="sequence length M = P, as 4096, 4K or 1M (K = 1024)")


def _workload(args: argparse.Namespace) -> Workload | RankSizes:
    seq_len = parse_length(args.seq_len) if args.seq_len is not None else None
    given = [flag for flag, value in (("--model", args.model), ("--shape", args.shape), ("--sizes", args.sizes)) if value]
    if len(given) != 1:
        raise SpecError(
            "give exactly one of --model NAME, --shape B=..,H=..,E=..,F=.. (attention) or --sizes R=N,... (any cascade)"
        )
    if args.sizes is not None:
        if seq_len is not None:
            raise SpecError("--seq-len goes with --model or --shape; give every rank in --sizes instead")
        return parse_sizes(args.sizes)
    if args.model is not None:
        if seq_len is None:
            raise SpecError("--model needs --seq-len, as --seq-len 4K")
        return model_workload(args.model, seq_len)
    return parse_shape(args.shape, seq_len)


def _overrides(values: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Split ``--set PATH=VALUE`` options into architecture and mapping overrides."""
    arch: list[tuple[str, str]] = []
    mapping: list[tuple[str, str]] = []
    for item in values:
        if "=" not in item:
            raise SpecError(f"--set {item!r}: expected PATH=VALUE, as global_buffer.capacity_bytes=8388608")
        path, value = item.split("=", 1)
        path = path.strip()
        if path.startswith("mapping."):
            mapping.append((path.removeprefix("mapping."), value))
        else:
            arch.append((path, value))
    return arch, mapping


def _evaluate_command(args: argparse.Namespace) -> int:
    workload = _workload(args)
    arch_overrides, mapping_overrides = _overrides(args.set or [])
    arch = load_architecture(args.arch, arch_overrides, args.model_variant)
    mapping, row = load_mapping(args.mapping, mapping_overrides, workload.model, workload.length_label, args.model_variant)
    result = evaluate_best(arch, mapping, workload, row)
    if args.json:
        data = result.to_json()
        data["arch_source"] = arch.source
        data["mapping_source"] = mapping.source
        data["overrides"] = list(args.set or [])
        data["model_variant"] = args.model_variant
        print(json.dumps(data, indent=2))
    else:
        print(_evaluation_text(result))
    return 0


def _evaluation_text(result: Evaluation) -> str:
    sizes = ", ".join(f"{k}={v}" for k, v in result.workload.sizes.items())
    spill_note = ""
    if result.buffer_bytes > result.arch.global_buffer.capacity_bytes:
        spill_note = " needed before spilling; the mapping's spill fractions send the excess to DRAM"
    lines = [
        f"{result.mapping.source} on {result.arch.source}, {result.workload.model or 'shape'} ({sizes})",
        f"  latency        {result.latency_s:.6g} s ({result.cycles:.6g} cycles; compute {result.compute_s:.6g} s, "
        f"memory {result.memory_s:.6g} s)",
        f"  DRAM traffic   {result.traffic_bytes:.6g} bytes",
        f"  energy         {result.energy_pj:.6g} pJ",
        f"  utilization    2D {result.utilization['array2d']:.4f}, 1D {result.utilization['array1d']:.4f}",
        f"  global buffer  {result.buffer_bytes} of {result.arch.global_buffer.capacity_bytes} bytes{spill_note}",
    ]
    if "[" in result.mapping.name:
        lines.insert(1, f"  tiling         {result.mapping.name} (the best of the mapping's alternatives)")
    if len(result.phases) > 1:
        lines.append("  phases (each overlaps its own compute and memory time; latency is their sum):")
        for phase in result.phases:
            lines.append(
                f"    {phase.name:<10} latency {phase.latency_s:.6g} s (compute {phase.compute_s:.6g} s, "
                f"memory {phase.memory_s:.6g} s)"
            )
    chosen = {f: s for f, s in result.factors.size.items() if f not in result.factors.rank_size}
    if chosen:
        lines.append("  factors        " + ", ".join(f"{f}={s}" for f, s in chosen.items()))
    lines.append(f"  {'Einsum':<8}{'array':<9}{'cycles':>16}{'utilization':>13}")
    for name, einsum in result.per_einsum.items():
        lines.append(f"  {name:<8}{einsum.array:<9}{einsum.compute_cycles:>16}{einsum.utilization:>13.4f}")
    return "\n".join(lines)


def _reproduce_command(args: argparse.Namespace) -> int:
    from fusemax.studies.reproduce import reproduce

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SpecError(f"--out {out}: exists and is not a folder; give a folder to write the results into")
    try:
        result = reproduce(out, args.model_variant)
    except OSError as error:
        raise SpecError(f"--out {out}: cannot write the results: {error.strerror or error}") from None
    summary = result["summary"]
    if args.json:
        print(json.dumps({"out": str(out), "summary": summary}, indent=2))
        return 0
    print(f"wrote the attention, end-to-end and Pareto tables, summary.json and report.html to {out}")
    print(f"{'model':<6}{'length':>7}{'speedup vs FLAT':>17}{'energy vs FLAT':>16}")
    flat = {(r["model"], r["seq_len"]): r for r in result["tables"]["attn-flat"]}
    for row in result["tables"]["attn-binding"]:
        other = flat[(row["model"], row["seq_len"])]
        print(
            f"{row['model']:<6}{row['seq_len']:>7}{other['latency'] / row['latency']:>16.2f}x"
            f"{row['energy'] / other['energy']:>16.3f}"
        )
    print(
        f"mean over {summary['pairs']} pairs ({summary['model_variant']} model): attention speedup "
        f"{summary['attention_speedup_vs_flat']:.2f}x and energy {summary['attention_energy_vs_flat']:.3f} of FLAT, "
        f"{summary['attention_speedup_vs_unfused']:.2f}x and {summary['attention_energy_vs_unfused']:.3f} of unfused; "
        f"end to end {summary['end2end_speedup_vs_flat']:.2f}x and {summary['end2end_energy_vs_flat']:.3f} of FLAT"
    )
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fusemax")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``fusemax`` command."""
    parser = _Parser(prog="fusemax", description="Attention-accelerator simulator and dataflow explorer.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to standard error")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    evaluate_parser = commands.add_parser("evaluate", help="analytical result of one architecture, mapping and workload")
    evaluate_parser.add_argument("--arch", required=True, help="architecture spec: a YAML path or a shipped name")
    evaluate_parser.add_argument("--mapping", required=True, help="mapping spec: a YAML path or a shipped name")
    _add_workload_arguments(evaluate_parser)
    evaluate_parser.add_argument(
        "--set",
        action="append",
        metavar="PATH=VALUE",
        help="override a spec key before validation; prefix mapping keys with 'mapping.' (repeatable)",
    )
    evaluate_parser.add_argument(
        "--model-variant", choices=MODEL_VARIANTS, default="paper", help="which spec variant to use (default: paper)"
    )
    evaluate_parser.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate_parser.set_defaults(handler=_evaluate_command)

    reproduce_parser = commands.add_parser("reproduce", help="regenerate the FuseMax paper's attention evaluation")
    reproduce_parser.add_argument("--out", default="results", help="output folder (default: results)")
    reproduce_parser.add_argument(
        "--model-variant",
        choices=MODEL_VARIANTS,
        default="paper",
        help="paper: keep the FuseMax artifact's bookkeeping (default); corrected: fix its known errors",
    )
    reproduce_parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    reproduce_parser.set_defaults(handler=_reproduce_command)

    for name in MODULES:
        try:
            module = importlib.import_module(f"fusemax.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"fusemax.commands.{name}":
                raise
            continue
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "verbose_command", False):
        args.verbose = True
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args)
    except (SpecError, CascadeError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    except BrokenPipeError:
        # The reader of standard output went away (as `| head` does); stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
