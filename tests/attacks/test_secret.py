"""Identifiers an outsider could use are keyed by the installation's secret; an installation
written before the secret existed (tests/fixtures/state/armed-main-9ea1127) upgrades without
sending anything again, and its people's replies still find their threads."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

from attackkit import CHAMPION, MENTOR, MENTOR2, MENTEE, ROSTER, T0, tables
from programme import Programme, sent_keys
from rmdaemon import compose

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "state" / "armed-main-9ea1127"
WRITTEN = datetime(2027, 1, 10, 9, 0, tzinfo=timezone.utc)  # the fixture's latest run
P03 = "P03,Chloe Martin,chloe.martin@example.com,Henry Lloyd,henry.lloyd@example.com,Use Slack well\n"


def upgraded(root: Path) -> Programme:
    """The installation of the fixture, with today's code and config."""
    prog = Programme.create(root, roster=ROSTER, cadence='"weekly"', champion=f'"{CHAMPION}"')
    shutil.copytree(FIXTURE, root / "var", ignore=shutil.ignore_patterns("README.md"))
    return prog


def booked(root: Path) -> Programme:
    prog = Programme.create(root, roster=ROSTER + P03, cadence='"weekly"', champion=f'"{CHAMPION}"')
    assert prog.run(T0) == 0
    for kickoff in prog.outbox("kickoff"):
        prog.reply(kickoff, "YES", T0)
    assert prog.run(T0 + timedelta(hours=1)) == 0
    return prog


def subject_token(msg) -> str:
    return str(msg["Subject"]).rsplit("[", 1)[1].rstrip("]")


def series(prog: Programme) -> dict[str, dict]:
    return {p["pair_id"]: p["series"] for p in tables(prog)["pairs"] if p.get("series")}


def test_an_upgrade_sends_nothing_again_and_old_tokens_still_route_replies(tmp_path):
    prog = upgraded(tmp_path)
    before, uids = {p.name for p in prog.outbox_files()}, {k: s["uid"] for k, s in series(prog).items()}
    assert prog.run(WRITTEN) == 0
    assert {p.name for p in prog.outbox_files()} == before  # no invitation, kickoff, agenda or nudge again
    secret = prog.state.parent / "secret.key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert {k: s["uid"] for k, s in series(prog).items()} == uids
    assert all("token_key" not in s for s in series(prog).values())

    agenda = prog.outbox("agenda.", to=MENTOR)[-1]
    prog.reply(agenda, "Attended: yes\nTopics: reels\nRating: 4", WRITTEN + timedelta(days=1, hours=3))
    assert prog.run(WRITTEN + timedelta(days=1, hours=4)) == 0
    (log,) = tables(prog)["logs"]
    assert (log["pair_id"], log["token"]) == ("P01", subject_token(agenda))

    # Later agendas of the old series carry tokens of the old kind: each thread stays one.
    later = WRITTEN + timedelta(days=1, hours=4)
    while len(prog.outbox("agenda.", to=MENTEE)) < 2:
        later += timedelta(hours=12)
        assert prog.run(later) == 0
    for msg in [*prog.outbox("agenda.", to=MENTEE), *prog.outbox("agenda.", to=MENTOR2)]:
        row = next(r for r in tables(prog)["sessions"] if r["token"] == subject_token(msg))
        assert row["token"] == compose.session_token({"uid": uids[row["pair_id"]]}, datetime.fromisoformat(row["planned"]))
    assert len(sent_keys(prog)) == len(set(sent_keys(prog)))

    # A pair added after the upgrade gets keyed identifiers.
    prog.roster.write_text(prog.roster.read_text() + P03)
    assert prog.run(later) == 0
    kickoff = prog.outbox("kickoff", to="chloe.martin@example.com")[-1]
    assert subject_token(kickoff) != compose.kickoff_token(None, "P03")
    keys = {p["pair_id"]: p.get("token_key") for p in tables(prog)["pairs"]}
    assert keys["P01"] is None and keys["P02"] is None and keys["P03"]  # old pairs' nudges keep their kickoff thread


def test_two_installations_give_the_same_pair_different_uids_tokens_and_message_ids(tmp_path):
    one, two = booked(tmp_path / "one"), booked(tmp_path / "two")
    for pair_id in ("P01", "P03"):
        a, b = series(one)[pair_id], series(two)[pair_id]
        assert a["uid"] != b["uid"] and a["token_key"] != b["token_key"]
        assert a["uid"] != f"rm-{compose.digest(pair_id, 0, length=12)}-0@example.com"  # not the old, public hash
    mine, theirs = (p.outbox("kickoff", to=MENTEE)[-1] for p in (one, two))
    assert subject_token(mine) != subject_token(theirs)
    assert subject_token(mine) != compose.kickoff_token(None, "P01")
    assert mine["Message-ID"].replace(subject_token(mine), "") != theirs["Message-ID"].replace(subject_token(theirs), "")
    # Not what anyone can compute from the message's key (pair, person: public values) alone.
    assert mine["Message-ID"] != compose.message_id("kickoff", mine["X-RM-Key"].strip(), "example.com", subject_token(mine))
    invitation = one.outbox("itip", to=MENTOR)[-1]
    assert invitation["Message-ID"] != compose.message_id("itip", invitation["X-RM-Key"].strip(), "example.com")


def test_a_missing_open_foreign_or_broken_secret_stops_the_run_with_the_fix(tmp_path, capsys):
    prog = Programme.create(tmp_path / "p", roster=ROSTER)
    secret = prog.state.parent / "secret.key"
    assert prog.run(T0, "--dry-run") == 0 and not secret.exists()  # a dry run changes nothing, makes no key
    assert prog.run(T0) == 0
    good = secret.read_bytes()
    cases = [(lambda: os.chmod(secret, 0o644), "chmod 600"),
             (lambda: secret.write_bytes(b"ab" * 32 + b"\n"), "not the secret the state"),
             (lambda: secret.write_bytes(b"hello"), "not an rmdaemon secret"),
             (secret.unlink, "the installation secret is missing")]
    for spoil, fix in cases:
        spoil()
        capsys.readouterr()
        assert prog.run(T0 + timedelta(hours=1)) == 2
        err = capsys.readouterr().err
        assert fix in err and "Traceback" not in err and good.decode().strip() not in err
        assert prog.cli("check") == 2 and fix in capsys.readouterr().out  # check says it before a run does
        secret.write_bytes(good)
        os.chmod(secret, 0o600)
    assert prog.cli("check") == 0
    assert f"installation secret: {secret} (keep it with the state in every backup" in capsys.readouterr().out
    assert prog.run(T0 + timedelta(hours=1)) == 0
