"""The package layering: the cascade language imports nothing from the hardware package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "einsum_cascades"


def test_einsum_cascades_never_imports_fusemax():
    for source in PACKAGE.rglob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith("fusemax"), f"{source.name} imports {name}"


def test_importing_the_language_loads_no_fusemax_module():
    code = "import sys, einsum_cascades; print([m for m in sys.modules if m.split('.')[0] == 'fusemax'])"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
