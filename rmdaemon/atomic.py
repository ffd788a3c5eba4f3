"""Replacing a file so that a crash or a power cut leaves the old version or the new one, whole.

Every file rmdaemon must not lose half of (the state file, the backends' journals and
watermarks, quarantined messages, reports) goes through ``atomic_write``: the bytes go to a temp
file in the same folder (a rename is only atomic within one filesystem), the file is fsynced
before the rename (or the rename can reach the disk before the data), and the folder is fsynced
after it (or a power cut can forget the new directory entry).
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int | None = 0o600) -> None:
    """Replace ``path`` by ``data``; readers and crashes see the old or the new file, never a mix.

    ``mode`` is set exactly whatever the umask; ``None`` creates the file the way ``open()``
    does (0o666 cut by the umask), for files that are not private. The temp file has a fixed
    name, so one writer per path is assumed (each caller has one) and a crash leaves at most one
    stray temp file, which the next write reuses. A failed write removes it and raises.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode), "wb") as file:
            if mode is not None:
                os.fchmod(file.fileno(), mode)  # O_CREAT's mode is cut by the umask and ignored for an old file
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
