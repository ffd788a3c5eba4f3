"""The installation's secret: 32 random bytes in ``secret.key`` beside the state file.

Everything an outsider could use to act for a pair is derived from it with HMAC-SHA256: the
subject tokens, the Message-IDs and the UIDs of new series (``compose.keyed``). Without it they
were hashes of public values (pair ids, the organiser's domain), the same on every install, so
anyone could compute a pair's series UID and answer for its people (docs/security.md).

It is made on the first run (and on the first run after an upgrade from a version without it),
written atomically with mode 0600, and never logged. The state records its identity (an HMAC of
a fixed label, not the secret), so a missing, replaced or foreign key is refused with the fix
instead of silently giving new pairs identifiers from another key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from rmdaemon.atomic import atomic_write
from rmdaemon.errors import UserError
from rmdaemon.store import Store

FILE_NAME = "secret.key"
IDENTITY = "secret_id"  # the state's meta key
SIZE = 32
_FIX_LOST = "see docs/security.md, 'The installation secret', for what losing it means and how to start a new one"


def secret_path(state: Path) -> Path:
    return state.with_name(FILE_NAME)


def installation_secret(store: Store, path: Path | None = None, *, create: bool | None = None) -> bytes:
    """The secret of the installation whose state ``store`` holds (``path``: where it lives, beside
    the state file unless given). A writer makes it when neither it nor a record of it exists;
    ``create=False`` (a dry run) or a reader then gets a throw-away one, as nothing was keyed yet."""
    path = path or secret_path(store.path)
    known = store.meta(IDENTITY)
    if known is None and not os.path.lexists(path):
        if not (store.writer if create is None else create):
            return secrets.token_bytes(SIZE)
        atomic_write(path, secrets.token_hex(SIZE).encode() + b"\n", mode=0o600)
    secret = read_key_file(path)
    if known is None and store.writer:
        store.set_meta(IDENTITY, identity(secret))
    elif known is not None and not hmac.compare_digest(known, identity(secret)):
        raise UserError(f"{path}: this is not the secret the state {store.path} was written with",
                        [f"restore {path.name} from the backup taken with the state ('rmdaemon backup' holds both)",
                         _FIX_LOST])
    return secret


def read_key_file(path: Path) -> bytes:
    """The secret's bytes, or a UserError that says what is wrong with the file and how to fix it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise UserError(f"{path}: the installation secret is missing",
                        [f"restore {path.name} from your backup ('rmdaemon backup' includes it), beside the state file",
                         _FIX_LOST]) from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the installation secret ({e.strerror})",
                        ["run rmdaemon as the user that owns it, or give that user the file (mode 0600)"]) from None
    with os.fdopen(fd, "rb") as file:
        mode = stat.S_IMODE(os.fstat(file.fileno()).st_mode)
        data = file.read(4 * SIZE)
    if mode & 0o077:
        raise UserError(f"{path}: the installation secret has mode {mode:04o}; others could read it",
                        [f"chmod 600 {path}"])
    text = data.strip()
    if len(text) != 2 * SIZE or not all(c in b"0123456789abcdef" for c in text):
        raise UserError(f"{path}: not an rmdaemon secret ({2 * SIZE} hexadecimal digits expected)",
                        [f"restore {path.name} from your backup", _FIX_LOST])
    return bytes.fromhex(text.decode())


def identity(secret: bytes) -> str:
    """What the state keeps to recognise its secret: it reveals nothing of the secret."""
    return hmac.new(secret, b"rmdaemon installation secret", hashlib.sha256).hexdigest()[:16]
