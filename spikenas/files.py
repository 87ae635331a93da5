"""Writing outputs so that a crash never leaves half a file: text, bytes and figures."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half.

    The data go to a temporary file in the same directory, which then replaces ``path``
    (``os.replace`` is atomic on POSIX and Windows); the directory is created if needed. The
    file gets the permissions of any new file (``0666`` less the umask), not the temporary
    file's private ``0600``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb" if isinstance(data, bytes) else "w") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_figure(path: Path, figure: Any, dpi: int = 120) -> None:
    """A matplotlib ``Figure`` (laid out tightly) as a PNG at ``path``, atomically."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    atomic_write(path, buffer.getvalue())


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; restore at once
    os.umask(mask)
    return mask
