"""Cycle-level simulation of mapped cascades and of GEMMs on systolic arrays.

The names are imported on first use, so ``fusemax.sim.gemm`` loads without
the analytical model and the cascade language.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "GemmResult": "fusemax.sim.gemm",
    "simulate_gemm": "fusemax.sim.gemm",
    "SimulationResult": "fusemax.sim.simulator",
    "simulate": "fusemax.sim.simulator",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fusemax.sim' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
