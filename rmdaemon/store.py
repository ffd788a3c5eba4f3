"""The state file: TinyDB over a storage that is crash-safe and cheap.

TinyDB's own JSONStorage re-reads the file on every operation and rewrites it in place, so a
``kill -9`` mid-write leaves a half-written file (10 of 150 trials). ``AtomicStorage`` reads the
file once, keeps the data in memory and replaces the file atomically on every write; a
``Store.batch()`` turns many changes into one such write. One writer process at a time holds
an ``flock`` on ``<file>.lock``; readers take no lock and see the last complete file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from rmdaemon.atomic import AtomicFile, atomic_write
from rmdaemon.errors import UserError

Data = dict[str, dict[str, Any]]

SCHEMA_VERSION = 2
META_TABLE = "_meta"
_META_DOC = "1"  # _meta is a real TinyDB table holding one document, so the file stays TinyDB's shape


def _date_cancellations(data: Data) -> Data:
    """Schema 1 → 2: a series cancelled before cancellations were dated has no ``cancelled_at``, and
    every one of its sessions, held ones too, read as cancelled (``programme/sessions.py``). Date it
    by the best the file knows: the pair's last PAUSE or STOP, else when retention saw it end, else
    the latest run. (Table names as in ``records/vocabulary.py``, which imports this module.)"""
    latest = data.get(META_TABLE, {}).get(_META_DOC, {}).get("clock:latest")
    asked: dict[str, str] = {}
    for row in data.get("commands", {}).values():
        if row.get("command") in ("pause", "stop") and isinstance(row.get("at"), str):
            asked[row.get("pair_id")] = max(asked.get(row.get("pair_id"), ""), row["at"])
    for doc in data.get("pairs", {}).values():
        when = asked.get(doc.get("pair_id")) or doc.get("ended_at") or latest
        for series in [doc.get("series"), *(doc.get("earlier_series") or [])]:
            if when and isinstance(series, dict) and series.get("cancelled") and not series.get("cancelled_at"):
                series["cancelled_at"] = when
    return data


# Schema N → N+1, one function a step, for state files written by an older rmdaemon. A writer
# keeps the old file as ``<file>.schema<N>.bak`` before it writes the upgraded one (docs/state.md).
MIGRATIONS: dict[int, Callable[[Data], Data]] = {1: _date_cancellations}
# datetimes and dataclasses would come back as strings or dicts after a restart: refuse them.
_DUMP_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS



class ReadOnlyStoreError(RuntimeError):
    """A read-only Store was asked to write: a bug in the caller, not a user mistake."""


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _refuse(value: object) -> Any:
    raise TypeError(f"cannot store {type(value).__name__} {value!r}; store str/int/float/bool/list/dict")


def _keep_backup(path: Path) -> None:
    """Point ``<name>.bak`` at the current (complete) file before it is replaced.

    Files are never modified in place, so a hard link is a free, exact copy; the rename makes
    the backup switch atomic too. Filesystems without hard links get a real copy.
    """
    if not path.exists():
        return
    backup, tmp = _sibling(path, ".bak"), _sibling(path, ".bak.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)
    except OSError:
        atomic_write(backup, path.read_bytes(), path.stat().st_mode & 0o777)
        return
    os.replace(tmp, backup)


def _serialised(data: Data, documents: int = 500) -> Iterator[bytes]:
    """``orjson.dumps(data)``'s bytes, a few hundred documents at a time: a state written from
    one whole serialised copy held 27 MB more at 10,000 pairs (a tick's peak), and the pieces
    cost no more to make (``tests/test_store.py`` compares the bytes)."""
    yield b"{"
    for i, (name, table) in enumerate(data.items()):
        yield b"%s%s:{" % (b"," if i else b"", orjson.dumps(name))
        documents_left, comma = iter(table.items()), b""
        while piece := dict(islice(documents_left, documents)):
            yield comma
            yield memoryview(orjson.dumps(piece, option=_DUMP_OPTIONS, default=_refuse))[1:-1]
            comma = b","
        yield b"}"
    yield b"}"


def _write_unless(path: Path, pieces: Iterable[bytes], committed: bytes) -> tuple[bytes, int] | None:
    """Replace ``path`` by the bytes of ``pieces``, keeping the file it replaces as
    ``<name>.bak``, unless their fingerprint is ``committed`` (nothing changed: no fsync, no
    rename). Returns the new fingerprint and size, or None when unchanged."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    digest, size = hashlib.blake2b(digest_size=16), 0
    with AtomicFile(path, mode) as file:
        for piece in pieces:
            digest.update(piece)
            file.write(piece)
            size += len(piece)
        if digest.digest() == committed:
            return None
        _keep_backup(path)
        file.commit()
    return digest.digest(), size


def _corrupt(path: Path, reason: str) -> UserError:
    """The corrupt-file error; it names the backup so the user never loses more than one write."""
    backup = _sibling(path, ".bak")
    if backup.exists():
        fix = f"restore the last good copy with: cp {backup} {path}"
    else:
        fix = f"there is no backup ({backup}); move {path} away to start with an empty state"
    return UserError(f"{path}: the state file is corrupt ({reason}); rmdaemon will not overwrite it", [fix])


def _check_shape(path: Path, data: object) -> int:
    """Validate TinyDB's ``{table: {doc_id: {...}}}`` shape and return the file's schema version."""
    if not isinstance(data, dict):
        raise _corrupt(path, f"expected a JSON object at the top, found {type(data).__name__}")
    for name, table in data.items():
        if not isinstance(table, dict):
            raise _corrupt(path, f"table {name!r} is not an object")
        for doc_id, doc in table.items():
            if not doc_id.isdigit() or not isinstance(doc, dict):
                raise _corrupt(path, f"table {name!r} has a malformed document {doc_id!r}")
    schema = data.get(META_TABLE, {}).get(_META_DOC, {}).get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise _corrupt(path, f"no schema version in table {META_TABLE!r}; is this an rmdaemon state file?")
    return schema


def _share_strings(data: Data) -> None:
    """Make equal string values one object. The parser gives every value its own, and most repeat
    (states, kinds, times of a tick, pair ids, starters): at 10,000 pairs the state held 106 MB in
    memory for a 27 MB file, 71 MB once shared, for 0.3 s at each load (docs/performance.md)."""
    seen: dict[str, str] = {}
    todo: list[dict | list] = [data]
    while todo:
        container = todo.pop()
        for k, v in container.items() if isinstance(container, dict) else enumerate(container):
            if type(v) is str:
                container[k] = seen.setdefault(v, v)
            elif type(v) is dict or type(v) is list:
                todo.append(v)


def _load(path: Path, *, upgrade: bool = False) -> tuple[Data, bytes]:
    """Read and check the file once; a missing file is an empty state, anything unreadable an error.
    A file of an older schema is read upgraded; ``upgrade`` (a writer, under its lock) also keeps
    its bytes as ``<file>.schema<N>.bak`` and then writes it upgraded, both atomically, so a crash
    in between leaves the old file and its copy. (Checking the schema apart parsed the whole file a
    second time on every open: a third of a second at 10,000 pairs.)"""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        data: Data = {META_TABLE: {_META_DOC: {"schema": SCHEMA_VERSION}}}
        return data, orjson.dumps(data)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the state file: {exc.strerror}") from exc
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _corrupt(path, f"not valid JSON: {exc}") from exc
    schema = _check_shape(path, data)
    _share_strings(data)
    if schema > SCHEMA_VERSION:
        raise UserError(
            f"{path}: the state file has schema {schema}, newer than this rmdaemon understands"
            f" ({SCHEMA_VERSION})",
            ["upgrade rmdaemon, or point [storage] path at a file written by this version"],
        )
    if schema < SCHEMA_VERSION:  # readers see the upgraded state; only a writer rewrites the file
        if upgrade:
            atomic_write(_sibling(path, f".schema{schema}.bak"), raw, mode=0o600)
        data = _migrated(data, schema)
        raw = orjson.dumps(data, option=_DUMP_OPTIONS)
        if upgrade:
            atomic_write(path, raw, mode=0o600)
    return data, raw


def _migrated(data: Data, schema: int) -> Data:
    for version in range(schema, SCHEMA_VERSION):
        data = MIGRATIONS[version](data)
        data.setdefault(META_TABLE, {}).setdefault(_META_DOC, {})["schema"] = version + 1
    return data


def snapshot(path: Path) -> bytes:
    """The state file's bytes as a reader sees them, checked: files are only replaced whole, so one
    read is one complete version even while the daemon writes (no lock is taken)."""
    if not path.exists():
        raise UserError(f"{path}: no state file yet; run 'rmdaemon run --once' first")
    return _load(path)[1]


def _fingerprint(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


class _Rollback:
    """What a failed batch returns the data to: the file (``to_file``: nothing was uncommitted
    when it began), or ``payload``, the data serialised when the batch first read it."""

    __slots__ = ("to_file", "payload")

    def __init__(self, *, to_file: bool) -> None:
        self.to_file = to_file
        self.payload: bytes | None = None


class AtomicStorage(Storage):
    """TinyDB storage: the data lives in memory, every write replaces the file atomically.

    Only a fingerprint of the bytes last read or written is kept (the state file is the largest
    thing in memory at 10,000 pairs; a copy of its bytes cost ~30 MB of peak RSS): a rollback to
    the committed state reads the file again, so a failed write or an aborted batch leaves memory
    equal to the file. The file on disk always is the committed state: the writer lock keeps
    everyone else from replacing it.
    """

    def __init__(self, path: Path, *, writer: bool) -> None:
        self.path = Path(path)
        self.writer = writer
        self._data, raw = _load(self.path, upgrade=writer)
        self._committed = _fingerprint(raw)
        self._depth = 0
        self._lazy = 0  # inside Store.deferred(): changes wait for the next write or flush()
        self._dirty = False
        self.later: dict[str, Any] = {}  # meta values for the next write (Store.set_meta_later), kept apart from the data
        self._open: list[_Rollback] = []  # the batches entered, outermost first
        self.writes = 0
        self.bytes_written = 0

    def read(self) -> Data:
        """The data, for TinyDB to read or change. A batch begun with uncommitted (deferred)
        changes takes its copy to roll back to here, before its first change: a batch that
        never touches the tables (most of a tick's) takes none."""
        untaken = [rollback for rollback in self._open if not rollback.to_file and rollback.payload is None]
        if untaken:
            payload = orjson.dumps(self._data, option=_DUMP_OPTIONS, default=_refuse)
            for rollback in untaken:
                rollback.payload = payload
        return self._data

    def peek(self) -> Data:
        """The data, for reading only (``Store.rows``, ``Store.meta``): no rollback copy needed."""
        return self._data

    def write(self, data: Data) -> None:
        if not self.writer:
            self._restore(None)
            raise ReadOnlyStoreError(f"{self.path}: this Store was opened read-only")
        self._data = data
        self._dirty = True
        if self._depth == 0 and self._lazy == 0:
            self._flush()

    def begin(self) -> _Rollback:
        """Enter a batch; return what to restore if it fails: the file when it holds the data,
        else the data as the batch first read it (``read``), when there are uncommitted
        (deferred) changes to keep."""
        rollback = _Rollback(to_file=not self._dirty)
        self._open.append(rollback)
        self._depth += 1
        return rollback

    def end(self, rollback: _Rollback, *, failed: bool) -> None:
        """Leave a batch: roll back if it failed, write once if it was the outermost."""
        self._open.remove(rollback)
        self._depth -= 1
        if failed:
            if rollback.to_file or rollback.payload is not None:
                self._restore(rollback.payload)
            # else the batch never read the data, so never changed it: it stays as it was
        elif self._depth == 0 and self._lazy == 0 and self._dirty:
            self._flush()

    def flush(self) -> None:
        """Write now if anything changed (deferred changes included)."""
        if (self._dirty or self.later) and self._depth == 0:
            self._flush()

    def _flush(self) -> None:
        try:
            if self.later:
                self._data[META_TABLE][_META_DOC].update(self.later)
                self.later.clear()
            written = _write_unless(self.path, _serialised(self._data), self._committed)
        except BaseException:
            self._restore(None)
            raise
        self._dirty = False
        if written is None:  # nothing really changed: no write, no fsync
            return
        self._committed, size = written
        self.writes += 1
        self.bytes_written += size

    def _restore(self, snapshot: bytes | None) -> None:
        if snapshot is None:
            self._data, raw = _load(self.path)
            self._committed, self._dirty = _fingerprint(raw), False
        else:
            self._data, self._dirty = orjson.loads(snapshot), True


def _acquire_lock(path: Path) -> int:
    """Take the single-writer lock on ``<file>.lock``; the kernel drops it when the process dies."""
    fd = os.open(_sibling(path, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        pid = holder if holder.isdigit() else "unknown"
        raise UserError(
            f"{path}: another rmdaemon (pid {pid}) is running with this state file; stop it first"
            " or use a read-only command such as 'rmdaemon status'"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _release_lock(fd: int) -> None:
    os.ftruncate(fd, 0)  # no stale pid for the next holder's rivals to read
    os.close(fd)  # closing the only descriptor releases the flock


class Store:
    """The daemon's state: TinyDB tables, small meta values, batches, and the writer lock."""

    def __init__(self, path: Path, db: TinyDB, lock_fd: int | None) -> None:
        self.path = path
        self._db = db
        self._storage: AtomicStorage = db.storage  # type: ignore[assignment]
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, path: Path, *, writer: bool = True) -> Store:
        """Open the state file; a writer locks it first so it reads what no one else will change."""
        path = Path(path)
        lock_fd = None
        try:
            if writer:
                path.parent.mkdir(parents=True, exist_ok=True)
                lock_fd = _acquire_lock(path)
            db = TinyDB(path, writer=writer, storage=AtomicStorage)
        except BaseException as exc:
            if lock_fd is not None:
                _release_lock(lock_fd)
            if isinstance(exc, OSError):
                raise UserError(f"{path}: cannot open the state file: {exc.strerror}") from exc
            raise
        return cls(path, db, lock_fd)

    @property
    def writer(self) -> bool:
        return self._storage.writer

    @property
    def writes(self) -> int:
        """Number of times the file was replaced (for benchmarks and tests)."""
        return self._storage.writes

    @property
    def bytes_written(self) -> int:
        return self._storage.bytes_written

    def table(self, name: str) -> Table:
        """A TinyDB table. The query cache is off: it would hand out stale results after a rollback."""
        if name == META_TABLE:
            raise ValueError(f"{META_TABLE!r} is reserved; use Store.meta()/set_meta()")
        return self._db.table(name, cache_size=0)

    def rows(self, name: str) -> Mapping[str, dict[str, Any]]:
        """A table's documents as stored, by document id, without TinyDB's copy of every document
        (``all()`` copies each one; on a 40,000-document outbox read by every job that was most
        of a tick's memory churn). Read-only: change documents through ``table()``."""
        if name == META_TABLE:
            raise ValueError(f"{META_TABLE!r} is reserved; use Store.meta()/set_meta()")
        return MappingProxyType(self._storage.peek().get(name, {}))

    @contextmanager
    def batch(self) -> Iterator[Store]:
        """Make every write inside one atomic file write; on an exception, undo them all."""
        rollback = self._storage.begin()
        try:
            yield self
        except BaseException:
            self._storage.end(rollback, failed=True)
            raise
        self._storage.end(rollback, failed=False)

    @contextmanager
    def deferred(self) -> Iterator[Store]:
        """A batch whose write may wait: for records that only confirm what already happened
        (a message sent, a job's last run). Losing them in a crash means the work is offered
        again, and backends skip what they already did; the next ordinary batch or ``flush()``
        writes them. Intents (what is about to be sent or booked) must use ``batch()``."""
        self._storage._lazy += 1
        try:
            with self.batch():
                yield self
        finally:
            self._storage._lazy -= 1

    def flush(self) -> None:
        """Write any deferred changes now (the daemon does this at the end of every tick)."""
        self._storage.flush()

    def meta(self, key: str, default: Any = None) -> Any:
        if key in self._storage.later:
            return self._storage.later[key]
        return self._storage.peek()[META_TABLE][_META_DOC].get(key, default)

    def set_meta_later(self, key: str, value: Any) -> None:
        """``set_meta`` as a deferred change (``deferred()``): written with the next write or
        ``flush()``, lost in a crash before then. Kept apart from the data, so the store stays
        clean: a batch begun while deferred changes wait keeps a serialised copy of the whole
        state to roll back to, and every job's record of its run made the next batch take one
        (27 MB and a tenth of a second each at 10,000 pairs, a dozen a tick)."""
        if key == "schema":
            raise ValueError("the schema version is managed by the store")
        if not self.writer:
            raise ReadOnlyStoreError(f"{self.path}: this Store was opened read-only")
        self._storage.later[key] = value

    def set_meta(self, key: str, value: Any) -> None:
        """Record a small value (e.g. a job's last run) in the same atomic file as the tables."""
        if key == "schema":
            raise ValueError("the schema version is managed by the store")
        if not self.writer:
            raise ReadOnlyStoreError(f"{self.path}: this Store was opened read-only")
        data = self._storage.read()
        data[META_TABLE][_META_DOC][key] = value
        self._storage.later.pop(key, None)  # the newer value
        self._storage.write(data)

    def close(self) -> None:
        """Write deferred changes, then release the writer lock."""
        if self.writer:
            self._storage.flush()
        self._db.close()
        if self._lock_fd is not None:
            _release_lock(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
