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
    with AtomicFile(path, mode) as file:
        file.write(data)
        file.commit()


class AtomicFile:
    """``atomic_write`` for bytes made a piece at a time (the state file: a whole serialised copy
    beside the state in memory was the peak of a tick at 10,000 pairs). Write the pieces, then
    ``commit`` to put the file in place; leaving the ``with`` without a commit, or by an exception,
    removes the temp file and leaves ``path`` as it was."""

    def __init__(self, path: Path, mode: int | None = 0o600) -> None:
        self.path, self.tmp, self._done = path, path.with_name(f".{path.name}.tmp"), False
        flags, created = os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode
        self._file = open(os.open(self.tmp, flags, created), "wb")  # noqa: SIM115 — closed by commit or __exit__
        try:
            if mode is not None:
                os.fchmod(self._file.fileno(), mode)  # O_CREAT's mode is cut by the umask and ignored for an old file
        except BaseException:
            self._drop()
            raise

    def write(self, data: bytes | memoryview) -> None:
        self._file.write(data)

    def commit(self) -> None:
        """Make the bytes durable, then replace ``path`` by them (and make the rename durable)."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.tmp, self.path)
        self._done = True
        fsync_dir(self.path.parent)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._done:
            self._drop()

    def _drop(self) -> None:
        with suppress(OSError):
            self._file.close()
        with suppress(OSError):
            self.tmp.unlink(missing_ok=True)


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
