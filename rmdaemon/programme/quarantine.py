"""Where a message that could not be used is kept: its raw bytes beside the state file, so
nothing that arrives is lost, and so that purge and retention can delete a pair's share."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from rmdaemon.atomic import atomic_write
from rmdaemon.config import Settings
from rmdaemon.records import INBOX, InboxRow
from rmdaemon.store import Store


def quarantine_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32] + ".eml"


def quarantine_dir(settings: Settings) -> Path:
    """Raw bytes of quarantined messages live beside the state file, named in the inbox table."""
    return settings.storage_path.parent / "quarantine"


def quarantine_file(settings: Settings, key: str, raw: bytes) -> None:
    """Keep the raw bytes beside the state file; written atomically, so a rerun rewrites the same file.

    Quarantined replies are private notes and strangers' mail: the folder is 0700 and each file
    0600 whatever the umask (the file name is a hash, never a value taken from the message).
    """
    folder = quarantine_dir(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # mkdir's mode is cut by the umask and ignored for an existing folder
    atomic_write(folder / quarantine_name(key), raw, mode=0o600)


def mentions(path: Path, needles: set[str]) -> bool:
    """The file's bytes name one of ``needles`` (tokens, addresses), case-insensitively; a link
    or unreadable file never matches (it is not ours to read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        text = f.read().decode("latin-1").casefold()
    return any(n.casefold() in text for n in needles)


def delete_mentioning(folder: Path, needles: set[str]) -> set[str]:
    """Delete the quarantined messages that carry one of the pair's tokens or addresses (a
    stranger's forgery on its token, a reply from an address no longer in the roster); their names."""
    gone: set[str] = set()
    for path in (folder.iterdir() if folder.is_dir() and needles else []):
        if path.suffix == ".eml" and mentions(path, needles):
            path.unlink(missing_ok=True)
            gone.add(path.name)
    return gone


def delete_quarantined(store: Store, folder: Path, pair_ids: set[str]) -> None:
    """The raw bytes kept for these pairs' quarantined messages (their inbox rows stay)."""
    for row in map(InboxRow.from_doc, store.rows(INBOX).values()):
        if row.pair_id in pair_ids and row.quarantine:
            (folder / row.quarantine).unlink(missing_ok=True)
