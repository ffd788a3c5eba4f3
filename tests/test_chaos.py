"""The chaos harness in its short form (bench/chaos.py has the long one), and proof that its
checks and ``rmdaemon.programme.consistency`` really find what they look for."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from contract import annotate, publish
from rmdaemon.programme import consistency

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import chaos  # noqa: E402  (bench/ is not a package)
from chaos_world import LocalMail, People  # noqa: E402

SUMMARY = "duplicates=0 lost=0 corrupt=0"


def harness(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "bench" / "chaos.py"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def summary(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return out.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def exchange_run() -> Iterator[subprocess.Popen]:
    """The Exchange form starts first and runs beside the local one (each is mostly waiting on
    its daemon's start-up); its requests are checked against the EWS schemas when they are there."""
    from tests.servers.ews.fixtures import schema_or_none

    schema_or_none()  # strict mode: missing schemas fail here
    proc = harness("--backend", "exchange", "--kills", "4", "--pairs", "4", "--weeks", "2", "--step-hours", "48",
                   "--seed", "3")
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_twenty_kill_9s_of_a_ten_pair_programme_lose_and_repeat_nothing(exchange_run):
    line = summary(harness("--kills", "20", "--pairs", "10", "--weeks", "3", "--step-hours", "24", "--seed", "7"))
    kills = int(line.split()[0].split("=")[1])
    assert kills >= 15 and line.endswith(SUMMARY), line


def test_kills_and_exchange_faults_lose_and_repeat_nothing(exchange_run):
    line = summary(exchange_run)
    faults = int(line.split()[1].split("=")[1])
    assert faults > 0 and line.endswith(SUMMARY), line


# --------------------------------------------------------------------------------------------
# The checks can fail


def eml(key: str, to: str, body: str) -> bytes:
    return (f"From: mentoring@example.com\r\nTo: {to}\r\nSubject: agenda\r\nMessage-ID: <rm.agenda.{key}@example.com>\r\n"
            f"X-RM-Key: {key}\r\nContent-Type: text/plain\r\n\r\n{body}\r\n").encode()


def outbox_with(tmp_path: Path, *messages: bytes) -> LocalMail:
    folder = tmp_path / "var" / "outbox" / "new"
    folder.mkdir(parents=True)
    for n, raw in enumerate(messages):
        (folder / f"{n}.eml").write_bytes(raw)
    return LocalMail(tmp_path)


def test_mail_check_finds_a_key_sent_twice_and_the_same_words_under_two_keys(tmp_path):
    mail = outbox_with(tmp_path, eml("a:1", "x@example.com", "hello"), eml("a:1", "x@example.com", "hello"),
                       eml("b:1", "y@example.com", "same"), eml("b:2", "y@example.com", "same"),
                       eml("c:1", "y@example.com", "different"))
    tally = chaos.Tally()
    chaos.check_mail(mail, {"outbox": [{"key": "d:1", "status": "sent", "kind": "agenda"}]}, tally)
    assert sorted(tally.duplicates) == ["email key a:1 sent 2 times", "same content sent 2 times to x@example.com: 'agenda'",
                                        "same content sent 2 times to y@example.com: 'agenda'"]
    assert tally.lost == ["outbox row d:1 says sent, but no such email left"]


def test_inbox_check_finds_a_reply_never_recorded_and_one_acted_on_twice(tmp_path):
    mail = outbox_with(tmp_path)
    import random

    people = People(mail, random.Random(1), 1)
    people.dropped["<kept@client.example>"] += 1
    people.dropped["<lost@client.example>"] += 1
    tables = {"inbox": [{"message_key": "<kept@client.example>"}], "commands": [],
              "logs": [{"message_id": "kept@client.example"}, {"message_id": "kept@client.example"}],
              "surveys": [], "flags": []}
    tally = chaos.Tally()
    chaos.check_inbox(mail, people, tables, tally)
    assert tally.lost == ["inbox message <lost@client.example> has no inbox record"]
    assert tally.duplicates == ["logs: message kept@client.example acted on 2 times"]


NOW = datetime(2027, 2, 1, tzinfo=timezone.utc)
PAIR = {"pair_id": "P1", "state": "active", "consent": {"a@x": "yes"},
        "series": {"uid": "u1", "sequence": 2, "published": 2, "exdates": [], "cancel_occurrences": []}}


@pytest.mark.parametrize(("change", "found"), [
    ({"logs": [{"pair_id": "P9", "token": "T1"}]}, "logs: a row for pair 'P9', which is not in the pairs table"),
    ({"logs": [{"pair_id": "P1", "token": "T9"}]}, "names session 'T9', which does not exist"),
    ({"outbox": [{"key": "k", "status": "sent"}, {"key": "k", "status": "sent"}]}, "outbox: key 'k' appears more than once"),
    ({"pairs": [dict(PAIR, series=dict(PAIR["series"], published=3))]}, "published 3 is ahead of sequence 2"),
    ({"pairs": [PAIR, dict(PAIR, pair_id="P2")]}, "series uid u1 is used by more than one pair"),
    ({"pairs": [dict(PAIR, state="limbo")]}, "unknown state 'limbo'"),
    ({"inbox": [{"message_key": "m", "outcome": "lost"}]}, "unknown outcome 'lost'"),
])
def test_consistency_names_what_no_sequence_of_whole_batches_could_produce(change, found):
    tables = {"pairs": [PAIR], "sessions": [{"token": "T1", "pair_id": "P1", "kind": "session"}], **change}
    problems = consistency.problems(tables)
    assert any(found in p for p in problems), problems
    assert not consistency.problems({"pairs": [PAIR], "sessions": tables["sessions"]})


def test_settled_state_has_no_retried_mail_pending_and_every_series_confirmed():
    tables = {"outbox": [{"key": "kickoff:P1:a", "kind": "kickoff", "status": "pending", "at": "2027-01-31T00:00:00+00:00"},
                         {"key": "agenda:T1:a", "kind": "agenda", "status": "pending", "at": "2027-01-31T00:00:00+00:00"},
                         {"key": "kickoff:P1:b", "kind": "kickoff", "status": "pending", "at": NOW.isoformat()}],
              "pairs": [dict(PAIR, series=dict(PAIR["series"], published=1))]}
    problems = consistency.settled_problems(tables, NOW)
    assert len(problems) == 2  # an agenda whose moment passed may stay pending; this tick's key may too
    assert "kickoff:P1:a still pending" in problems[0] and "not confirmed by the backend" in problems[1]


def test_a_state_file_that_does_not_load_is_reported_not_raised(tmp_path):
    path = tmp_path / "state.json"
    path.write_bytes(b'{"pairs": {"1": {"pair_id": "P1"')  # cut mid-write
    (problem,) = consistency.check_file(path)
    assert "corrupt" in problem


# --------------------------------------------------------------------------------------------
# What the harness found on Exchange, pinned: a rerun must not send the attendees a change again


def exchange_pair(ews) -> tuple:  # type: ignore[no-untyped-def]
    from datetime import time, timedelta
    from zoneinfo import ZoneInfo

    from rmdaemon.backends.exchange import ExchangeBackend
    from rmdaemon.config import ExchangeBackendSettings
    from rmdaemon.model import Meeting, Person, SeriesPlan, WorkingHours
    from tests.servers.ews.fixtures import PROGRAMME, SERVICE_USER

    berlin = ZoneInfo("Europe/Berlin")
    hours = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))
    people = tuple(Person(n.title(), f"{n}@corp.example", "Europe/Berlin", hours) for n in ("mentor", "mentee"))
    for p in people:
        ews.control.add_mailbox(p.email)
    first = datetime(2027, 1, 5, 10, 0, tzinfo=berlin)
    plan = SeriesPlan("p1", "Europe/Berlin", first, 45, "weekly", "FREQ=WEEKLY;BYDAY=TU;COUNT=6")
    meeting = Meeting(uid="rm-chaos@corp.example", sequence=0, organizer_email=PROGRAMME, organizer_name="Programme",
                      attendees=people, summary="Reverse mentoring", description="Agenda follows by mail.", plan=plan)
    settings = ExchangeBackendSettings(service_endpoint=ews.url, mailbox=PROGRAMME, auth="basic", username=SERVICE_USER[0],
                                access="delegate", retry_budget_seconds=1, timezone="Europe/Berlin")
    return ExchangeBackend(settings, secret=SERVICE_USER[1]), meeting, first + timedelta(weeks=1)


def session_updates(ews, planned: datetime) -> list[bytes]:  # type: ignore[no-untyped-def]
    """The meeting messages the mentee got about that one session."""
    stamp = planned.astimezone(timezone.utc).strftime("RECURRENCE-ID:%Y%m%dT%H%M%SZ").encode()
    return [s.mime for s in ews.control.sent() if s.recipients == ("mentee@corp.example",) and stamp in s.mime]


def test_a_moved_session_whose_record_failed_is_not_sent_again_by_the_rerun(ews_server):
    from dataclasses import replace
    from datetime import timedelta

    from rmdaemon.errors import BackendError

    be, meeting, planned = exchange_pair(ews_server)
    publish(be, meeting)
    moved = replace(meeting, sequence=1, moved=((planned, planned + timedelta(days=1, hours=2)),))
    ews_server.add_fault("busy", "UpdateItem", times=5, contains=b"rmdaemon-sequence", back_off_ms=5000)
    with pytest.raises(BackendError):
        publish(be, moved)  # moved and sent, but recording it on the series failed
    ews_server.faults.clear()
    publish(be, moved)  # the next tick asks again
    assert len(session_updates(ews_server, planned)) == 1


def test_an_agenda_written_into_a_session_again_after_a_crash_is_not_sent_again(ews_server):
    be, meeting, planned = exchange_pair(ews_server)
    publish(be, meeting)
    for _ in range(2):  # the agendas job reruns after a crash: its agenda is found sent, the note is asked again
        annotate(be, meeting, planned, "Goal: TikTok\nConversation starter: what surprised you?")
    assert len(session_updates(ews_server, planned)) == 1
