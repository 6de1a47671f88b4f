"""Errors for invalid user input: specs, workloads and command-line values."""

from __future__ import annotations


class SpecError(ValueError):
    """An input is invalid; the message names the file and YAML path or position, and what is valid."""
