"""Three independent readers for every calendar we emit, and the whole example programme read by them.

icalendar (what Python clients use), recurring_ical_events (icalendar + dateutil, expands the
series the way most Python tools do) and ICAL.js (Mozilla's engine inside Thunderbird, run with
node; it has no zone database, so it is the one that proves our VTIMEZONEs). The other
``test_calendar_*`` modules import the helpers from here.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import warnings
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import recurring_ical_events
from icalendar import Calendar

from programme import Programme, calendar_parts
from prerequisites import ICAL_JS, missing

JS_DIR = Path(__file__).parent / "js"
T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)

# Reads one VCALENDAR with ICAL.js and prints every VEVENT as Thunderbird sees it (UTC instants).
# Unlike expand.mjs it also reads a CANCEL of one occurrence, which has no master VEVENT.
EVENTS_JS = """
import ICAL from "ical.js";
import { readFileSync } from "node:fs";
const utc = (t) => t ? t.toJSDate().toISOString().replace(".000Z", "Z") : null;
const cal = new ICAL.Component(ICAL.parse(readFileSync(0, "utf8")));
const out = cal.getAllSubcomponents("vevent").map((v) => {
  const e = new ICAL.Event(v);
  if (e.startDate.zone?.tzid === "floating") throw new Error("floating DTSTART: TZID without VTIMEZONE?");
  return {method: cal.getFirstPropertyValue("method"), uid: e.uid, sequence: e.sequence,
          status: v.getFirstPropertyValue("status"), recurrence_id: utc(e.recurrenceId),
          start: utc(e.startDate), end: utc(e.endDate), exdates: v.getAllProperties("exdate").map((p) => utc(p.getFirstValue()))};
});
process.stdout.write(JSON.stringify(out));
"""


def _node(args: list[str], ics: bytes) -> bytes:
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "ical.js").is_dir():
        missing(ICAL_JS)
    done = subprocess.run([node, *args], input=ics, capture_output=True, timeout=30, cwd=JS_DIR)
    assert done.returncode == 0, done.stderr.decode()
    assert not done.stderr, done.stderr.decode()  # ICAL.js warns on stderr; we want none
    return done.stdout


def icalendar_read(ics: bytes) -> Calendar:
    """Parsed by icalendar with no warning and no recorded property error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cal = Calendar.from_ical(ics)
    broken = [(c.name, c.errors) for c in cal.walk() if getattr(c, "errors", None)]
    assert not broken, broken
    return cal


def ical_js_events(ics: bytes) -> list[dict]:
    """Every VEVENT as ICAL.js reads it: method, uid, sequence, status, recurrence_id, start, end, exdates."""
    return json.loads(_node(["--input-type=module", "-e", EVENTS_JS], ics))


def ical_js_starts(ics: bytes) -> list[datetime]:
    """The series expanded by ICAL.js (EXDATEs dropped, overrides applied), UTC."""
    occurrences = json.loads(_node([str(JS_DIR / "expand.mjs")], ics))
    return sorted(datetime.fromisoformat(o["start"].replace("Z", "+00:00")) for o in occurrences)


def recurring_starts(ics: bytes) -> list[datetime]:
    events = recurring_ical_events.of(icalendar_read(ics)).between(datetime(2000, 1, 1), datetime(2100, 1, 1))
    return sorted(e.decoded("DTSTART").astimezone(timezone.utc) for e in events)


def agreed_starts(ics: bytes) -> list[datetime]:
    """Occurrences of a REQUEST as both expanders see them; they must agree to the second."""
    python, thunderbird = recurring_starts(ics), ical_js_starts(ics)
    assert python == thunderbird
    return python


def master(cal: Calendar):
    (event,) = [e for e in cal.walk("VEVENT") if "RECURRENCE-ID" not in e]
    return event


def invitations(prog: Programme, to: str) -> list[tuple[str, bytes]]:
    """(method, calendar) of every invitation sent to ``to``, in the order they were sent (a
    series' REQUEST before the CANCEL of one of its sessions sent in the same run)."""
    found = []
    for msg in prog.outbox("itip", to=to):
        (method, ics), = calendar_parts(msg)
        event = icalendar_read(ics).walk("VEVENT")[0]
        found.append(((msg["Date"].datetime, int(event["SEQUENCE"]), "RECURRENCE-ID" in event), method, ics))
    return [(method, ics) for _, method, ics in sorted(found, key=lambda f: f[0])]


def opt_in_all(prog: Programme, when: datetime) -> None:
    for kickoff in prog.outbox("kickoff"):
        prog.reply(kickoff, "Yes, I'm in.", when)


def check_every_calendar(msg: EmailMessage) -> None:
    """The calendar part and the invite.ics attachment are the same bytes and read the same everywhere."""
    parts = [p.get_payload(decode=True) for p in msg.walk()
             if p.get_content_type() in ("text/calendar", "application/ics")]
    assert len(parts) == 2 and parts[0] == parts[1]
    cal = icalendar_read(parts[0])
    js = ical_js_events(parts[0])
    assert [e["uid"] for e in js] == [str(e["UID"]) for e in cal.walk("VEVENT")]
    assert {e["method"] for e in js} == {str(cal["METHOD"])}
    if cal["METHOD"] == "REQUEST":
        agreed_starts(parts[0])


def inside(start: datetime, minutes: int, zone: str, first: str, last: str) -> bool:
    local = start.astimezone(ZoneInfo(zone))
    end = (start + timedelta(minutes=minutes)).astimezone(ZoneInfo(zone))
    return local.weekday() < 5 and f"{local:%H:%M}" >= first and f"{end:%H:%M}" <= last and end.date() == local.date()


def test_every_invitation_of_the_example_programme_reads_the_same_in_three_readers(tmp_path):
    """The shipped example (London, New York, Berlin, Kolkata; weekly, biweekly and monthly,
    sessions across the March DST changes) booked through the CLI."""
    prog = Programme.create(tmp_path)
    prog.run(T0)
    opt_in_all(prog, T0)
    prog.run(T0 + timedelta(hours=1))
    sent = prog.outbox("itip")
    assert len(sent) == 14
    for msg in sent:
        check_every_calendar(msg)


def test_every_booked_session_of_the_example_keeps_its_local_time_and_both_peoples_hours(tmp_path):
    prog = Programme.create(tmp_path)
    prog.run(T0)
    opt_in_all(prog, T0)
    prog.run(T0 + timedelta(hours=1))
    crossed = 0
    for row in csv.DictReader(prog.roster.read_text().splitlines()):
        if row["status"] != "active":
            continue
        (msg,) = prog.outbox("itip", to=row["mentee_email"])
        (_, ics), = calendar_parts(msg)
        event = master(icalendar_read(ics))
        tz = str(event["DTSTART"].params["TZID"])
        starts = agreed_starts(ics)
        assert {f"{s.astimezone(ZoneInfo(tz)):%H:%M}" for s in starts} == {f"{event.decoded('DTSTART'):%H:%M}"}
        minutes = int((event.decoded("DTEND") - event.decoded("DTSTART")).total_seconds() // 60)
        for role in ("mentor", "mentee"):
            first, last = (row[f"{role}_working_hours"] or "09:00-17:00").split("-")
            assert all(inside(s, minutes, row[f"{role}_timezone"], first, last) for s in starts), (row["pair_id"], role)
        crossed += len({s.astimezone(ZoneInfo(tz)).utcoffset() for s in starts}) > 1
    assert crossed  # some series really cross a DST change (London and Berlin in March)
