"""Simulate the FuseMax binding on 24 points and compare with the analytical model.

The points are the FuseMax paper's evaluation grid (MICRO 2024): BERT, TrXL,
T5 and XLM at 1K, 4K, 16K, 64K, 256K and 1M tokens, batch 64.

Usage: python benchmarks/sim_paper_points.py [--mapping fusemax-binding]

Runs the 24 points twice in child processes: once with an empty numba cache, so the time includes compiling
the kernel, and once with the cache filled.  Prints one row per point from
the cold run (simulated and analytical cycles, their relative difference,
seconds) and, for both runs, the whole-process wall time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, sys, time
start = time.perf_counter()
from fusemax.arch import load_architecture
from fusemax.mapping import load_mapping
from fusemax.sim import simulate
from fusemax.workloads import MODELS, PAPER_LENGTHS, model_workload, parse_length
arch = load_architecture("fusemax-cloud")
rows = []
for model in MODELS:
    for length in PAPER_LENGTHS:
        workload = model_workload(model, parse_length(length))
        mapping, row = load_mapping(sys.argv[1], [], workload.model, workload.length_label)
        begin = time.perf_counter()
        result = simulate(arch, mapping, workload, row)
        rows.append([model, length, result.cycles, result.analytical_cycles, result.relative_difference,
                     time.perf_counter() - begin, result.stall_cycles])
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - start}))
"""


def run_child(mapping: str, cache: str) -> tuple[dict, float, float]:
    """Run the 24 points in a child process; return its output, wall seconds and peak MiB."""
    environment = dict(os.environ, NUMBA_CACHE_DIR=cache)
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", CHILD, mapping], stdout=subprocess.PIPE, env=environment, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("the simulation child process failed")
    return json.loads(output), wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mapping", default="fusemax-binding", help="mapping spec (default fusemax-binding)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        cold, cold_wall, cold_peak = run_child(args.mapping, cache)
        warm, warm_wall, warm_peak = run_child(args.mapping, cache)

    print(f"{'model':<6}{'length':>7}{'simulated':>17}{'analytical':>17}{'difference':>12}{'seconds':>9}")
    worst = 0.0
    for model, length, cycles, analytical, difference, seconds, _ in cold["rows"]:
        worst = max(worst, abs(difference))
        print(f"{model:<6}{length:>7}{cycles:>17}{analytical:>17.0f}{difference:>+12.2e}{seconds:>9.3f}")
    print(f"largest |difference| {worst:.2e}")
    print(f"empty numba cache: {cold_wall:.2f} s whole process ({cold['seconds']:.2f} s in Python), peak {cold_peak:.0f} MiB")
    print(f"filled numba cache: {warm_wall:.2f} s whole process ({warm['seconds']:.2f} s in Python), peak {warm_peak:.0f} MiB")


if __name__ == "__main__":
    main()
