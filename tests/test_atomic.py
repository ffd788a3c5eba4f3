"""atomic_write: a file that must survive a crash is the old version or the new one, whole."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from rmdaemon.atomic import atomic_write


def test_the_new_file_is_complete_and_no_temp_file_is_left(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    atomic_write(target, b"new " * 100_000)
    assert target.read_bytes() == b"new " * 100_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_write_that_fails_halfway_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    """A real short write: the child may not write files over 64 KiB (EFBIG), as on a full disk."""
    target = tmp_path / "state.json"
    target.write_bytes(b"old and complete")
    child = (
        "import resource, signal, sys; from pathlib import Path; from rmdaemon.atomic import atomic_write\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n"
        "try:\n"
        "    atomic_write(Path(sys.argv[1]), b'x' * 1_000_000)\n"
        "except OSError as e:\n"
        "    sys.exit(f'refused: {e.strerror}')\n"
    )
    done = subprocess.run([sys.executable, "-c", child, str(target)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.stderr.startswith("refused: File too large"), done.stderr
    assert target.read_bytes() == b"old and complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_a_rename_that_fails_leaves_the_target_and_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "report.md").mkdir()  # a folder where the file should go: the rename is refused
    with pytest.raises(IsADirectoryError):
        atomic_write(tmp_path / "report.md", b"# Report\n", mode=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_mode_is_exact_whatever_the_umask_and_none_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        (tmp_path / "private").write_bytes(b"old")
        os.chmod(tmp_path / "private", 0o644)
        atomic_write(tmp_path / "private", b"secret", mode=0o600)
        atomic_write(tmp_path / "shared", b"report", mode=None)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "shared").stat().st_mode) == 0o644
