"""The state file on real files: atomic batches, the writer lock, corruption, and kill -9 safety."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from tinydb import Query, TinyDB

import rmdaemon
from rmdaemon.errors import UserError
from rmdaemon.store import SCHEMA_VERSION, ReadOnlyStoreError, Store

REPO = Path(rmdaemon.__file__).resolve().parent.parent


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    """Start a separate Python process running ``code`` and wait until it says it is ready."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def kill9(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


# --- round trip and batches -------------------------------------------------------------------


def test_round_trip_through_a_fresh_open(tmp_path: Path) -> None:
    path = tmp_path / "state" / "rm.json"  # parent directory does not exist yet
    with Store.open(path) as store:
        store.table("pairs").insert({"pair_id": "p1", "topics": ["git"]})
        store.set_meta("last_run.agendas", "2025-03-03T09:00:00+00:00")
    with Store.open(path) as store:
        assert store.table("pairs").search(Query().pair_id == "p1")[0]["topics"] == ["git"]
        assert store.meta("last_run.agendas") == "2025-03-03T09:00:00+00:00"
        assert store.meta("never.set", "default") == "default"
        assert store.meta("schema") == SCHEMA_VERSION


def test_file_stays_readable_by_plain_tinydb(tmp_path: Path) -> None:
    path = tmp_path / "rm.json"
    with Store.open(path) as store:
        store.table("pairs").insert({"pair_id": "p1"})
    plain = TinyDB(path, access_mode="r")
    assert plain.table("pairs").all() == [{"pair_id": "p1"}]
    plain.close()


def test_batch_of_1000_inserts_is_one_file_write(tmp_path: Path) -> None:
    with Store.open(tmp_path / "rm.json") as store:
        pairs = store.table("pairs")
        with store.batch():
            for i in range(1000):
                pairs.insert({"i": i})
        assert store.writes == 1
        assert store.bytes_written == (tmp_path / "rm.json").stat().st_size
        assert len(pairs) == 1000


def test_a_large_state_is_written_in_orjsons_compact_form_whole(tmp_path: Path) -> None:
    """The file is written a few hundred documents at a time: its bytes are still exactly what one
    ``orjson.dumps`` of the state writes (tables in order, empty ones too), so any JSON reader and
    the state's fingerprint see the same file as before."""
    path = tmp_path / "rm.json"
    with Store.open(path) as store, store.batch():
        store.table("outbox").insert_multiple({"key": f"k{i}", "to": [f"é{i}@x"], "n": i / 7} for i in range(1234))
        store.table("empty").insert({"x": 1})
        store.table("empty").truncate()
        store.table("pairs").insert({"pair_id": "P1", "consent": {}, "goal": None})
    raw = path.read_bytes()
    assert raw == orjson.dumps(orjson.loads(raw))
    assert list(orjson.loads(raw)) == ["_meta", "outbox", "empty", "pairs"]
    assert len(orjson.loads(raw)["outbox"]) == 1234 and store.bytes_written == len(raw)


def test_writes_outside_a_batch_are_each_durable(tmp_path: Path) -> None:
    with Store.open(tmp_path / "rm.json") as store:
        store.table("pairs").insert({"i": 1})
        store.set_meta("k", 2)
        assert store.writes == 2


def test_exception_in_batch_rolls_back_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "rm.json"
    with Store.open(path) as store:
        pairs = store.table("pairs")
        pairs.insert({"i": 0})
        before = path.read_bytes()
        with pytest.raises(KeyError), store.batch():
            pairs.insert({"i": 1})
            pairs.update({"i": 99}, doc_ids=[1])
            store.set_meta("k", "v")
            raise KeyError("boom")
        assert store.writes == 1
        assert path.read_bytes() == before
        assert pairs.all() == [{"i": 0}]
        assert store.meta("k") is None
        pairs.insert({"i": 2})  # the store is usable after a rollback
    with Store.open(path) as store:
        assert sorted(d["i"] for d in store.table("pairs").all()) == [0, 2]


def test_rows_are_the_stored_documents_by_id_read_only_and_current(tmp_path: Path) -> None:
    with Store.open(tmp_path / "rm.json") as store:
        pairs = store.table("pairs")
        assert dict(store.rows("pairs")) == {}
        pairs.insert_multiple([{"i": 1}, {"i": 2}])
        rows = store.rows("pairs")
        assert {k: d["i"] for k, d in rows.items()} == {"1": 1, "2": 2}
        with pytest.raises(TypeError):
            rows["3"] = {"i": 3}  # type: ignore[index]
        with pytest.raises(KeyError), store.batch():
            pairs.insert({"i": 3})
            raise KeyError("boom")
        assert sorted(d["i"] for d in store.rows("pairs").values()) == [1, 2]  # the rollback shows


def test_rollback_after_a_deferred_change_keeps_it_and_the_file_is_only_read_when_needed(tmp_path: Path) -> None:
    """A failed batch restores what was there before it, deferred (not yet written) changes included."""
    path = tmp_path / "rm.json"
    with Store.open(path) as store:
        pairs = store.table("pairs")
        pairs.insert({"i": 1})
        with store.deferred():
            pairs.insert({"i": 2})
        with pytest.raises(KeyError), store.batch():
            pairs.insert({"i": 3})
            raise KeyError("boom")
        assert sorted(d["i"] for d in pairs.all()) == [1, 2]
        assert store.writes == 1
    with Store.open(path) as store:
        assert sorted(d["i"] for d in store.table("pairs").all()) == [1, 2]  # written at close


def test_nested_batch_writes_once_and_inner_failure_undoes_only_the_inner_part(tmp_path: Path) -> None:
    with Store.open(tmp_path / "rm.json") as store:
        pairs = store.table("pairs")
        with store.batch():
            pairs.insert({"i": 1})
            with store.batch():
                pairs.insert({"i": 2})
            with pytest.raises(ValueError), store.batch():
                pairs.insert({"i": 3})
                raise ValueError
            assert store.writes == 0
        assert store.writes == 1
        assert sorted(d["i"] for d in pairs.all()) == [1, 2]


def test_unstorable_value_is_refused_and_leaves_memory_equal_to_file(tmp_path: Path) -> None:
    """A datetime would silently come back as a string after a restart; refuse it at write time."""
    with Store.open(tmp_path / "rm.json") as store:
        pairs = store.table("pairs")
        with pytest.raises(TypeError, match="datetime"):
            pairs.insert({"at": datetime(2025, 1, 1, tzinfo=timezone.utc)})
        assert pairs.all() == []
        assert store.writes == 0


def test_1000_docs_via_insert_multiple_keep_ids_and_data(tmp_path: Path) -> None:
    path = tmp_path / "rm.json"
    with Store.open(path) as store, store.batch():
        ids = store.table("logs").insert_multiple({"n": i, "note": f"note {i} ✓"} for i in range(1000))
    with Store.open(path, writer=False) as store:
        logs = store.table("logs")
        assert len(logs) == 1000
        assert [logs.get(doc_id=i)["n"] for i in ids] == list(range(1000))
        assert logs.get(doc_id=ids[-1])["note"] == "note 999 ✓"


# --- the writer lock ----------------------------------------------------------------------------


def test_second_writer_is_refused_naming_the_pid_until_the_first_closes(tmp_path: Path) -> None:
    path = tmp_path / "rm.json"
    first = Store.open(path)
    with pytest.raises(UserError) as err:
        Store.open(path)
    assert str(err.value) == (
        f"{path}: another rmdaemon (pid {os.getpid()}) is running with this state file; "
        "stop it first or use a read-only command such as 'rmdaemon status'"
    )
    first.close()
    Store.open(path).close()


def test_reader_works_while_a_writer_holds_the_lock_and_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "rm.json"
    with Store.open(path) as writer:
        writer.table("pairs").insert({"pair_id": "p1"})
        with Store.open(path, writer=False) as reader:
            pairs = reader.table("pairs")
            assert pairs.all() == [{"pair_id": "p1"}]
            with pytest.raises(ReadOnlyStoreError):
                pairs.insert({"pair_id": "p2"})
            with pytest.raises(ReadOnlyStoreError):
                reader.set_meta("k", 1)
            assert pairs.all() == [{"pair_id": "p1"}]
    assert orjson.loads(path.read_bytes())["pairs"] == {"1": {"pair_id": "p1"}}


def test_reader_of_a_missing_file_creates_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path / "none" / "rm.json", writer=False) as reader:
        assert reader.table("pairs").all() == []
    assert list(tmp_path.iterdir()) == []


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "rm.json"
    holder = spawn(
        "import sys; from rmdaemon.store import Store\n"
        "s = Store.open(sys.argv[1]); print('ready', flush=True); sys.stdin.read()",
        str(path),
    )
    with pytest.raises(UserError, match=f"pid {holder.pid}"):
        Store.open(path)
    kill9(holder)
    Store.open(path).close()


# --- corrupt and foreign files ---------------------------------------------------------------


def test_corrupt_file_without_backup_is_refused_not_restarted(tmp_path: Path) -> None:
    path = tmp_path / "rm.json"
    path.write_text('{"pairs": {"1": {"pair')
    with pytest.raises(UserError) as err:
        Store.open(path)
    assert f"{path}: the state file is corrupt" in str(err.value)
    assert "no backup" in str(err.value)
    assert path.read_text() == '{"pairs": {"1": {"pair'


def test_corrupt_file_names_the_backup_and_the_restore_command_works(tmp_path: Path) -> None:
    path = tmp_path / "rm.json"
    with Store.open(path) as store:
        store.table("pairs").insert({"pair_id": "p1"})
        store.table("pairs").insert({"pair_id": "p2"})
    path.write_bytes(b"\x00" * 64)  # e.g. a disk error
    with pytest.raises(UserError) as err:
        Store.open(path)
    assert f"cp {path}.bak {path}" in str(err.value)
    shutil.copy(f"{path}.bak", path)  # the fix the message gives; the writer lock was not leaked
    with Store.open(path) as store:
        assert store.table("pairs").all() == [{"pair_id": "p1"}]


@pytest.mark.parametrize(
    "content",
    [b"[]", b"{}", b'{"pairs": {"1": 5}, "_meta": {"1": {"schema": 1}}}', b'{"_meta": {"1": {"schema": "1"}}}'],
)
def test_json_of_the_wrong_shape_is_corrupt(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "rm.json"
    path.write_bytes(content)
    with pytest.raises(UserError, match="corrupt"):
        Store.open(path, writer=False)


def test_newer_schema_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "rm.json"
    path.write_bytes(orjson.dumps({"_meta": {"1": {"schema": SCHEMA_VERSION + 1}}}))
    with pytest.raises(UserError) as err:
        Store.open(path)
    assert str(path) in str(err.value)
    assert f"schema {SCHEMA_VERSION + 1}" in str(err.value) and f"({SCHEMA_VERSION})" in str(err.value)


# --- kill -9 at random moments ---------------------------------------------------------------

WRITER_LOOP = """
import sys
from rmdaemon.store import Store
store = Store.open(sys.argv[1])
docs = store.table("docs")
batch = store.meta("batches", 0)
print("ready", flush=True)
while True:
    batch += 1
    with store.batch():
        docs.insert_multiple({"batch": batch, "k": k, "pad": "x" * (batch % 300)} for k in range(5))
        store.set_meta("batches", batch)
        store.set_meta("docs", len(docs))
"""


def assert_complete_state(path: Path) -> int:
    """The file is a whole state written at the end of some batch; return that batch number."""
    with Store.open(path, writer=False) as store:
        batches = store.meta("batches", 0)
        docs = store.table("docs").all()
    assert store.meta("docs", 0) == len(docs) == 5 * batches
    assert {d["batch"] for d in docs} == set(range(1, batches + 1))
    return batches


def test_kill_9_at_random_moments_always_leaves_a_complete_earlier_state(tmp_path: Path) -> None:
    path = tmp_path / "rm.json"
    rng = random.Random(20250303)
    done = 0
    for _ in range(50):
        writer = spawn(WRITER_LOOP, str(path))
        time.sleep(rng.uniform(0, 0.02))  # choosing the kill moment, not waiting for behaviour
        kill9(writer)
        batches = assert_complete_state(path)
        assert batches >= done  # nothing that was written is lost
        done = batches
        backup = tmp_path / "bak-check.json"
        if Path(f"{path}.bak").exists():
            shutil.copy(f"{path}.bak", backup)
            assert assert_complete_state(backup) <= batches
    assert done > 30  # the writer really was killed mid-stream, not before it started


def test_deferred_changes_wait_for_the_next_write_or_flush(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with Store.open(path) as store:
        with store.deferred():
            store.table("outbox").insert({"key": "k1", "status": "sent"})
        assert store.writes == 0
        with Store.open(path, writer=False) as reader:
            assert reader.table("outbox").all() == []  # not on disk yet
        with store.batch():
            store.table("outbox").insert({"key": "k2", "status": "pending"})
        assert store.writes == 1  # the intent carried the deferred change with it
        with store.deferred():
            store.table("outbox").insert({"key": "k3", "status": "sent"})
        store.flush()
        assert store.writes == 2
    with Store.open(path, writer=False) as reader:
        assert [d["key"] for d in reader.table("outbox").all()] == ["k1", "k2", "k3"]


def test_a_meta_value_set_later_is_read_at_once_written_with_the_next_write_and_outlives_a_failed_batch(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with Store.open(path) as store:
        store.set_meta("job:inbox", {"runs": 1})
        store.set_meta_later("job:inbox", {"runs": 2})
        assert store.meta("job:inbox") == {"runs": 2} and store.writes == 1
        with Store.open(path, writer=False) as reader:
            assert reader.meta("job:inbox") == {"runs": 1}  # not on disk yet
        with pytest.raises(RuntimeError), store.batch():
            store.table("outbox").insert({"key": "k1"})
            raise RuntimeError("boom")
        assert store.meta("job:inbox") == {"runs": 2} and store.table("outbox").all() == []
        with store.batch():
            store.table("outbox").insert({"key": "k2"})
        assert store.writes == 2  # the intent carried the waiting value with it
        store.set_meta_later("job:inbox", {"runs": 3})
        store.set_meta("job:inbox", {"runs": 4})  # the newer value wins
    with Store.open(path, writer=False) as reader:
        assert reader.meta("job:inbox") == {"runs": 4}
        with pytest.raises(ReadOnlyStoreError):
            reader.set_meta_later("job:inbox", {"runs": 5})


def test_a_batch_that_changes_nothing_writes_nothing(tmp_path: Path) -> None:
    with Store.open(tmp_path / "state.json") as store:
        store.table("pairs").insert({"pair_id": "P1", "state": "active"})
        writes = store.writes
        with store.batch():
            store.table("pairs").update({"state": "active"})
        assert store.writes == writes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.lock"]  # no temp file left


def test_close_writes_deferred_changes(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with Store.open(path) as store, store.deferred():
        store.table("pairs").insert({"pair_id": "P1"})
    with Store.open(path, writer=False) as reader:
        assert reader.table("pairs").all() == [{"pair_id": "P1"}]


def test_a_state_of_an_older_schema_is_kept_as_a_backup_then_upgraded(tmp_path, monkeypatch):
    """Upgrading rmdaemon: the writer copies the old file aside before it writes the new shape;
    a reader sees the upgraded state without writing anything."""
    from rmdaemon import store as store_module

    path = tmp_path / "state.json"
    with Store.open(path) as s, s.batch():
        s.table("pairs").insert({"pair_id": "P01", "state": "active"})
    old = path.read_bytes()

    def add_field(data):
        for doc in data["pairs"].values():
            doc["upgraded"] = True
        return data

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    monkeypatch.setattr(store_module, "MIGRATIONS", {SCHEMA_VERSION: add_field})
    with Store.open(path, writer=False) as reader:
        assert [d["upgraded"] for d in reader.table("pairs").all()] == [True]
    assert path.read_bytes() == old  # a reader changes nothing on disk
    with Store.open(path) as writer:
        assert writer.meta("schema") == SCHEMA_VERSION + 1
    backup = tmp_path / f"state.json.schema{SCHEMA_VERSION}.bak"
    assert backup.read_bytes() == old and backup.stat().st_mode & 0o777 == 0o600
    upgraded = orjson.loads(path.read_bytes())
    assert upgraded["pairs"]["1"]["upgraded"] is True and upgraded["_meta"]["1"]["schema"] == SCHEMA_VERSION + 1
    with Store.open(path) as again:  # already upgraded: no second backup step
        assert again.table("pairs").all()[0]["upgraded"] is True


def test_schema_1_cancelled_series_get_a_date_so_sessions_before_it_are_not_cancelled(tmp_path: Path) -> None:
    """A state file from before cancellations were dated: the series a PAUSE cancelled is dated by
    that PAUSE (else the retention stamp, else the latest run); sessions before it stay what they were."""
    from rmdaemon.programme.sessions import planned_rows
    from rmdaemon.records import PairRecord

    plan = {"tzid": "Europe/London", "first_start": "2027-01-11T09:00:00+00:00", "duration_minutes": 45,
            "cadence": "weekly", "rrule": "FREQ=WEEKLY;COUNT=6", "count": 6, "until": None}
    series = {"uid": "u1", "plan": plan, "exdates": [], "cancelled": True}
    path = tmp_path / "state.json"
    path.write_bytes(orjson.dumps({
        "_meta": {"1": {"schema": 1, "clock:latest": "2027-03-01T08:00:00+00:00"}},
        "pairs": {"1": {"pair_id": "P01", "state": "paused", "series": series},
                  "2": {"pair_id": "P02", "state": "ended", "series": series, "ended_at": "2027-02-02T00:00:00+00:00"},
                  "3": {"pair_id": "P03", "state": "paused", "series": series}},
        "commands": {"1": {"pair_id": "P01", "command": "pause", "at": "2027-01-20T10:00:00+00:00"}}}))
    with Store.open(path, writer=False) as store:
        docs = {d["pair_id"]: PairRecord.from_doc(d) for d in store.table("pairs").all()}
    cancelled = {pid: ["cancelled_at" in row for row in planned_rows(doc)] for pid, doc in docs.items()}
    assert cancelled == {"P01": [False, False, True, True, True, True], "P02": [False] * 4 + [True] * 2,
                         "P03": [False] * 6}
