"""Pieces of the engagement layer on their own: answers, champion commands, HELP, retention, purge."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from programme import Programme, booked_programme, inbox_rows
from rmdaemon.compose import load_templates
from rmdaemon.phrases import english
from rmdaemon.programme.champion import apply_commands
from rmdaemon.records import PairRecord
from rmdaemon.programme.answers import parse_answers
from rmdaemon.store import Store

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
ROSTER = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal\n"
          "P1,Alex Young,alex@example.com,Sam Senior,sam@example.com,Learn TikTok\n")


def test_survey_answers_from_numbered_lines():
    questions = load_templates().survey("end", "mentee")
    body = "1. 4\n2) 5/5 definitely\n3: how to use threads\n4 - shared docs\n5. 9\nsome other line"
    assert parse_answers(body, questions) == {"confidence": 4, "value": 5, "learned": "how to use threads",
                                              "adopted": "shared docs"}  # 5. 9 is off the scale: dropped


def test_champion_commands_pause_and_report_unknown_pairs():
    state = {"P1": PairRecord("P1", "active"), "P2": PairRecord("P2", "paused")}
    out = apply_commands("pause p1\nNUDGE P2\nASK-MENTOR P9\nthanks!", state, "m1", "champion@example.com")
    assert out.docs["P1"].state == "paused"
    assert [r["kind"] for r in out.requests] == ["nudge", "confirm"]
    assert english(out.lines[2]) == "ASK-MENTOR P9: no such pair has started; nothing done"


@pytest.fixture
def booked(tmp_path) -> Programme:
    return booked_programme(tmp_path, ROSTER, T0, cadence='"weekly"')


def test_help_alone_asks_for_a_private_checkin_and_logs_nothing(booked):
    kickoff = booked.outbox("kickoff", to="alex@")[0]
    booked.reply(kickoff, "HELP", T0 + timedelta(hours=2))
    booked.run(T0 + timedelta(hours=3))
    assert len(booked.outbox("checkin", to="alex@")) == 1 and not booked.outbox("checkin", to="sam@")
    with Store.open(booked.state, writer=False) as store:
        assert store.table("logs").all() == []


def test_commands_from_someone_else_are_quarantined_not_obeyed(booked):
    alert_like = booked.outbox("kickoff", to="sam@")[0]
    booked.reply(alert_like, "PAUSE P1", T0 + timedelta(hours=2), sender="intruder@example.com")
    booked.run(T0 + timedelta(hours=3))
    with Store.open(booked.state, writer=False) as store:
        assert store.table("pairs").all()[0]["state"] == "active"
        assert not store.table("commands").all()
    row = inbox_rows(booked)[-1]
    assert (row["outcome"], row["reason"]) == ("quarantine", "sender intruder@example.com is not part of pair P1")


def test_retention_deletes_words_keeps_numbers(booked):
    first = None
    for hours in range(2, 24 * 9, 6):
        booked.run(T0 + timedelta(hours=hours))
        agendas = booked.outbox("agenda.", to="alex@")
        if agendas and first is None:
            first = agendas[0]
            booked.reply(first, "Attended: yes\nLearned: a private thing\nRating: 5", T0 + timedelta(hours=hours))
    assert first is not None
    booked.roster.write_text(ROSTER.replace("Learn TikTok", "Learn TikTok,ended").replace("goal\n", "goal,status\n"))
    ended = T0 + timedelta(days=10)
    booked.run(ended)
    booked.run(ended + timedelta(days=364))
    with Store.open(booked.state, writer=False) as store:
        assert store.table("logs").all()[0]["body"]
    booked.run(ended + timedelta(days=366))
    with Store.open(booked.state, writer=False) as store:
        log = store.table("logs").all()[0]
    assert log["body"] == "" and "private" not in str(log) and log["fields"]["rating"] == 5


def test_purge_refuses_a_live_series_then_removes_everything(booked, capsys):
    assert booked.cli("purge", "--pair", "P1") == 2
    assert "still has a booked series" in capsys.readouterr().err
    booked.roster.write_text(ROSTER.replace("goal\n", "goal,status\n").replace("Learn TikTok", "Learn TikTok,ended"))
    booked.run(T0 + timedelta(hours=5))
    assert booked.cli("purge", "--pair", "P1") == 0
    assert "purged pair P1" in capsys.readouterr().out
    with Store.open(booked.state, writer=False) as store:
        assert not [d for d in store.table("pairs").all() if d["pair_id"] == "P1"]
