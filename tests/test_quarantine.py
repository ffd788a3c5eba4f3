"""``rmdaemon quarantine``: the admin finds the mail the inbox set aside, reads it, and releases
it (handled as the pair member's, through the inbox's own Router) or deletes its bytes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from programme import Programme
from rmdaemon.store import Store

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
ROSTER = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal\n"
          "P1,Alex Young,alex@example.com,Sam Senior,sam@example.com,Learn TikTok\n")


@pytest.fixture
def held(tmp_path) -> tuple[Programme, datetime]:
    """A pair whose first session was held; the mentor logs it from his own phone's address."""
    prog = Programme.create(tmp_path, roster=ROSTER, cadence='"weekly"')
    prog.run(T0)
    for kickoff in prog.outbox("kickoff"):
        prog.reply(kickoff, "YES", T0)
    hours = 1
    while not prog.outbox("agenda.", to="alex@"):
        hours += 6
        prog.run(T0 + timedelta(hours=hours))
    after = T0 + timedelta(hours=hours + 24 * 2)
    agenda = prog.outbox("agenda.", to="alex@")[0]
    prog.reply(agenda, "Attended: yes\nLearned: how reels work\nRating: 5", after, sender="Alex Young <alex.y@mobile.example>")
    prog.run(after)
    return prog, after


def inbox_row(prog: Programme) -> dict:
    with Store.open(prog.state, writer=False) as store:
        return store.table("inbox").all()[-1]


def listed_id(prog: Programme, capsys) -> str:
    capsys.readouterr()
    assert prog.cli("quarantine", "list") == 0
    out = capsys.readouterr().out
    return re.match(r"([0-9a-f]{8})  ", out)[1]


def test_list_and_show_what_was_set_aside_and_why(held, capsys):
    prog, _ = held
    assert inbox_row(prog)["outcome"] == "quarantine"
    assert prog.cli("quarantine", "list") == 0
    out = capsys.readouterr().out
    assert "P1  Alex Young <alex.y@mobile.example>" in out and "is not part of pair P1" in out and "[kept]" in out
    ident = re.match(r"([0-9a-f]{8})  ", out)[1]
    assert prog.cli("quarantine", "show", ident[:5]) == 0
    shown = capsys.readouterr().out
    assert "reason: sender alex.y@mobile.example is not part of pair P1" in shown and "Learned: how reels work" in shown


def test_release_logs_the_session_as_the_member_and_records_who_released_it(held, capsys):
    prog, _ = held
    ident = listed_id(prog, capsys)
    assert prog.cli("quarantine", "release", ident) == 0
    out = capsys.readouterr().out
    assert f"released {ident} as from Alex Young <alex@example.com> of P1: log (session 1 logged by alex@example.com)" in out
    with Store.open(prog.state, writer=False) as store:
        (log,) = store.table("logs").all()
        rows = store.table("inbox").all()
    assert log["from"] == "alex@example.com" and log["fields"]["rating"] == 5
    row = rows[-1]
    assert row["outcome"] == "log" and row["released_by"] and row["released_at"] and row["quarantine"] is None
    assert "not part of pair" in row["quarantined_for"]
    assert not list((prog.root / "var" / "quarantine").iterdir())  # handled: its bytes are no longer set aside
    prog.cli("quarantine", "list")
    assert "not part of pair P1 [released by" in capsys.readouterr().out  # why it was set aside, and what became of it
    assert prog.cli("quarantine", "release", ident) == 2  # never twice
    assert "was already released by" in capsys.readouterr().err
    assert len(rows) == len({r["message_key"] for r in rows})  # one row per message, still


def test_release_of_a_message_naming_no_pair_needs_the_pair_and_a_member(held, capsys):
    prog, after = held
    kickoff = prog.outbox("kickoff", to="sam@")[0]
    prog.drop(f"From: Someone <who@else.example>\nTo: {kickoff['From']}\nSubject: hi\nMessage-ID: <x1@else>\n\nhello\n".encode(), "x1.eml")
    prog.run(after + timedelta(hours=1))
    capsys.readouterr()
    prog.cli("quarantine", "list")
    ident = re.findall(r"^([0-9a-f]{8})  .*  -  Someone", capsys.readouterr().out, re.M)[0]
    assert prog.cli("quarantine", "release", ident) == 2
    assert "give the pair it belongs to with --pair P" in capsys.readouterr().err
    assert prog.cli("quarantine", "release", ident, "--pair", "P1") == 2
    assert "shows neither Alex Young <alex@example.com> nor Sam Senior <sam@example.com>" in capsys.readouterr().err
    assert inbox_row(prog)["outcome"] == "quarantine"


def test_delete_removes_the_bytes_and_the_row_says_so(held, capsys):
    prog, _ = held
    ident = listed_id(prog, capsys)
    assert prog.cli("quarantine", "delete", ident) == 0
    assert f"deleted {ident}" in capsys.readouterr().out
    assert not list((prog.root / "var" / "quarantine").iterdir())
    row = inbox_row(prog)
    assert row["outcome"] == "quarantine" and row["quarantine"] is None and row["deleted_by"] and row["deleted_at"]
    prog.cli("quarantine", "list")
    assert "[deleted by" in capsys.readouterr().out
    assert prog.cli("quarantine", "show", ident) == 0
    assert "no longer kept" in capsys.readouterr().out
    assert prog.cli("quarantine", "release", ident) == 2
    assert "no longer kept" in capsys.readouterr().err


def test_unknown_id_and_a_running_daemon_are_user_errors(held, capsys):
    prog, _ = held
    ident = listed_id(prog, capsys)
    assert prog.cli("quarantine", "show", "ffffffff") == 2
    assert "no quarantined message has the ID 'ffffffff'" in capsys.readouterr().err
    with Store.open(prog.state):  # the daemon holds the writer lock
        assert prog.cli("quarantine", "delete", ident) == 2
    assert "another rmdaemon" in capsys.readouterr().err
    assert inbox_row(prog)["quarantine"]  # nothing changed


def test_no_quarantine_says_so(tmp_path, capsys):
    prog = Programme.create(tmp_path, roster=ROSTER)
    prog.run(T0)
    capsys.readouterr()
    assert prog.cli("quarantine", "list") == 0
    assert capsys.readouterr().out == "no quarantined messages\n"


def test_the_champions_digest_says_how_to_look_at_quarantined_mail(held):
    prog, after = held
    assert not prog.outbox("digest")  # none before a session took place (a digest without quarantine: tests/test_gaps.py)
    prog.run(after + timedelta(days=7))
    (digest,) = prog.outbox("digest", to="champion@example.com")
    assert "rmdaemon quarantine list" in digest.get_body(("plain",)).get_content()
    assert "rmdaemon quarantine list" in digest.get_body(("html",)).get_content()
