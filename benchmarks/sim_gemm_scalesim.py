"""Compare `fusemax simulate --gemm` with SCALE-Sim 3.0.0: cycle agreement and speed.

Usage:
    python benchmarks/sim_gemm_scalesim.py [--runs N] [--scalesim-python PYTHON] [--skip-large]

For each GEMM below, the fusemax simulator runs without overlap (SCALE-Sim's
convention) in-process (median of N runs after a warm-up call that loads the
compiled kernel) and as a whole process (`python -m fusemax.cli simulate
--gemm ... --json`).  SCALE-Sim is used when it is importable here
(`pip install '.[scalesim]'`) or through --scalesim-python, an interpreter
of another virtual environment that has it.  The script then writes
SCALE-Sim's config, topology and layout files into a temporary folder and
runs it once per GEMM as a whole process.  It reads "Total Cycles" from
SCALE-Sim's COMPUTE_REPORT.csv and records its wall time and peak memory.  It prints one table row per
GEMM with both cycle counts, whether they are equal, and the speed ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fusemax.sim.gemm import simulate_gemm

# (label, M, N, K, rows, cols, dataflow); the first is the QK product of one
# attention head at 4,096 tokens (E = 64) on the FuseMax 256 x 256 array.
CASES = [
    ("QK 4K tokens", 4096, 4096, 64, 256, 256, "os"),
    ("1K x 1K x 64", 1024, 1024, 64, 256, 256, "os"),
    ("1K x 1K x 64 ws", 1024, 1024, 64, 256, 256, "ws"),
    ("1K x 1K x 64 is", 1024, 1024, 64, 256, 256, "is"),
    ("non-square array", 1000, 1000, 100, 128, 256, "os"),
    ("partial folds ws", 300, 200, 70, 32, 16, "ws"),
    ("partial folds is", 100, 333, 17, 16, 32, "is"),
]
LARGE = {"QK 4K tokens"}

# SCALE-Sim's input files. Large SRAMs and its bandwidth-estimating mode
# (CALC) give stall-free compute cycles; the layout file is required even when
# the custom layouts are off.
SCALESIM_CONFIG = """[general]
run_name = fusemax_benchmark

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 1000000
FilterSramSzkB: 1000000
OfmapSramSzkB: 1000000
IfmapOffset: 0
FilterOffset: 100000000
OfmapOffset: 200000000
Bandwidth: 10000
Dataflow: {dataflow}
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""
SCALESIM_LAYOUT = "Layer name," + ",".join(f"c{i}" for i in range(20)) + ",\ng0,1,1,1,1,1,1,0,1,2,0,1,2,0,1,2,3,0,1,2,3,\n"


def time_in_process(case: tuple, runs: int) -> tuple[int, float]:
    """Return fusemax's cycles and median in-process seconds, after a call that loads the compiled kernel."""
    _, M, N, K, rows, cols, dataflow = case
    simulate_gemm(M, N, K, rows, cols, dataflow, overlap=False)
    times = []
    cycles = 0
    for _ in range(runs):
        start = time.perf_counter()
        cycles = simulate_gemm(M, N, K, rows, cols, dataflow, overlap=False).cycles
        times.append(time.perf_counter() - start)
    return cycles, statistics.median(times)


def time_whole_process(case: tuple) -> float:
    """Return the wall seconds of one `fusemax simulate --gemm` process."""
    _, M, N, K, rows, cols, dataflow = case
    command = [sys.executable, "-m", "fusemax.cli", "simulate", "--gemm", f"M={M},N={N},K={K}",
               "--array", f"{rows}x{cols}", "--dataflow", dataflow, "--no-overlap", "--json"]
    start = time.perf_counter()
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    json.loads(output)
    return wall


def run_scalesim(case: tuple, python: str) -> tuple[int, float, float]:
    """Run SCALE-Sim once as a whole process; return (cycles, wall seconds, peak MiB)."""
    _, M, N, K, rows, cols, dataflow = case
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "config.cfg").write_text(SCALESIM_CONFIG.format(rows=rows, cols=cols, dataflow=dataflow))
        (work / "gemm.csv").write_text(f"Layer, M, N, K,\ng0, {M}, {N}, {K},\n")
        (work / "layout.csv").write_text(SCALESIM_LAYOUT)
        command = [python, "-m", "scalesim.scale", "-c", "config.cfg", "-t", "gemm.csv", "-l", "layout.csv",
                   "-p", "out", "-i", "gemm", "-s", "N"]
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise RuntimeError(f"SCALE-Sim failed with status {process.returncode}: {' '.join(command)}")
        peak = usage.ru_maxrss / 1024  # KiB on Linux
        report = next(work.glob("out/**/COMPUTE_REPORT.csv"))
        fields = [field.strip() for field in report.read_text().splitlines()[1].split(",")]
        return int(fields[2]), wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="in-process runs per GEMM (default 5)")
    parser.add_argument("--scalesim-python", help="python interpreter with the scalesim package (default: this one, if it has it)")
    parser.add_argument("--skip-large", action="store_true", help="skip the 4K-token GEMM, which takes SCALE-Sim over a minute")
    args = parser.parse_args()

    python = args.scalesim_python
    if python is None and importlib.util.find_spec("scalesim") is not None:
        python = sys.executable
    if python is None:
        print("SCALE-Sim not found: install '.[scalesim]' or pass --scalesim-python; timing fusemax only")

    header = (
        f"{'GEMM':<18}{'array':>9}{'df':>4}{'fusemax':>10}{'SCALE-Sim':>11}{'equal':>7}{'in-proc us':>12}{'process s':>11}"
        f"{'SCALE-Sim s':>13}{'ratio in-proc':>15}{'ratio process':>15}{'SCALE-Sim MiB':>15}"
    )
    print(header)
    for case in CASES:
        if args.skip_large and case[0] in LARGE:
            continue
        label, M, N, K, rows, cols, dataflow = case
        cycles, in_process = time_in_process(case, args.runs)
        whole = time_whole_process(case)
        reference = seconds = peak = None
        if python is not None:
            reference, seconds, peak = run_scalesim(case, python)
        row = f"{label:<18}{f'{rows}x{cols}':>9}{dataflow:>4}{cycles:>10}"
        if reference is None:
            row += f"{'-':>11}{'-':>7}{in_process * 1e6:>12.1f}{whole:>11.2f}"
        else:
            equal = "yes" if reference == cycles else "NO"
            row += f"{reference:>11}{equal:>7}{in_process * 1e6:>12.1f}{whole:>11.2f}{seconds:>13.2f}"
            row += f"{seconds / in_process:>15.0f}{seconds / whole:>15.1f}{peak:>15.0f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
