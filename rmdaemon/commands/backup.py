"""``rmdaemon backup --out FILE``: one archive to restore an installation from, taken while the
daemon runs, holding the state file, the quarantined messages its rows name, and the
installation's secret file beside the state if there is one.

No lock is needed: the state file and every quarantined message are only ever replaced whole
(``atomic.py``), so each is read as one complete version. The archive is written atomically
with mode 0600: it holds pairs' private notes (and the secret) as the originals do.
"""

from __future__ import annotations

import io
import tarfile
from datetime import datetime
from pathlib import Path

from rmdaemon.atomic import atomic_write
from rmdaemon.config import Settings
from rmdaemon.errors import UserError
from rmdaemon.programme.quarantine import quarantine_dir
from rmdaemon.store import snapshot

# The installation's own secret beside the state file (never a backend credential, which the
# config names and the admin keeps elsewhere): whatever it is called, it goes in too.
SECRET_NAMES = ("*secret*", "*.key")


def backup(settings: Settings, out: Path, now: datetime) -> str:
    state = settings.storage_path
    files = {state.name: snapshot(state), **_quarantined(settings), **_secrets(state)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        folder = tarfile.TarInfo(quarantine_dir(settings).name)  # restored 0700, as the daemon keeps it
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o700, int(now.timestamp())
        tar.addfile(folder)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(now.timestamp())
            tar.addfile(info, io.BytesIO(data))
    try:
        atomic_write(out, buffer.getvalue(), mode=0o600)
    except OSError as e:
        raise UserError(f"{out}: cannot write the backup ({e.strerror})") from None
    secrets = [n for n in files if "/" not in n and n != state.name]
    return (f"wrote {out}: {state.name}, {sum('/' in n for n in files)} quarantined messages"
            + (f", {', '.join(secrets)}" if secrets else "") + "; restore: docs/production.md, 'Backups and restore'")


def _quarantined(settings: Settings) -> dict[str, bytes]:
    """Every file in the quarantine folder; one removed while we read (retention, purge) is skipped."""
    folder = quarantine_dir(settings)
    found = {}
    for path in sorted(folder.glob("*.eml")) if folder.is_dir() else ():
        try:
            found[f"{folder.name}/{path.name}"] = path.read_bytes()
        except FileNotFoundError:
            continue
    return found


def _secrets(state: Path) -> dict[str, bytes]:
    paths = {p for pattern in SECRET_NAMES for p in state.parent.glob(pattern) if p.is_file() and p != state}
    return {p.name: p.read_bytes() for p in sorted(paths) if not p.name.startswith(".")}
