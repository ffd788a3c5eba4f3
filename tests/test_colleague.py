"""What people read, as a thoughtful colleague would write it: greeted by the name they go by,
their own time first, their own starter, both people's next steps, and a cancellation that says
why and whom to ask. Driven through the real CLI on the local backend."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from programme import Programme, status
from rmdaemon.names import address_name

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
HEADER = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,mentor_timezone,mentee_timezone,"
          "mentor_preferred_name,mentee_preferred_name,mentor_language,mentee_language,track,mentor_working_hours\n")
ROSTER = HEADER + ("P01,Meera Iyer,meera@example.com,Jonathan Blake,jon@example.com,Learn TikTok,"
                   "Asia/Kolkata,America/New_York,,Jon,,,general,12:00-21:00\n")


@pytest.mark.parametrize(("name", "preferred", "language", "greeted"), [
    ("Meera Iyer", "", "en", "Meera"),
    ("Jonathan Blake", "Jon", "en", "Jon"),
    ("Dr. Hans Becker", "", "de", "Hans"),
    ("Becker, Hans", "", "de", "Hans"),
    ("山田 太郎", "", "ja", "山田"),  # Japanese mail adds さん: "山田さん"
    ("山田太郎", "", "en", "山田太郎"),  # one word, Han script: the full name, never a cut one
    ("Taro Yamada", "", "ja", "Yamada"),
    ("王 小明", "", "zh", "王 小明"),
    ("Nagy Péter", "", "hu", "Péter"),
    ("Nguyễn Văn An", "", "vi", "An"),
    ("Ana Souza", "", "pt-BR", "Ana"),
])
def test_people_are_greeted_by_the_name_a_colleague_would_use(name, preferred, language, greeted):
    assert address_name(name, preferred, language) == greeted


def _text(msg) -> str:
    return msg.get_body(("plain",)).get_content().replace("\r\n", "\n")


@pytest.fixture
def prog(tmp_path) -> Programme:
    prog = Programme.create(tmp_path, roster=ROSTER)
    prog.run(T0)
    for kickoff in prog.outbox("kickoff"):
        prog.reply(kickoff, "YES", T0)
    prog.run(T0 + timedelta(hours=1))
    return prog


def test_each_person_is_greeted_by_name_and_reads_their_own_time_first(prog):
    (to_meera,) = prog.outbox("itip", to="meera@")
    (to_jon,) = prog.outbox("itip", to="jon@")
    meera, jon = _text(to_meera), _text(to_jon)
    assert meera.startswith("Hello Meera,") and jon.startswith("Hello Jon,")
    assert "Meera Iyer," not in meera
    # each reads their own zone first and the other's in brackets
    assert "IST (" in meera and "for Jon)" in meera
    assert "EST (" in jon and "for Meera)" in jon


def test_the_agenda_gives_each_role_its_own_starter_and_both_peoples_next_steps(prog, capsys):
    start = datetime.fromisoformat(status(prog, T0 + timedelta(hours=1), capsys)["P01"]["next_session"])
    prog.run(start - timedelta(hours=23))
    (to_meera,), (to_jon,) = prog.outbox("agenda.", to="meera@"), prog.outbox("agenda.", to="jon@")
    assert "Conversation starter: Tell Jon about" in _text(to_meera)
    assert "Conversation starter: Ask Meera which part" in _text(to_jon)
    assert "Rating: 1-5 (how useful was this session for you?)" in _text(to_jon)
    prog.reply(to_meera, "Attended: yes\nNext steps: send Jon three creators to follow", start + timedelta(hours=1))
    prog.reply(to_jon, "Attended: yes\nNext steps: post one video", start + timedelta(hours=2))
    prog.run(start + timedelta(hours=3))
    following = datetime.fromisoformat(status(prog, start + timedelta(hours=3), capsys)["P01"]["next_session"])
    prog.run(following - timedelta(hours=23))
    newest = max(prog.outbox("agenda.", to="jon@"), key=lambda m: m["Date"].datetime)
    text = _text(newest)
    assert text.index("  You:\n    - post one video") < text.index("  Meera:\n    - send Jon three creators to follow")


def test_a_cancellation_says_why_and_whom_to_ask(prog, capsys):
    start = datetime.fromisoformat(status(prog, T0 + timedelta(hours=1), capsys)["P01"]["next_session"])
    prog.run(start - timedelta(hours=23))
    (agenda,) = prog.outbox("agenda.", to="jon@")
    prog.reply(agenda, "PAUSE", start - timedelta(hours=22))
    prog.run(start - timedelta(hours=21))
    cancels = [m for m in prog.outbox("itip", to="jon@") if m["Subject"].startswith("Cancelled")]
    assert len(cancels) == 1
    text = _text(cancels[0])
    assert "because one of you replied PAUSE" in text and "RESUME" in text
    assert "Write to Hans Becker (champion@example.com)" in text
