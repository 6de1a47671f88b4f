"""Time `fusemax reproduce` end to end as a whole process and compare it with the artifact's run time.

Usage: python benchmarks/reproduce_speed.py [--runs N]

Runs the command N times (after one warm-up run) in a fresh output folder,
prints the median wall time and peak memory, and the ratio to the nine hours
the FuseMax artifact's README gives for regenerating its figures with
Timeloop and Accelergy. Uses only the standard library (resource, subprocess).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ARTIFACT_SECONDS = 9 * 3600  # "Expected run time: 9 hours" in the FuseMax artifact's README


def time_once(variant: str) -> tuple[float, float]:
    """Run one reproduction; returns (wall seconds, peak resident memory of the child in MiB)."""
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "fusemax.cli", "reproduce", "--out", out, "--model-variant", variant],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - start
        peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return wall, peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="counted runs (default 5)")
    parser.add_argument("--model-variant", default="paper", choices=("paper", "corrected"))
    args = parser.parse_args()

    time_once(args.model_variant)  # warm-up: file caches and byte-compiled modules
    walls, peaks = [], []
    for _ in range(args.runs):
        wall, peak = time_once(args.model_variant)
        walls.append(wall)
        peaks.append(peak)
    median = statistics.median(walls)
    print(f"fusemax reproduce ({args.model_variant}), whole process, {args.runs} runs")
    print(f"  wall seconds: min {min(walls):.2f}, median {median:.2f}, max {max(walls):.2f}")
    print(f"  peak memory:  {max(peaks):.0f} MiB")
    print(f"  artifact (9 h) / median: {ARTIFACT_SECONDS / median:,.0f}x")


if __name__ == "__main__":
    main()
