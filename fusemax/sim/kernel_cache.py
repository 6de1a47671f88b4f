"""Keep numba's on-disk cache of the pipeline kernel consistent with its sources.

Numba (0.68) keys a cached function on its own source file only.  The
pipeline kernel spans several modules (``layout``, ``address``, ``blocks``, ``steady``,
``pipeline``), so after an edit to one of them the cached ``run_phase`` would
still contain the old code of the others.  Before the first simulation of a
process, this module hashes those sources and, when the hash differs from the
one stored next to the cache, deletes the cached kernels so numba compiles
them afresh (a few seconds, once).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

KERNEL_MODULES = ("layout", "address", "blocks", "steady", "pipeline")
STAMP = "fusemax-kernel-sources.sha256"

_checked = False


def _cache_folders(package: Path) -> list[Path]:
    """Folders where numba may keep this package's cache: beside the sources, or under NUMBA_CACHE_DIR."""
    folders = [package / "__pycache__"]
    user = os.environ.get("NUMBA_CACHE_DIR")
    if user:
        folders.append(Path(user) / package.resolve().relative_to(package.resolve().anchor))
    return folders


def refresh_kernel_cache() -> None:
    """Delete stale cached kernels once per process; cheap when the cache is current."""
    global _checked
    if _checked:
        return
    _checked = True
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for module in KERNEL_MODULES:
        digest.update((package / f"{module}.py").read_bytes())
    current = digest.hexdigest()
    for folder in _cache_folders(package):
        stamp = folder / STAMP
        try:
            if stamp.read_text(encoding="ascii").strip() == current:
                continue
        except OSError:
            pass
        if not folder.is_dir():
            continue
        try:
            for module in KERNEL_MODULES:
                for pattern in (f"{module}.*.nbi", f"{module}.*.nbc"):
                    for cached in folder.glob(pattern):
                        cached.unlink()
            stamp.write_text(current, encoding="ascii")
            logger.info("removed stale numba cache of the pipeline kernel in %s", folder)
        except OSError as error:
            logger.warning("cannot refresh the numba cache in %s: %s", folder, error)
