"""One programme, three ways of running the daemon: every hour; with random gaps of up to three
weeks; once, after the end. The people write the same replies at the same moments (a late log,
sessions never logged, a calendar decline, a SKIP, a RESCHEDULE); whatever ran when, the sessions
of every pair (``status --json``), the pair states and the report come out the same. Only what is
bound to a time differs, and it is recorded: an agenda whose session had started is "not sent",
a survey whose moment had passed with the programme over is in ``milestones_not_sent``.

The short form runs in the default suite, running every three hours instead of every hour and
drawing two gap schedules; ``RMDAEMON_LONG_TESTS=1`` runs every hour and draws 25 (docs/testing.md).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from icalendar import Calendar

from programme import Programme, outlook_rsvp
from rmdaemon.store import Store
from timeline import Reply, Timeline

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
T0 = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)
HOUR, DAY, WEEK = timedelta(hours=1), timedelta(days=1), timedelta(days=7)
LONG = os.environ.get("RMDAEMON_LONG_TESTS") == "1"
ROSTER = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,track,status\n"
          "P01,Aisha Khan,aisha.khan@example.com,Richard Hale,richard.hale@example.com,Learn TikTok,social media,active\n"
          "P02,Tom Becker,tom.becker@example.com,Linda Morales,linda.morales@example.com,Ship weekly,technology,active\n")


class Rsvp(Reply):
    """A calendar answer to one occurrence, the way Outlook writes it (no Date, no session token)."""


def begun(root: Path) -> tuple[Timeline, dict[str, list[datetime]]]:
    """Kickoffs, both pairs say yes, the series are booked: what every schedule shares."""
    prog = Programme.create(root, roster=ROSTER, cadence='"weekly"', sessions="4")
    line = Timeline(prog, [Reply(T0 + 30 * timedelta(minutes=1), who, "YES") for who in ("aisha", "richard", "tom", "linda")])
    line.live([T0, T0 + HOUR])
    starts = {pid: [datetime.fromisoformat(s["start"].replace("Z", "+00:00")) for s in row["sessions"]]
              for pid, row in status_at(prog, T0 + HOUR).items()}
    return line, starts


def script(starts: dict[str, list[datetime]]) -> list[Reply]:
    """What the people write, and when; all on the kickoff thread or in the calendar, so nothing
    depends on which agendas went out."""
    s, t = starts["P01"], starts["P02"]
    moved_to = _same_week_other_day(t[2])
    return [
        Reply(s[0] + 2 * HOUR, "aisha", "Attended: yes\nRating: 5"),
        Reply(s[1] + 4 * DAY, "richard", "Attended: yes\nRating: 4\nSorry, late with this one."),  # late
        Reply(s[2] - 2 * DAY, "richard", "SKIP"),
        # P01's fourth session and P02's first are never logged
        Rsvp(t[0] + DAY, "linda", t[1].isoformat()),  # declines the second session; nobody picks another time
        Reply(t[2] - 3 * DAY, "tom", f"RESCHEDULE {moved_to:%a %H:%M}"),
        Reply(moved_to + 2 * HOUR, "tom", "Attended: yes\nRating: 3"),
        Reply(t[3] + HOUR, "linda", "Attended: yes\nRating: 4"),
    ]


def _same_week_other_day(start: datetime) -> datetime:
    local = start.astimezone(LONDON)
    day = local + (DAY if local.weekday() < 4 else -DAY)
    return day.replace(hour=14, minute=0).astimezone(UTC)


class Lived(Timeline):
    def _write(self, reply: Reply) -> None:
        if not isinstance(reply, Rsvp):
            return super()._write(reply)
        invitation = self.mail("itip", to=reply.who)[0]
        ics = next(part for part in invitation.walk() if part.get_content_type() == "text/calendar")
        uid = str(Calendar.from_ical(ics.get_payload(decode=True)).walk("VEVENT")[0]["UID"])
        who = invitation["To"].addresses[0].addr_spec
        name, raw = outlook_rsvp(who, uid, datetime.fromisoformat(reply.text), "DECLINED", reply.at)
        self.prog.drop(raw, name)


def status_at(prog: Programme, now: datetime) -> dict[str, dict]:
    """``status --json`` at ``now``, as {pair_id: row} (module fixtures have no capsys)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert prog.cli("status", "--json", "--now", now.isoformat()) == 0
    return {row["pair_id"]: row for row in json.loads(out.getvalue())["pairs"]}


def outcome(line: Timeline, now: datetime) -> dict:
    """What must not depend on the schedule: each pair's sessions and state, and the report."""
    rows = status_at(line.prog, now)
    report = line.prog.root / "report.csv"
    assert line.prog.cli("report", "--format", "csv", "--out", str(report), "--now", now.isoformat()) == 0
    return {"sessions": {pid: [{k: v for k, v in s.items() if k != "agenda"} for s in row["sessions"]] for pid, row in rows.items()},
            "states": {pid: row["state"] for pid, row in rows.items()}, "report": report.read_text()}


def time_bound_kept_track_of(line: Timeline, now: datetime) -> None:
    """Every session that took place had its agendas sent, or ``status`` says they were not
    because it had started when the daemon came back; never nothing at all."""
    for pid, row in status_at(line.prog, now).items():
        for session in row["sessions"]:
            if session["status"] not in ("skipped", "cancelled", "declined"):  # declined: no agenda while open
                assert session["agenda"] in ("sent", "not sent"), (pid, session)


class World:
    """The shared beginning, copied for each schedule."""

    def __init__(self, root: Path) -> None:
        self.root = root
        line, self.starts = begun(root / "begun")
        self.delivered = list(line.delivered)
        self.end = max(max(s) for s in self.starts.values()) + 2 * WEEK
        self.after = T0 + 2 * HOUR
        self.runs = itertools.count()

    def lived(self, name: str, moments: list[datetime]) -> Timeline:
        target = self.root / name
        shutil.copytree(self.root / "begun", target)
        line = Lived(Programme(target), script(self.starts),
                     [target / "delivered" / p.name for p in self.delivered])
        line.live([*moments, self.end])
        return line


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("schedules"))


@pytest.fixture(scope="module")
def hourly(world: World) -> tuple[Timeline, dict]:
    step = HOUR if LONG else 3 * HOUR
    moments = [world.after + n * step for n in range(int((world.end - world.after) / step))]
    line = world.lived("hourly", moments)
    return line, outcome(line, world.end)


def test_run_every_hour_lives_the_script_as_written(hourly):
    line, seen = hourly
    assert [s["status"] for s in seen["sessions"]["P01"]] == ["held", "held", "skipped", "missed"]
    assert [s["status"] for s in seen["sessions"]["P02"]] == ["missed", "declined", "held", "held"], seen["sessions"]["P02"]
    assert seen["states"] == {"P01": "ended", "P02": "ended"}
    assert sorted(k.split(":")[0] for k in line.keys()).count("agenda") >= 10


def test_a_single_run_after_the_end_gives_the_same_record_with_the_time_bound_mail_marked_not_sent(world, hourly):
    line = world.lived("once", [])
    assert outcome(line, world.end) == hourly[1]
    rows = status_at(line.prog, world.end)
    assert {s["agenda"] for row in rows.values() for s in row["sessions"] if s["status"] not in ("skipped",)} == {"not sent"}
    assert not [k for k in line.keys() if k.startswith(("agenda:", "survey:P01:first", "nudge:"))]
    with Store.open(line.prog.state, writer=False) as store:
        overtaken = {d["pair_id"]: d.get("milestones_not_sent") for d in store.table("pairs").all()}
    assert overtaken == {"P01": ["first", "midpoint"], "P02": ["first", "midpoint"]}


@settings(max_examples=25 if LONG else 2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                                 HealthCheck.too_slow])
@given(gaps=st.lists(st.integers(1, 21 * 24), min_size=1, max_size=60))
def test_random_gaps_of_up_to_three_weeks_give_the_same_record(world, hourly, gaps):
    moments, now = [], world.after
    for gap in gaps:
        now += gap * HOUR
        if now >= world.end:
            break
        moments.append(now)
    line = world.lived(f"gaps-{next(world.runs)}", moments)
    assert outcome(line, world.end) == hourly[1]
    time_bound_kept_track_of(line, world.end)
