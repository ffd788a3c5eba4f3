"""The programme walked forward through the real CLI on the local backend, as the README's demo."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import icalendar
import pytest

from programme import Programme, calendar_parts, status

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
ACTIVE = ["P01", "P02", "P03", "P04", "P05", "P07", "P08"]


@pytest.fixture
def prog(tmp_path) -> Programme:
    return Programme.create(tmp_path)


def opt_in_all(prog: Programme, when: datetime, except_: tuple[str, ...] = ()) -> None:
    for kickoff in prog.outbox("kickoff"):
        if not any(e in str(kickoff["To"]) for e in except_):
            prog.reply(kickoff, "Yes, I'm in.", when)



def test_kickoff_goes_to_both_people_of_every_active_pair_and_not_the_paused_one(prog):
    assert prog.run(T0) == 0
    kickoffs = prog.outbox("kickoff")
    assert len(kickoffs) == 2 * len(ACTIVE)
    recipients = {str(m["To"]) for m in kickoffs}
    assert not any("jordan.ellis" in r or "catherine.wu" in r for r in recipients)  # P06 is paused
    first = kickoffs[0]
    assert first.get_content_type() == "multipart/alternative"
    assert "[RM-" in first["Subject"] and "YES" in first.get_body(("plain",)).get_content()


def test_same_now_twice_changes_nothing(prog):
    prog.run(T0)
    opt_in_all(prog, T0)
    prog.run(T0 + timedelta(hours=1))
    before = (prog.state.read_bytes(), [p.name for p in prog.outbox_files()])
    prog.run(T0 + timedelta(hours=1))
    assert (prog.state.read_bytes(), [p.name for p in prog.outbox_files()]) == before


def test_series_booked_only_after_both_opted_in(prog, capsys):
    prog.run(T0)
    opt_in_all(prog, T0, except_=("sanjay.rao",))  # P07's mentee has not answered
    prog.run(T0 + timedelta(hours=1))
    invitations = prog.outbox("itip")
    assert len(invitations) == 2 * (len(ACTIVE) - 1)
    assert not prog.outbox("itip", to="sanjay.rao")
    rows = status(prog, T0 + timedelta(hours=1), capsys)
    assert rows["P07"]["state"] == "awaiting consent"
    assert rows["P01"]["state"] == "active" and rows["P01"]["next_session"]
    assert rows["P06"]["state"] == "paused"


def test_invitation_is_one_itip_request_per_attendee_with_a_stable_uid(prog):
    prog.run(T0)
    opt_in_all(prog, T0)
    prog.run(T0 + timedelta(hours=1))
    to_richard = prog.outbox("itip", to="richard.hale")
    assert len(to_richard) == 1
    (method, ics), = calendar_parts(to_richard[0])
    assert method == "REQUEST"
    cal = icalendar.Calendar.from_ical(ics)
    assert cal["METHOD"] == "REQUEST"
    event = next(iter(cal.walk("VEVENT")))
    assert "RRULE" in event and event["SEQUENCE"] == 0
    (_, ics_aisha), = calendar_parts(prog.outbox("itip", to="aisha.khan")[0])
    assert next(iter(icalendar.Calendar.from_ical(ics_aisha).walk("VEVENT")))["UID"] == event["UID"]


def test_agenda_goes_out_lead_hours_before_and_reply_becomes_a_log(prog, capsys):
    prog.run(T0)
    opt_in_all(prog, T0)
    prog.run(T0 + timedelta(hours=1))
    start = datetime.fromisoformat(status(prog, T0 + timedelta(hours=1), capsys)["P01"]["next_session"])
    prog.run(start - timedelta(hours=25))
    assert not prog.outbox("agenda", to="richard.hale")
    prog.run(start - timedelta(hours=23))
    agendas = prog.outbox("agenda.", to="richard.hale") + prog.outbox("agenda.", to="aisha.khan")
    assert len(agendas) == 2
    text = agendas[0].get_body(("plain",)).get_content()
    assert "TikTok" in text  # the pair's goal
    assert "Conversation starter:" in text
    prog.reply(agendas[1], "Attended: yes\nTopics: TikTok search, creators\nNext steps: follow three creators\n"
               "Rating: 4", start + timedelta(hours=2))
    prog.run(start + timedelta(hours=3))
    row = status(prog, start + timedelta(hours=3), capsys)["P01"]
    assert row["sessions_held"] == 1 and row["last_log"]
    # the next agenda carries the agreed next steps
    following = datetime.fromisoformat(row["next_session"])
    prog.run(following - timedelta(hours=20))
    later = [m for m in prog.outbox("agenda.", to="aisha.khan") if m not in agendas]
    newest = max(prog.outbox("agenda.", to="aisha.khan"), key=lambda m: m["Date"].datetime)
    assert "follow three creators" in newest.get_body(("plain",)).get_content()
    assert later


def test_preview_prints_the_next_agenda_with_headers(prog, capsys):
    prog.run(T0)
    opt_in_all(prog, T0)
    prog.run(T0 + timedelta(hours=1))
    capsys.readouterr()
    assert prog.cli("preview", "P03", "--now", (T0 + timedelta(hours=1)).isoformat()) == 0
    out = capsys.readouterr().out
    assert "Subject: " in out and "Message-ID: <rm.agenda." in out
    assert "linda.morales@example.com" in out and "Goal: Learn how the mobile app team" in out


def test_dry_run_prints_and_writes_nothing(prog, capsys):
    prog.run(T0)
    opt_in_all(prog, T0)
    before = prog.state.read_bytes()
    capsys.readouterr()
    assert prog.cli("run", "--dry-run", "--now", (T0 + timedelta(hours=1)).isoformat()) == 0
    out = capsys.readouterr().out
    assert out.count("would book series") == len(ACTIVE)
    assert prog.state.read_bytes() == before
    assert not prog.outbox("itip")
    assert len(list((prog.root / "var" / "inbox" / "new").iterdir())) == 2 * len(ACTIVE)


def test_pause_command_cancels_the_series(prog):
    prog.run(T0)
    opt_in_all(prog, T0)
    prog.run(T0 + timedelta(hours=1))
    kickoff = prog.outbox("kickoff", to="richard.hale")[0]
    prog.reply(kickoff, "PAUSE\n\nSorry, a busy quarter.", T0 + timedelta(hours=2))
    prog.run(T0 + timedelta(hours=3))
    cancels = [m for m in prog.outbox("itip", to="aisha.khan") if calendar_parts(m)[0][0] == "CANCEL"]
    assert len(cancels) == 1
    event = next(iter(icalendar.Calendar.from_ical(calendar_parts(cancels[0])[0][1]).walk("VEVENT")))
    assert event["STATUS"] == "CANCELLED" and event["SEQUENCE"] == 1


def test_roster_edits_update_and_cancel_series(prog):
    prog.run(T0)
    opt_in_all(prog, T0)
    prog.run(T0 + timedelta(hours=1))
    rows = prog.roster.read_text().splitlines()
    rows = [r.replace(",social media,,,,active", ",social media,weekly,,,active") if r.startswith("P01,") else r
            for r in rows if not r.startswith("P04,")]
    prog.roster.write_text("\n".join(rows) + "\n")
    prog.run(T0 + timedelta(hours=2))
    updates = [calendar_parts(m)[0] for m in prog.outbox("itip", to="richard.hale")]
    events = [next(iter(icalendar.Calendar.from_ical(ics).walk("VEVENT"))) for _, ics in updates]
    assert sorted(e["SEQUENCE"] for e in events) == [0, 1]
    assert len({str(e["UID"]) for e in events}) == 1
    assert "INTERVAL=2" not in events[-1]["RRULE"].to_ical().decode() or events[0]["SEQUENCE"] == 1
    removed = [calendar_parts(m)[0][0] for m in prog.outbox("itip", to="david.thompson")]
    assert sorted(removed) == ["CANCEL", "REQUEST"]


def test_reply_from_a_stranger_is_quarantined_with_its_bytes(prog, capsys):
    prog.run(T0)
    kickoff = prog.outbox("kickoff", to="richard.hale")[0]
    path = prog.reply(kickoff, "YES", T0, sender="mallory@evil.example")
    raw = path.read_bytes()
    prog.run(T0 + timedelta(hours=1))
    quarantined = list((prog.root / "var" / "quarantine").glob("*.eml"))
    assert [q.read_bytes() for q in quarantined] == [raw]
    assert status(prog, T0, capsys)["P01"]["state"] == "awaiting consent"


def test_the_readme_walkthrough_after_the_demo_changes_status_as_it_says(tmp_path, monkeypatch, capsys):
    """make demo, then the README's own reply (its code block, with the agenda's token) and commands."""
    import re

    from programme import REPO
    from rmdaemon import demo
    from rmdaemon.cli import main

    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "roster.csv").write_bytes((REPO / "examples" / "roster.csv").read_bytes())
    (tmp_path / "config.example.toml").write_bytes((REPO / "config.example.toml").read_bytes())
    monkeypatch.chdir(tmp_path)
    assert demo.main() == 0
    readme = (REPO / "README.md").read_text()
    end, later = re.findall(r"status --now (2027-[0-9T:+-]+)", readme)[:2]
    assert f"Demo done at {end}" in capsys.readouterr().out
    (agenda,) = [p for p in (tmp_path / "var" / "outbox" / "new").glob("*.eml") if b"session 1 with Richard Hale" in p.read_bytes()
                 and b"To: Aisha Khan" in p.read_bytes()]
    token = re.search(rb"\[(RM-\w{6})\]", agenda.read_bytes())[1].decode()
    reply = re.search(r"```\n(From: Aisha Khan.*?)```", readme, re.S)[1].replace("RM-ABC123", token)
    (tmp_path / "var" / "inbox" / "new" / "my-reply-1.eml").write_text(reply)

    def p01(now: str) -> dict:
        assert main(["--config", "config.example.toml", "status", "--json", "--now", now]) == 0
        return next(r for r in json.loads(capsys.readouterr().out)["pairs"] if r["pair_id"] == "P01")

    assert (p01(end)["state"], p01(end)["sessions_held"]) == ("at risk", 0)
    assert main(["--config", "config.example.toml", "run", "--now", later]) == 0
    assert "P01: log (session 1 logged by aisha.khan@example.com)" in capsys.readouterr().out
    assert (p01(later)["state"], p01(later)["sessions_held"]) == ("active", 1)
