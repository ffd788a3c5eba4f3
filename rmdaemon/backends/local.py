"""The embedded backend: mail goes out as files into a Maildir, replies come from a Maildir.

Nothing else to install, and every message is a real RFC 5322 file a person or a test can open.
A message's file name derives from its idempotency key, so a send repeated after a crash finds
the earlier file and writes nothing (the rename into ``new/`` is atomic: a file is there whole
or not at all).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import stat
from datetime import datetime
from pathlib import Path

from rmdaemon.backends import imip
from rmdaemon.backends.base import DEFAULT_MAX_BYTES, Backend
from rmdaemon.clock import Clock
from rmdaemon.errors import BackendError
from rmdaemon.model import Incoming, Meeting, Outgoing

SUBDIRS = ("tmp", "new", "cur")


def ensure_maildir(path: Path) -> None:
    for sub in SUBDIRS:
        (path / sub).mkdir(parents=True, exist_ok=True)


def file_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32] + ".eml"


def _sync_filesystem(path: Path) -> None:
    """syncfs(2) on the filesystem holding ``path`` (Linux); elsewhere sync(2)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class LocalBackend(Backend):
    name = "local"
    invites_by_mail = True

    def __init__(self, outbox: Path, inbox: Path, clock: Clock, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.outbox, self.inbox, self.clock, self.max_bytes = outbox, inbox, clock, max_bytes
        self._delivered: set[str] | None = None
        self._unsynced = False

    # -- sending -------------------------------------------------------------------------
    def _delivered_names(self) -> set[str]:
        """Names already in the outbox, read once: checking per send would be quadratic."""
        if self._delivered is None:
            try:  # an outbox that cannot be read is a send that failed for now, like one that cannot be written
                ensure_maildir(self.outbox)
                names = set(os.listdir(self.outbox / "new"))
                names.update(n.partition(":")[0] for n in os.listdir(self.outbox / "cur"))
            except OSError as e:
                raise BackendError(f"cannot read outbox {self.outbox}: {e.strerror}") from e
            self._delivered = names
        return self._delivered

    def was_sent(self, key: str) -> bool:
        return file_name(key) in self._delivered_names()

    def send(self, message: Outgoing) -> None:
        name = file_name(message.key)
        if name not in self._delivered_names():  # found sent: its bytes need not even be unpacked
            self._write(name, message.raw)

    def _write(self, name: str, raw: bytes) -> None:
        """The message into ``new/`` by way of ``tmp/``, unless a file of that name is there.
        Made durable by flush(), once for the whole batch. Written with plain os calls on string
        paths: pathlib's objects and buffered file were a third of the cost of a message here."""
        delivered = self._delivered_names()
        if name in delivered:
            return
        tmp = f"{self.outbox}/tmp/{name}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
            try:
                _write_all(fd, raw)
            finally:
                os.close(fd)
            os.replace(tmp, f"{self.outbox}/new/{name}")
        except OSError as e:
            raise BackendError(f"cannot write to outbox {self.outbox}: {e.strerror}") from e
        delivered.add(name)
        self._unsynced = True

    def flush(self) -> None:
        """Everything written since the last flush reaches the disk in one syncfs(2): per-file and
        per-directory fsyncs made a large tick wait on the disk for most of its time. Jobs call
        this before they record the messages as sent; a process killed before it loses nothing
        (the files are in the page cache), and the key-named files stop a second copy."""
        if self._unsynced:
            _sync_filesystem(self.outbox / "new")
            self._unsynced = False

    def publish(self, meeting: Meeting) -> None:
        """The series' invitations, made durable with the rest by the job's ``flush`` (a flush per
        series was a tenth of a first tick at 10,000 pairs)."""
        for mail in imip.series_mail(meeting, self.clock()):
            self._write(file_name(mail.key), mail.raw)

    def cancel_occurrence(self, meeting: Meeting, start: datetime) -> None:
        for mail in imip.occurrence_mail(meeting, start, self.clock()):
            self._write(file_name(mail.key), mail.raw)

    # -- receiving -----------------------------------------------------------------------
    def fetch_new(self) -> list[Incoming]:
        ensure_maildir(self.inbox)
        new = self.inbox / "new"
        entries = [e for e in os.scandir(new) if not e.name.startswith(".") and not e.is_dir(follow_symlinks=False)]
        entries.sort(key=lambda e: (e.stat(follow_symlinks=False).st_mtime_ns, e.name))
        return [self._read(e.name, e.path) for e in entries]

    def _read(self, name: str, path: str) -> Incoming:
        """The file's first ``max_bytes + 1`` bytes (more is refused as too large anyway), read
        without following a symlink and only from a regular file: anyone who can write into the
        inbox folder must not make us copy ``/etc/passwd`` into the quarantine, or block on a FIFO."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as e:
            return Incoming(ref=name, raw=b"", refused=f"not read: cannot open it without following a link ({e.strerror})")
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return Incoming(ref=name, raw=b"", refused="not read: not a regular file")
            return Incoming(ref=name, raw=f.read(self.max_bytes + 1))

    def mark_processed(self, ref: str) -> None:
        src = self.inbox / "new" / ref
        if os.path.lexists(src):  # a refused symlink moves too (the link itself, never its target)
            os.replace(src, self.inbox / "cur" / f"{ref.partition(':')[0]}:2,S")

    def check_online(self) -> list[str]:
        problems = []
        for box in (self.outbox, self.inbox):
            try:
                ensure_maildir(box)
            except OSError as e:
                problems.append(f"{box}: cannot create the Maildir ({e.strerror}); check [backend.local] and permissions")
                continue
            if not os.access(box / "new", os.W_OK):
                problems.append(f"{box}/new: not writable; fix its permissions")
        return problems
