"""``fusemax cascade``: show, run, check and rewrite Extended-Einsum cascades.

``show`` prints a cascade with its symbolic operation counts.  ``run``
executes it with numpy in float64 and saves every tensor.  ``check`` compares
its output with the reference definition its file declares.  ``rewrite``
prints it rewritten to fewer passes over its softmax rank.  A cascade is a library name
(``fusemax cascade list``) or a path to a ``.cascade`` file.
"""

from __future__ import annotations

import argparse
import json
import logging

import numpy as np

from einsum_cascades.errors import CascadeError
from einsum_cascades.graph import dependency_graph, to_dot, to_json
from einsum_cascades.ir import Cascade
from einsum_cascades.library import library_names, load_library_cascade, resolve_cascade
from einsum_cascades.printer import format_cascade, format_einsum
from fusemax.errors import SpecError

logger = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``cascade`` sub-command and its actions."""
    parser = commands.add_parser("cascade", help="show, run, check or rewrite an Extended-Einsum cascade",
                                 description=__doc__.split("\n\n")[1].replace("\n", " ").replace("``", ""))
    actions = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))

    show = actions.add_parser("show", help="print the cascade, its operators and its symbolic counts")
    show.add_argument("cascade", metavar="NAME|FILE", help="a library cascade name or a .cascade file")
    show.add_argument("--unicode", action="store_true", help="print the paper's symbols (×, e^{…}, ∨_m max(∪))")
    show.add_argument("--graph", choices=("dot", "json"), help="print the dependency graph instead, as DOT or JSON")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler=_show)

    run = actions.add_parser("run", help="execute the cascade with numpy in float64")
    _add_run_arguments(run)
    run.add_argument("--inputs", metavar="IN.npz", help="input arrays by tensor name; missing inputs are drawn at random")
    run.add_argument("--output", metavar="OUT.npz", help="write every tensor by name to this file")
    run.set_defaults(handler=_run)

    check = actions.add_parser("check", help="compare the cascade's output with its declared reference")
    _add_run_arguments(check)
    check.add_argument("--tolerance", type=float, default=1e-10,
                       help="largest relative error that passes (default 1e-10); above it the exit status is 1")
    check.set_defaults(handler=_check)

    rewrite = actions.add_parser("rewrite", help="print the cascade rewritten to N passes over its softmax rank")
    rewrite.add_argument("cascade", metavar="NAME|FILE", help="a library cascade name or a .cascade file")
    rewrite.add_argument("--passes", type=int, required=True, help="number of passes wanted, at least 1")
    rewrite.add_argument("--unicode", action="store_true", help="print the paper's symbols")
    rewrite.set_defaults(handler=_rewrite)

    listing = actions.add_parser("list", help="list the library cascades")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.set_defaults(handler=_list)


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("cascade", metavar="NAME|FILE", help="a library cascade name or a .cascade file")
    parser.add_argument("--sizes", required=True, metavar="R=N,...",
                        help="rank sizes, as B=1,H=2,E=64,F=64,M=1000,P=100,M0=256 (K = 1024 is accepted: 4K)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="factor applied to the random standard-normal inputs (default 1)")
    parser.add_argument("--no-import", action="store_true",
                        help="refuse to import the Python functions of user-defined operators (for untrusted files)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def parse_sizes(text: str) -> dict[str, int]:
    """Parse ``R=N,...`` into rank sizes; ``N`` may end in K (times 1024).

    Raises
    ------
    CascadeError
        If an entry is not ``RANK=POSITIVE_INTEGER``.
    """
    sizes: dict[str, int] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        rank, sep, value = item.partition("=")
        rank, value = rank.strip(), value.strip()
        multiplier = 1
        if value[-1:] in ("K", "k"):
            multiplier, value = 1024, value[:-1]
        if not sep or not rank or not value.isdigit() or int(value) == 0:
            raise CascadeError(f"--sizes entry {item!r} is invalid; write RANK=N with a positive integer N, as M=1000")
        sizes[rank] = int(value) * multiplier
    return sizes


def _show(args: argparse.Namespace) -> int:
    from einsum_cascades.symbolic import symbolic_counts

    cascade = resolve_cascade(args.cascade)
    if args.graph is not None:
        graph = dependency_graph(cascade)
        print(to_dot(graph) if args.graph == "dot" else to_json(graph), end="" if args.graph == "dot" else "\n")
        return 0
    counts = symbolic_counts(cascade)
    if args.json:
        print(json.dumps({
            "cascade": cascade.name,
            "text": format_cascade(cascade, args.unicode),
            "einsums": [
                {"name": entry.name, "initialization": entry.initialization, "einsum": format_einsum(einsum),
                 "points": str(entry.points), "operators": {op: str(n) for op, n in entry.charged.items()}}
                for einsum, entry in zip(cascade.all_einsums, counts.einsums)
            ],
            "total": {op: str(n) for op, n in counts.total_charged.items()},
            "footprints": {tensor: str(n) for tensor, n in counts.footprints.items()},
            "relations": {str(symbol): str(expr) for symbol, expr in counts.relations.items()},
        }, indent=2))
        return 0
    print(format_cascade(cascade, args.unicode), end="")
    print("\n# operator applications (user-defined operators charged as built-ins)")
    for einsum, entry in zip(cascade.all_einsums, counts.einsums):
        if entry.charged:
            work = ", ".join(f"{op} {n}" for op, n in entry.charged.items())
            print(f"#   {('init:' if einsum.initialization else '') + entry.name:<10} {work}")
    print("#   total      " + ", ".join(f"{op} {n}" for op, n in counts.total_charged.items()))
    print("# footprints in elements")
    for tensor, elements in counts.footprints.items():
        print(f"#   {tensor:<10} {elements}")
    for symbol, expr in counts.relations.items():
        print(f"# where {symbol} = {expr}")
    return 0


def _load_inputs(path: str | None) -> dict[str, np.ndarray]:
    if path is None:
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: np.asarray(data[name]) for name in data.files}
    except (OSError, ValueError) as error:
        raise CascadeError(f"cannot read --inputs file {path!r}: {error}") from error


def _run(args: argparse.Namespace) -> int:
    from einsum_cascades.execute import execute, random_inputs

    cascade = resolve_cascade(args.cascade)
    sizes = parse_sizes(args.sizes)
    given = _load_inputs(args.inputs)
    unknown = sorted(set(given) - set(cascade.tensors))
    if unknown:
        raise CascadeError(
            f"--inputs file contains {', '.join(unknown)}, which cascade {cascade.name} does not have; its inputs: "
            f"{', '.join(cascade.inputs)}"
        )
    inputs = {**random_inputs(cascade, sizes, args.seed, args.scale), **{k: v for k, v in given.items() if k in cascade.inputs}}
    result = execute(cascade, sizes, inputs, args.seed, allow_import=not args.no_import)
    arrays = result.arrays()
    if args.output is not None:
        try:
            np.savez(args.output, **arrays)
        except OSError as error:
            raise CascadeError(f"cannot write --output file {args.output!r}: {error}") from error
    summary = {name: {"shape": list(arrays[name].shape), "norm": float(np.linalg.norm(arrays[name]))}
               for name in cascade.outputs}
    if args.json:
        print(json.dumps({"cascade": cascade.name, "sizes": result.sizes, "outputs": summary,
                          "written": args.output}, indent=2))
        return 0
    print(f"{cascade.name} at " + ", ".join(f"{rank}={size}" for rank, size in result.sizes.items()))
    for name, entry in summary.items():
        print(f"  {name:<8} shape {tuple(entry['shape'])}, Frobenius norm {entry['norm']:.6g}")
    if args.output is not None:
        print(f"wrote {len(arrays)} tensors to {args.output}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from einsum_cascades.verify import check_against_reference

    if not args.tolerance >= 0:
        raise SpecError(f"--tolerance: must be a relative error of zero or more, got {args.tolerance:g}")
    cascade = resolve_cascade(args.cascade)
    result = check_against_reference(cascade, parse_sizes(args.sizes), seed=args.seed, scale=args.scale,
                                     allow_import=not args.no_import)
    passed = result.relative_error <= args.tolerance
    if args.json:
        print(json.dumps({"cascade": cascade.name, "output": result.output, "reference": result.reference,
                          "sizes": result.sizes, "relative_error": result.relative_error,
                          "tolerance": args.tolerance, "passed": passed}, indent=2))
    else:
        verdict = "within" if passed else "above"
        print(f"{cascade.name}: relative error ‖{result.output} − ref‖ / ‖ref‖ = {result.relative_error:.3e} "
              f"({verdict} tolerance {args.tolerance:g}; reference {result.reference})")
    return 0 if passed else 1


def _rewrite(args: argparse.Namespace) -> int:
    try:
        from einsum_cascades.rewrite import rewrite_to_passes
    except ModuleNotFoundError as error:
        if error.name != "einsum_cascades.rewrite":
            raise
        raise CascadeError("cascade rewriting is not available: module einsum_cascades.rewrite is missing") from error
    cascade = resolve_cascade(args.cascade)
    rewritten: Cascade = rewrite_to_passes(cascade, args.passes)
    print(format_cascade(rewritten, args.unicode), end="")
    return 0


def _list(args: argparse.Namespace) -> int:
    entries = {}
    for name in library_names():
        cascade = load_library_cascade(name)
        entries[name] = cascade.description.splitlines()[0] if cascade.description else ""
    if args.json:
        print(json.dumps({"cascades": entries}, indent=2))
        return 0
    width = max(len(name) for name in entries)
    for name, summary in entries.items():
        print(f"{name:<{width}}  {summary}")
    return 0

