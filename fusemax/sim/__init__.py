"""Cycle-level simulation of mapped cascades and of GEMMs on systolic arrays."""

from fusemax.sim.gemm import GemmResult, simulate_gemm
from fusemax.sim.simulator import SimulationResult, simulate

__all__ = ["GemmResult", "SimulationResult", "simulate", "simulate_gemm"]
