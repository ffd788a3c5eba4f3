"""``rmdaemon backup --out FILE``: an archive to restore from, taken while the daemon writes."""

from __future__ import annotations

import stat
import tarfile
import threading
from datetime import datetime, timedelta, timezone

import orjson

from programme import Programme
from rmdaemon.store import Store

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)


def members(archive) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_backup_holds_the_state_the_quarantine_and_the_secret_and_is_private(tmp_path, capsys):
    prog = Programme.create(tmp_path / "p")
    prog.run(T0)
    prog.drop(b"From: who@else.example\nMessage-ID: <x@else>\nSubject: hi\n\nhello\n", "x.eml")
    prog.run(T0 + timedelta(hours=1))
    out = tmp_path / "backup.tar.gz"
    capsys.readouterr()
    with Store.open(prog.state):  # the daemon holds the writer lock: a backup needs none
        assert prog.cli("backup", "--out", str(out)) == 0
    assert f"wrote {out}: state.json, 1 quarantined messages, secret.key" in capsys.readouterr().out
    with tarfile.open(out) as tar:
        assert stat.S_IMODE(tar.getmember("quarantine").mode) == 0o700
    files = members(out)
    assert files["state.json"] == prog.state.read_bytes()
    assert [n for n in files if n.startswith("quarantine/")] == [f"quarantine/{p.name}" for p in (prog.root / "var" / "quarantine").iterdir()]
    assert files["secret.key"] == (prog.state.parent / "secret.key").read_bytes()  # the daemon made it, 0600
    assert stat.S_IMODE((prog.state.parent / "secret.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_restored_backup_runs(tmp_path, capsys):
    prog = Programme.create(tmp_path / "p")
    prog.run(T0)
    sent = len(prog.outbox_files())
    out = tmp_path / "b.tgz"
    assert prog.cli("backup", "--out", str(out)) == 0
    prog.state.unlink()
    (prog.state.parent / "secret.key").unlink()  # a new machine: the state refuses to run without its secret
    with tarfile.open(out) as tar:
        tar.extractall(prog.state.parent, filter="data")
    capsys.readouterr()
    assert prog.cli("status", "--now", T0.isoformat()) == 0 and "awaiting consent" in capsys.readouterr().out
    assert prog.run(T0 + timedelta(hours=1)) == 0
    assert len(prog.outbox_files()) == sent  # the restored state knows what went out: nothing twice


def test_a_backup_taken_while_the_state_is_replaced_is_always_a_whole_state(tmp_path):
    prog = Programme.create(tmp_path / "p")
    prog.run(T0)
    stop = threading.Event()

    def write() -> None:
        with Store.open(prog.state) as store:
            n = 0
            while not stop.is_set():
                n += 1
                store.table("churn").insert({"n": n, "pad": "x" * 5000})

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for i in range(30):
            assert prog.cli("backup", "--out", str(tmp_path / f"b{i}.tgz")) == 0
            state = orjson.loads(members(tmp_path / f"b{i}.tgz")["state.json"])
            assert state["_meta"]["1"]["schema"] and "pairs" in state
    finally:
        stop.set()
        writer.join()


def test_no_state_yet_and_an_unwritable_target_are_user_errors(tmp_path, capsys):
    prog = Programme.create(tmp_path / "p")
    assert prog.cli("backup", "--out", str(tmp_path / "b.tgz")) == 2
    assert "no state file yet" in capsys.readouterr().err
    prog.run(T0)
    assert prog.cli("backup", "--out", str(tmp_path / "missing" / "b.tgz")) == 2
    assert "cannot write the backup" in capsys.readouterr().err
