"""Writing outputs so that a crash never leaves half a file, nor half a set of files."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` for a writer that needs a file name (h5py, torch);
    on a clean exit it replaces ``path`` atomically, on an error it is removed and ``path`` is
    untouched. The directory is created if needed; the file gets the permissions of any new
    file (``0666`` less the umask), not the temporary file's private ``0600``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half
    (see :func:`atomic_output`; ``os.replace`` is atomic on POSIX and Windows)."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb" if isinstance(data, bytes) else "w") as handle:
            handle.write(data)


def write_figure(path: Path, figure: Any, dpi: int = 120) -> None:
    """A matplotlib ``Figure`` (laid out tightly) as a PNG at ``path``, atomically."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    atomic_write(path, buffer.getvalue())


@contextlib.contextmanager
def output_set(directory: Path) -> Iterator[Path]:
    """A staging directory inside ``directory`` for a set of results: write every file into
    it; on a clean exit each is moved into ``directory`` (renames within one file system), on an
    error (a full disk, an exception) the staging directory and all it holds are removed and
    ``directory`` gains nothing. A move that fails part-way undoes the moves before it (each
    file it replaced is put back), so ``directory`` holds the whole new set or its old files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory, prefix=".outputs-"))
    try:
        yield staging
        _move_all(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_all(staging: Path, directory: Path) -> None:
    """Every file of ``staging`` into ``directory``, all or none (see :func:`output_set`)."""
    moved: list[tuple[Path, Path | None]] = []  # (the file placed, the old one it replaced, kept in staging)
    try:
        for item in sorted(p for p in staging.iterdir() if not p.name.startswith(".old-")):
            target = directory / item.name
            old = None
            if target.is_file() and not target.is_symlink():
                old = staging / f".old-{item.name}"
                os.link(target, old)
            os.replace(item, target)
            moved.append((target, old))
    except BaseException:
        for target, old in reversed(moved):
            if old is not None:
                os.replace(old, target)
            else:
                target.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; restore at once
    os.umask(mask)
    return mask
