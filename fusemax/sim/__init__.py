"""Cycle-level simulation of mapped cascades and of GEMMs on systolic arrays."""
