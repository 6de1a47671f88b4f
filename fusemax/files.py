"""Writing output files so that an interrupted run never leaves one half-written."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path


def write_atomic(path: Path, chunks: Iterable[str]) -> None:
    """Write ``chunks`` to a temporary file next to ``path``, then move it onto ``path`` with ``os.replace``.

    The temporary file is removed when writing fails or is interrupted, so ``path``
    keeps its earlier content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open with mode 0o666 lets the umask set the permissions, as a plain open() would.
    temp_path = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as output:
            for chunk in chunks:
                output.write(chunk)
            output.flush()
            os.fsync(output.fileno())
        os.replace(temp_path, path)
    except BaseException:
        # BaseException so that Ctrl-C also removes the partial file.
        temp_path.unlink(missing_ok=True)
        raise
