"""The state file's records: a file written by an earlier rmdaemon still loads, runs and keeps
every key it had, so an upgrade never needs a migration for this schema version."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from rmdaemon.programme.consistency import check_file
from tests.programme import Programme, sent_keys, status

# Written by `make demo` on main at da9a9eb (two simulated weeks, 2027-01-04 .. 2027-01-18).
FIXTURE = Path(__file__).parent / "fixtures" / "state" / "demo-main-da9a9eb.json"
LATER = datetime(2027, 1, 25, 9, 0, tzinfo=timezone.utc)


def _tables(path: Path) -> dict[str, dict[str, dict]]:
    return json.loads(path.read_text())


def test_a_state_file_written_by_main_runs_a_tick_and_keeps_its_keys(tmp_path: Path, capsys) -> None:
    prog = Programme.create(tmp_path)
    prog.state.parent.mkdir(parents=True)
    shutil.copyfile(FIXTURE, prog.state)
    before = _tables(FIXTURE)

    shown = status(prog, datetime(2027, 1, 18, 10, 0, tzinfo=timezone.utc), capsys)
    assert {row["pair_id"]: row["sessions_held"] for row in shown.values()}["P03"] == 1

    assert prog.run(LATER, "--once") == 0
    after = _tables(prog.state)
    assert check_file(prog.state) == []
    for table, docs in before.items():  # every key of every stored row is still there
        for doc_id, doc in docs.items():
            assert set(doc) <= set(after[table][doc_id]), (table, doc_id)
    already = {d["key"] for d in before["outbox"].values() if d["status"] == "sent"}
    new = sent_keys(prog)
    assert new and not already & set(new)  # the week's mail goes out; nothing sent before goes again


def test_records_read_and_written_unchanged_are_the_same_json() -> None:
    import orjson

    from rmdaemon.records import INBOX, LOGS, OUTBOX, PAIRS, InboxRow, Log, OutboxEntry, PairRecord

    tables = _tables(FIXTURE)
    for table, record in ((PAIRS, PairRecord), (LOGS, Log), (OUTBOX, OutboxEntry), (INBOX, InboxRow)):
        assert tables[table], table
        for doc in tables[table].values():
            assert orjson.dumps(record.from_doc(doc).to_doc()) == orjson.dumps(doc), (table, doc)


def test_a_key_this_version_does_not_know_survives_a_change() -> None:
    from rmdaemon.records import ENDED, PairRecord

    doc = dict(next(iter(_tables(FIXTURE)["pairs"].values())), mood="from a newer rmdaemon")
    pair = PairRecord.from_doc(doc)
    pair.state = ENDED
    assert pair.to_doc() == dict(doc, state="ended")
