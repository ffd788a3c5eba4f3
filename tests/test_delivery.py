"""Send exactly once, through ``deliver``: the outbox row is on disk before anything leaves, a key
already sent (or refused for good) never goes again, a temporary failure keeps its key pending for
the next tick, a permanent refusal shows against its pair and is never retried.

Real parts: the state file, the local Maildir backend, and the smtp backend against a real SMTP
server that refuses one recipient. Each test reads what a person or the admin would see: the
files in the outbox, the rows ``status`` reads, the problems shown against a pair.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from contract import ALEX, SAM, outgoing
from programme import Programme
from rmdaemon import compose, roster
from rmdaemon.backends.base import Backend
from rmdaemon.backends.local import LocalBackend, file_name
from rmdaemon.config import load_settings
from rmdaemon.model import JobResult, Outgoing, Person
from rmdaemon.programme.context import Context
from rmdaemon.programme.delivery import deliver, final_keys, pending_keys
from rmdaemon.records import OUTBOX, PAIRS, outbox_keys
from rmdaemon.store import Store
from tests.servers.fixtures import (MailWorld, dovecot, mail_certs, mail_world,  # noqa: F401
                                    mailbox, smtp_server)

NOW = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
SECRET = bytes(32)  # a fixed installation secret: these tests are about delivery, not identifiers


def context(prog: Programme, store: Store, backend: Backend, now: datetime = NOW) -> Context:
    settings = load_settings(prog.config)
    return Context(store=store, backend=backend, settings=settings,
                   pairs=roster.load_roster(settings.roster_path, settings.program),
                   templates=compose.load_templates(settings.templates_dir), now=now, secret=SECRET)


def local(root: Path) -> LocalBackend:
    return LocalBackend(root / "outbox", root / "inbox", lambda: NOW)


def mail(key: str, to: Person = ALEX, pair_id: str = "P01") -> Outgoing:
    plain = outgoing(key, to)
    return Outgoing(key=plain.key, to=plain.to, raw=plain.raw, kind="agenda", pair_id=pair_id)


def rows(store: Store) -> dict[str, dict]:
    return {doc["key"]: doc for doc in store.rows(OUTBOX).values()}


def outbox_keys_on_disk(root: Path) -> list[str]:
    files = sorted((root / "outbox" / "new").iterdir()) + sorted((root / "outbox" / "cur").iterdir())
    return sorted(message_from_bytes(f.read_bytes(), policy=policy.default)["X-RM-Key"] for f in files)


def test_each_key_goes_out_once_and_its_row_says_sent_with_when(tmp_path: Path):
    prog = Programme.create(tmp_path)
    with Store.open(tmp_path / "state.json") as store:
        ctx, result = context(prog, store, local(tmp_path)), JobResult("agendas")
        assert deliver(ctx, [mail("a:1"), mail("a:2", pair_id="P02")], result) == {"a:1", "a:2"}
        assert result.counts == {"agenda sent": 2}
        later = context(prog, store, local(tmp_path), NOW + timedelta(hours=1))
        assert deliver(later, [mail("a:1"), mail("a:3")], JobResult("agendas")) == {"a:3"}  # a:1 is done
        found = rows(store)
    assert outbox_keys_on_disk(tmp_path) == ["a:1", "a:2", "a:3"]
    assert {k: (r["status"], r["sent_at"]) for k, r in found.items()} == {
        "a:1": ("sent", NOW.isoformat()), "a:2": ("sent", NOW.isoformat()),
        "a:3": ("sent", (NOW + timedelta(hours=1)).isoformat())}
    assert (found["a:2"]["kind"], found["a:2"]["pair_id"], found["a:2"]["to"]) == ("agenda", "P02", ["alex@example.com"])


def test_the_pending_row_and_the_jobs_own_change_are_on_disk_before_the_message_leaves(tmp_path: Path):
    """What ``send`` finds in the state file (another reader, as a crash would leave it) is the
    pending row and the job's own record, written together."""
    prog = Programme.create(tmp_path)
    seen: list[tuple[dict, list]] = []

    class Watching(LocalBackend):
        def send(self, message: Outgoing) -> None:
            with Store.open(tmp_path / "state.json", writer=False) as reader:
                seen.append((dict(rows(reader)[message.key]), [d["pair_id"] for d in reader.rows(PAIRS).values()]))
            super().send(message)

    with Store.open(tmp_path / "state.json") as store:
        ctx = context(prog, store, Watching(tmp_path / "outbox", tmp_path / "inbox", lambda: NOW))
        deliver(ctx, [mail("k:1")], JobResult("consent"),
                record=lambda: store.table(PAIRS).insert({"pair_id": "P01", "state": "awaiting"}))
    assert [(row["status"], row["at"], pairs) for row, pairs in seen] == [("pending", NOW.isoformat(), ["P01"])]


def test_with_nothing_to_send_the_jobs_own_change_is_still_recorded(tmp_path: Path):
    prog = Programme.create(tmp_path)
    with Store.open(tmp_path / "state.json") as store:
        ctx = context(prog, store, local(tmp_path))
        deliver(ctx, [mail("k:1")], JobResult("consent"))
        sent = deliver(ctx, [mail("k:1")], JobResult("consent"),
                       record=lambda: store.table(PAIRS).insert({"pair_id": "P09", "state": "active"}))
        assert sent == set()
    with Store.open(tmp_path / "state.json", writer=False) as reader:
        assert [d["pair_id"] for d in reader.rows(PAIRS).values()] == ["P09"]


def test_after_a_crash_between_sending_and_recording_the_rerun_sends_nothing_twice(tmp_path: Path):
    """The message left and was read (moved to ``cur/``), but the row still says pending: the
    job offers it again, the backend skips it, and the row ends ``sent``."""
    prog = Programme.create(tmp_path)
    first = local(tmp_path)
    first.send(mail("k:1"))
    (tmp_path / "outbox" / "new").rename(tmp_path / "moved")
    (tmp_path / "outbox" / "new").mkdir()
    for f in (tmp_path / "moved").iterdir():
        f.rename(tmp_path / "outbox" / "cur" / f"{f.name}:2,S")
    with Store.open(tmp_path / "state.json") as store:
        store.table(OUTBOX).insert({"key": "k:1", "status": "pending", "kind": "agenda", "pair_id": "P01"})
        ctx = context(prog, store, local(tmp_path))
        assert pending_keys(ctx) == {"k:1"} and final_keys(ctx) == set()
        assert deliver(ctx, [mail("k:1")], JobResult("agendas")) == {"k:1"}
        assert pending_keys(ctx) == set() and final_keys(ctx) == {"k:1"}
    assert outbox_keys_on_disk(tmp_path) == ["k:1"]


def test_a_temporary_failure_keeps_the_key_pending_and_the_next_tick_sends_it(tmp_path: Path, caplog):
    prog = Programme.create(tmp_path)
    blocked = tmp_path / "outbox" / "tmp" / file_name("k:1")
    blocked.mkdir(parents=True)  # a folder where the message's file must go: the write fails
    with Store.open(tmp_path / "state.json") as store:
        ctx, result = context(prog, store, local(tmp_path)), JobResult("agendas")
        assert deliver(ctx, [mail("k:1")], result) == set()
        assert result.counts == {"send errors": 1}
        assert result.lines[0].startswith("P01: agenda not sent: cannot write to outbox")
        assert caplog.messages == [f"pair P01: agenda to alex@example.com not sent: {result.lines[0].partition('not sent: ')[2]}"]
        assert pending_keys(ctx) == {"k:1"} and rows(store)["k:1"].get("sent_at") is None
        assert len(store.rows(PAIRS)) == 0  # nothing shown against the pair: it is not the roster's fault
        blocked.rmdir()
        assert deliver(ctx, [mail("k:1")], JobResult("agendas")) == {"k:1"}
        assert rows(store)["k:1"]["status"] == "sent"


def test_an_outbox_that_cannot_be_read_is_a_temporary_failure_not_a_crash(tmp_path: Path):
    prog = Programme.create(tmp_path)
    (tmp_path / "outbox").mkdir()
    (tmp_path / "outbox" / "new").write_text("a file where the Maildir needs a folder")
    with Store.open(tmp_path / "state.json") as store:
        ctx, result = context(prog, store, local(tmp_path)), JobResult("agendas")
        assert deliver(ctx, [mail("k:1")], result) == set()
        assert result.lines == [f"P01: agenda not sent: cannot read outbox {tmp_path / 'outbox'}: File exists; "
                                "kept: tried again next tick"]
        assert pending_keys(ctx) == {"k:1"}


def test_a_permanent_refusal_shows_against_its_pair_and_is_never_retried(tmp_path: Path, mail_world: MailWorld):
    prog = Programme.create(tmp_path)
    mail_world.smtp.handler.refuse["sam@example.com"] = "550 5.1.1 <sam@example.com>: User unknown"
    with Store.open(tmp_path / "state.json") as store:
        store.table(PAIRS).insert_multiple([{"pair_id": "P01", "state": "active", "send_errors": ["an earlier one"]},
                                            {"pair_id": "P02", "state": "active"}])
        ctx, result = context(prog, store, mail_world.backend()), JobResult("agendas")
        messages = [mail("k:sam", to=SAM), mail("k:alex"), mail("k:nobody", to=SAM, pair_id=""),
                    mail("k:sam2", to=SAM, pair_id="P02")]
        assert deliver(ctx, messages, result) == {"k:alex"}
        assert result.counts == {"send errors": 3, "agenda sent": 1}
        assert all(line.endswith("; refused for good, not tried again") for line in result.lines) and not result.waiting
        found = rows(store)
        assert (found["k:sam"]["status"], found["k:alex"]["status"]) == ("failed", "sent")
        assert "550" in found["k:sam"]["error"] and found["k:sam"].get("sent_at") is None
        errors = {d["pair_id"]: d.get("send_errors") for d in store.rows(PAIRS).values()}
        assert errors == {"P01": ["agenda to sam@example.com refused: " + found["k:sam"]["error"], "an earlier one"],
                          "P02": ["agenda to sam@example.com refused: " + found["k:sam2"]["error"]]}
        assert final_keys(ctx) == {"k:sam", "k:alex", "k:nobody", "k:sam2"} and pending_keys(ctx) == set()
        del mail_world.smtp.handler.refuse["sam@example.com"]  # fixed at the server, not in the roster
        assert deliver(ctx, messages, JobResult("agendas")) == set()
    assert [m.rcpt_tos for m in mail_world.smtp.messages] == [("alex@example.com",)]


def test_outbox_keys_without_a_status_are_every_key(tmp_path: Path):
    with Store.open(tmp_path / "state.json") as store:
        store.table(OUTBOX).insert_multiple([{"key": "a", "status": "sent"}, {"key": "b", "status": "pending"},
                                             {"key": "c", "status": "failed"}])
        assert outbox_keys(store) == {"a", "b", "c"}
        assert outbox_keys(store, *("sent", "failed")) == {"a", "c"}


@pytest.mark.parametrize("where", ["new", "cur"])
def test_a_new_backend_process_refuses_a_key_already_in_the_outbox(tmp_path: Path, where: str):
    local(tmp_path).send(mail("k:1"))
    if where == "cur":
        for f in (tmp_path / "outbox" / "new").iterdir():
            f.rename(tmp_path / "outbox" / "cur" / f"{f.name}:2,S")
    again = local(tmp_path)
    assert again.was_sent("k:1") and not again.was_sent("k:2")
    again.send(mail("k:1"))
    again.send(mail("k:2"))
    assert outbox_keys_on_disk(tmp_path) == ["k:1", "k:2"]
