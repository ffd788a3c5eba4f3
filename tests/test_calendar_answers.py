"""Every answer a calendar client sends besides accept/decline, through the real CLI on the local
backend: Outlook's "Propose New Time" (COUNTER) for one session and for the series, "Decline and
propose new time", REFRESH, DELEGATED, a forwarded invitation, comments, and methods we do not know.

The pair meets weekly, Mondays 09:00 London, four times (11, 18, 25 January and 1 February 2027),
both in London with 09:00-17:00 working hours. Every calendar the daemon sends is read by
icalendar, recurring_ical_events and ICAL.js (``test_calendar_readers``).
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from dataclasses import replace

import recurring_ical_events

from icalendar import Calendar, Event, vCalAddress

from prerequisites import LIBICAL, SHARED_CORPORA, missing, partly_missing
from programme import Programme, calendar_parts, inbox_rows, status
from rmdaemon.itip import ANSWER_METHODS, ITIP_METHODS, build_declinecounter, build_request, read_methods, read_responses
from rmdaemon.model import Meeting, Person, SeriesPlan, WorkingHours
from rmdaemon.phrases import english
from test_smtp_walkthrough import libical_problems
from test_calendar_cli import HEADER as ROSTER_HEADER
from test_calendar_cli import LONDON, SESSIONS, T0, agenda_for, booked, london, rsvp, series_uid
from test_calendar_readers import _node, agreed_starts, ical_js_events, icalendar_read, invitations

FIXTURES = Path(__file__).parent / "fixtures" / "answers"
AISHA, RICHARD = "aisha.khan@example.com", "richard.hale@example.com"
NAMES = {AISHA: "Aisha Khan", RICHARD: "Richard Hale"}


def outlook_counter(uid: str, who: str, start: datetime, *, occurrence: datetime | None, partstat: str = "TENTATIVE",
                    note: str = "", comment: str = "", n: int = 0, when: datetime = T0) -> bytes:
    """Outlook's "Propose New Time" (tests/fixtures/answers/outlook_counter_propose_new_time.eml)
    for one session (RECURRENCE-ID) or the series, in London time under its Windows zone name."""
    local = lambda t: t.astimezone(LONDON).strftime("%Y%m%dT%H%M%S")  # noqa: E731
    original = occurrence or SESSIONS[0]
    fields = {
        "@@UID@@": uid, "@@FROM@@": who, "@@NAME@@": NAMES[who], "@@PARTSTAT@@": partstat,
        "@@DATE@@": format_datetime(when), "@@MESSAGE_ID@@": f"counter-{n}-{who}@client.example",
        "@@NOTE@@": note, "@@COMMENT@@": comment or note,
        "@@RECURRENCE_ID@@": f"RECURRENCE-ID;TZID=GMT Standard Time:{local(occurrence)}\n" if occurrence else "",
        "@@DTSTART@@": local(start), "@@DTEND@@": local(start + timedelta(minutes=45)),
        "@@ORIGSTART@@": local(original), "@@ORIGEND@@": local(original + timedelta(minutes=45)),
        "@@DTSTAMP@@": when.strftime("%Y%m%dT%H%M%SZ"), "@@INSTTYPE@@": "3" if occurrence else "1",
    }
    text = (FIXTURES / "outlook_counter_propose_new_time.eml").read_text()
    for key, value in fields.items():
        text = text.replace(key, value)
    if not comment and not note:
        text = text.replace("COMMENT;LANGUAGE=en-GB:\n", "")
    return text.replace("\n", "\r\n").encode()


def calendar_mail(who: str, method: str, event: Event, *, note: str = "", n: int = 0, subject: str = "") -> bytes:
    cal = Calendar()
    cal.add("PRODID", "-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN")
    cal.add("VERSION", "2.0")
    cal.add("METHOD", method)
    cal.add_component(event)
    msg = EmailMessage()
    msg["From"], msg["To"] = who, "mentoring@example.com"
    msg["Subject"] = subject or f"{method.title()}: Reverse Mentoring Pilot"
    msg["Message-ID"] = f"<{method.lower()}-{n}-{who}@client.example>"
    msg["Date"] = format_datetime(T0 + timedelta(days=1))
    msg.set_content(note or method.lower())
    msg.add_alternative(cal.to_ical(), maintype="text", subtype="calendar", params={"method": method})
    return msg.as_bytes()


def attendee(address: str, **params: str) -> vCalAddress:
    value = vCalAddress(f"mailto:{address}")
    value.params.update(params)
    return value


def event(uid: str, *people: vCalAddress, occurrence: datetime | None = None) -> Event:
    found = Event()
    found.add("UID", uid)
    found.add("DTSTAMP", T0 + timedelta(days=1))
    if occurrence:
        found.add("RECURRENCE-ID", occurrence)
    for person in people:
        found.add("ATTENDEE", person)
    return found


# A DECLINECOUNTER has no DTSTART, which ICAL.Event needs: read its properties as Thunderbird's engine does.
ITIP_JS = """
import ICAL from "ical.js";
import { readFileSync } from "node:fs";
const cal = new ICAL.Component(ICAL.parse(readFileSync(0, "utf8")));
for (const tz of cal.getAllSubcomponents("vtimezone")) ICAL.TimezoneService.register(tz);
const utc = (t) => t ? t.toJSDate().toISOString().replace(".000Z", "Z") : null;
process.stdout.write(JSON.stringify(cal.getAllSubcomponents("vevent").map((v) => ({
  method: cal.getFirstPropertyValue("method"), uid: v.getFirstPropertyValue("uid"),
  sequence: v.getFirstPropertyValue("sequence"), recurrence_id: utc(v.getFirstPropertyValue("recurrence-id")),
  attendee: v.getFirstPropertyValue("attendee"), comment: v.getFirstPropertyValue("comment"),
  location: v.getFirstPropertyValue("location")}))));
"""


def ical_js_itip(ics: bytes) -> list[dict]:
    return json.loads(_node(["--input-type=module", "-e", ITIP_JS], ics))


HOURS = WorkingHours(time(9), time(17), (0, 1, 2, 3, 4))
PEOPLE = [Person(NAMES[a], a, "Europe/London", HOURS) for a in (AISHA, RICHARD)]
PLAN = SeriesPlan("P01", "Europe/London", SESSIONS[0], 45, "weekly", "FREQ=WEEKLY;COUNT=4", 4, None)


def pair_doc(prog: Programme) -> dict:
    from rmdaemon.store import Store

    with Store.open(prog.state, writer=False) as store:
        return dict(store.table("pairs").all()[0])


def notices(prog: Programme, to: str) -> list[EmailMessage]:
    return prog.outbox("notice", to=to)


def text_of(msg: EmailMessage) -> str:
    return msg.get_body(("plain",)).get_content()


def answered(prog: Programme, raw: bytes, name: str, at: datetime) -> dict:
    """Drop one message, run the daemon twice (inbox, then the booking job's mail), say what the inbox made of it."""
    prog.drop(raw, name)
    assert prog.run(at) == 0
    assert prog.run(at + timedelta(minutes=5)) == 0
    return [r for r in inbox_rows(prog) if r["ref"].endswith(name) or name in r["ref"]][-1]


# --------------------------------------------------------------------------------------------
# COUNTER for one session


def test_a_proposed_time_inside_both_hours_moves_that_session_and_both_are_told(tmp_path):
    prog = booked(tmp_path)
    uid = series_uid(prog)
    tuesday = london("2027-01-19 14:00")
    row = answered(prog, outlook_counter(uid, AISHA, tuesday, occurrence=SESSIONS[1], note="Tuesday afternoon suits me better"),
                   "counter.eml", T0 + timedelta(days=1))
    assert row["outcome"] == "itip" and "proposed" in row["reason"]
    assert not [r for r in inbox_rows(prog) if r["outcome"] == "log"]
    (counter,) = pair_doc(prog)["series"]["counters"]
    assert (counter["state"], counter["start"], counter["slot"]) == ("accepted", tuesday.isoformat(), SESSIONS[1].isoformat())
    method, ics = invitations(prog, "richard.hale")[-1]
    assert method == "REQUEST" and agreed_starts(ics) == [SESSIONS[0], tuesday, *SESSIONS[2:]]
    events = ical_js_events(ics)
    assert {e["sequence"] for e in events} == {1} and [e["recurrence_id"] for e in events if e["recurrence_id"]] == [
        "2027-01-18T09:00:00Z"]
    (to_richard,), (to_aisha,) = notices(prog, RICHARD), notices(prog, AISHA)
    assert "Aisha Khan proposed another time for one session, and it is taken" in text_of(to_richard)
    assert "Tue 19 Jan 2027, 14:00 GMT" in text_of(to_richard) and "Tuesday afternoon suits me better" in text_of(to_richard)
    assert "Tue 19 Jan 2027, 14:00 GMT" in text_of(to_aisha)


def test_a_proposed_time_outside_working_hours_gets_a_declinecounter_and_the_repair_offer(tmp_path):
    prog = booked(tmp_path)
    uid = series_uid(prog)
    late = london("2027-01-19 19:30")
    answered(prog, outlook_counter(uid, RICHARD, late, occurrence=SESSIONS[1]), "counter.eml", T0 + timedelta(days=1))
    (counter,) = pair_doc(prog)["series"]["counters"]
    assert counter["state"] == "refused" and "outside working hours" in english(counter["reason"])
    (refusal,) = notices(prog, RICHARD)
    (method, ics), = calendar_parts(refusal)
    assert method == "DECLINECOUNTER"
    cal = icalendar_read(ics)
    (declined,) = cal.walk("VEVENT")
    assert str(cal["METHOD"]) == "DECLINECOUNTER" and str(declined["UID"]) == uid
    assert "outside working hours" in str(declined["COMMENT"])
    (read,) = ical_js_itip(ics)
    assert (read["method"], read["uid"], read["recurrence_id"], read["sequence"], read["attendee"]) == (
        "DECLINECOUNTER", uid, "2027-01-18T09:00:00Z", 0, f"mailto:{RICHARD}")
    assert "outside working hours" in read["comment"]
    (offer,) = prog.outbox("repair")
    text = text_of(offer)
    assert "Richard Hale proposed Tue 19 Jan 2027, 19:30 GMT instead" in text and "outside working hours" in text
    assert [line.strip()[:2] for line in text.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")] == ["1.", "2.", "3."]
    assert [m for m, _ in invitations(prog, "aisha.khan")] == ["REQUEST"]  # the series is as it was


def test_a_proposed_time_on_another_session_of_the_series_is_refused(tmp_path):
    prog = booked(tmp_path)
    answered(prog, outlook_counter(series_uid(prog), AISHA, SESSIONS[2], occurrence=SESSIONS[1]), "counter.eml",
             T0 + timedelta(days=1))
    (counter,) = pair_doc(prog)["series"]["counters"]
    assert counter["state"] == "refused" and "another session of your series" in english(counter["reason"])


def test_a_proposal_sent_after_the_session_was_held_is_no_second_session(tmp_path, capsys):
    """The bug of the issue: Outlook's proposal after a held session became a log nobody wrote."""
    prog = booked(tmp_path)
    after = SESSIONS[0] + timedelta(days=1)
    row = answered(prog, outlook_counter(series_uid(prog), AISHA, SESSIONS[0] + timedelta(days=1), occurrence=SESSIONS[0],
                                         note="Could we do it a day later?"), "counter.eml", after)
    assert row["outcome"] == "itip"
    assert pair_doc(prog)["series"]["counters"][0]["state"] == "refused"
    assert "has already passed" in english(pair_doc(prog)["series"]["counters"][0]["reason"])
    assert status(prog, after, capsys)["P01"]["sessions_held"] == 0


def test_decline_and_propose_records_the_decline_and_offers_other_times(tmp_path):
    prog = booked(tmp_path)
    sunday = london("2027-01-17 11:00")
    answered(prog, outlook_counter(series_uid(prog), AISHA, sunday, occurrence=SESSIONS[1], partstat="DECLINED",
                                   comment="I am travelling that week"), "counter.eml", T0 + timedelta(days=1))
    doc = pair_doc(prog)
    assert doc["responses"][AISHA] == {SESSIONS[1].isoformat(): "DECLINED"}
    assert doc["series"]["comments"][AISHA] == {SESSIONS[1].isoformat(): "I am travelling that week"}
    (offer,) = prog.outbox("repair")
    assert "Aisha Khan declined" in text_of(offer) and "I am travelling that week" in text_of(offer)
    assert [calendar_parts(m)[0][0] for m in notices(prog, AISHA)] == ["DECLINECOUNTER"]


# --------------------------------------------------------------------------------------------
# COUNTER for the whole series


def test_a_proposed_time_for_the_series_moves_every_remaining_session(tmp_path):
    prog = booked(tmp_path)
    assert prog.run(SESSIONS[0] + timedelta(hours=2)) == 0
    tuesday_ten = london("2027-01-12 10:00")  # Outlook proposes the series' first start a day later at 10:00
    at = SESSIONS[0] + timedelta(hours=3)
    answered(prog, outlook_counter(series_uid(prog), RICHARD, tuesday_ten, occurrence=None, when=at), "counter.eml", at)
    assert pair_doc(prog)["series"]["counters"][0]["state"] == "accepted"
    method, ics = invitations(prog, "aisha.khan")[-1]
    later = [s + timedelta(days=1, hours=1) for s in SESSIONS[1:]]
    assert method == "REQUEST" and agreed_starts(ics) == [SESSIONS[0], *later]
    assert all("proposed another time for the whole series, and it is taken" in text_of(m) for m in notices(prog, AISHA))


def test_a_series_proposal_that_one_session_cannot_take_leaves_the_series(tmp_path):
    prog = booked(tmp_path, blackout_dates='[2027-01-26]')
    answered(prog, outlook_counter(series_uid(prog), RICHARD, london("2027-01-12 10:00"), occurrence=None,
                                   partstat="DECLINED", comment="Mondays are full for me"), "counter.eml", T0 + timedelta(days=1))
    doc = pair_doc(prog)
    assert doc["series"]["counters"][0]["state"] == "refused" and doc["responses"][RICHARD] == {"series": "DECLINED"}
    (refusal,) = notices(prog, RICHARD)
    assert calendar_parts(refusal)[0][0] == "DECLINECOUNTER"
    (told,) = notices(prog, AISHA)
    assert "Mondays are full for me" in text_of(told) and "stays as it is" in text_of(told)


# --------------------------------------------------------------------------------------------
# REFRESH, DELEGATED, forwards, comments, unknown methods


def test_refresh_sends_that_attendee_the_current_version(tmp_path):
    prog = booked(tmp_path)
    uid = series_uid(prog)
    rsvp(prog, AISHA, uid, SESSIONS[1], "DECLINED", T0 + timedelta(days=1))
    prog.run(T0 + timedelta(days=1))
    row = answered(prog, calendar_mail(RICHARD, "REFRESH", event(uid, attendee(RICHARD))), "refresh.eml",
                   T0 + timedelta(days=2))
    assert row["outcome"] == "itip" and "asked for the invitation again" in row["reason"]
    (again,) = notices(prog, RICHARD)
    (method, ics), = calendar_parts(again)
    assert method == "REQUEST" and agreed_starts(ics) == SESSIONS
    assert not notices(prog, AISHA)


def test_a_delegated_session_never_adds_the_delegate_and_the_pair_is_told(tmp_path, capsys):
    prog = booked(tmp_path)
    uid = series_uid(prog)
    me = attendee(RICHARD, PARTSTAT="DELEGATED", **{"DELEGATED-TO": "mailto:pa@example.com"})
    row = answered(prog, calendar_mail(RICHARD, "REPLY", event(uid, me, occurrence=SESSIONS[1])), "delegated.eml",
                   T0 + timedelta(days=1))
    assert row["outcome"] == "itip" and "delegated" in row["reason"]
    assert pair_doc(prog)["series"]["outsiders"][0] == {"address": "pa@example.com", "kind": "delegated", "by": RICHARD,
                                                        "at": (T0 + timedelta(days=1)).isoformat()}
    assert all("pa@example.com" in text_of(m) and "not added" in text_of(m) for m in notices(prog, AISHA) + notices(prog, RICHARD))
    assert [m for m, _ in invitations(prog, "aisha.khan")] == ["REQUEST"] and not prog.outbox("itip", to="pa@example.com")
    problems = status(prog, T0 + timedelta(days=1), capsys)["P01"]["problems"]
    assert any("pa@example.com" in p and "delegated" in p for p in problems)


def test_an_exchange_forward_notification_tells_the_pair_and_adds_nobody(tmp_path, capsys):
    prog = booked(tmp_path)
    forwarded = attendee("colleague@example.com", PARTSTAT="NEEDS-ACTION", CN="A Colleague")
    raw = calendar_mail(AISHA, "REPLY", event(series_uid(prog), forwarded),
                        subject="Meeting Forward Notification: Reverse Mentoring Pilot: Aisha Khan & Richard Hale")
    row = answered(prog, raw, "forward.eml", T0 + timedelta(days=1))
    assert row["outcome"] == "itip" and "forwarded the invitation to colleague@example.com" in row["reason"]
    (to_richard,) = notices(prog, RICHARD)
    assert "forwarded by Aisha Khan to colleague@example.com" in text_of(to_richard)
    problems = status(prog, T0 + timedelta(days=1), capsys)["P01"]["problems"]
    assert any("colleague@example.com" in p for p in problems)


def test_an_answer_from_someone_outside_the_pair_changes_nothing(tmp_path):
    prog = booked(tmp_path)
    colleague = attendee("colleague@example.com", PARTSTAT="ACCEPTED")
    row = answered(prog, calendar_mail("colleague@example.com", "REPLY", event(series_uid(prog), colleague)), "outsider.eml",
                   T0 + timedelta(days=1))
    assert row["outcome"] == "quarantine" and "not part of pair P01" in row["reason"]
    assert "colleague@example.com" not in str(pair_doc(prog))


def test_a_comment_with_an_accept_is_shown_to_the_other_person_only(tmp_path):
    prog = booked(tmp_path)
    me = attendee(AISHA, PARTSTAT="ACCEPTED")
    accept = event(series_uid(prog), me)
    accept.add("COMMENT", "Looking forward to it, bring your questions")
    answered(prog, calendar_mail(AISHA, "REPLY", accept, note="See you Monday!"), "accept.eml", T0 + timedelta(days=1))
    (told,) = notices(prog, RICHARD)
    assert "Aisha Khan accepted the whole series" in text_of(told)
    assert "Looking forward to it, bring your questions" in text_of(told) and "See you Monday!" in text_of(told)
    assert not notices(prog, AISHA)


def test_a_calendar_with_a_method_that_is_not_itip_is_quarantined_with_the_reason(tmp_path):
    prog = booked(tmp_path)
    row = answered(prog, calendar_mail(AISHA, "X-PROPOSE", event(series_uid(prog), attendee(AISHA, PARTSTAT="ACCEPTED"))),
                   "odd.eml", T0 + timedelta(days=1))
    assert row["outcome"] == "quarantine" and "X-PROPOSE" in row["reason"]


# --------------------------------------------------------------------------------------------
# Reading and writing the iTIP parts themselves


CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "ics"


def rfc_5546_examples(method: str) -> list[bytes]:
    """The RFC 2446/5546 examples of ``method`` as libical's test suite keeps them (read from
    ../shared/corpora beside the checkout, never copied here)."""
    path = CORPORA / "libical" / "test-data" / "2446.ics"
    if not path.is_file():
        missing(SHARED_CORPORA, f"not found at {path}")
    found = []
    for chunk in path.read_bytes().split(b"BEGIN:VCALENDAR")[1:]:
        cal = b"BEGIN:VCALENDAR" + chunk.split(b"END:VCALENDAR")[0] + b"END:VCALENDAR\r\n"
        if f"METHOD:{method}".encode() in cal:
            found.append(cal)
    return found


def as_mail(ics: bytes) -> bytes:
    return b"Content-Type: text/calendar; charset=utf-8\r\n\r\n" + ics


def test_the_rfc_counter_example_gives_the_proposed_time_and_comment():
    (first, *_) = rfc_5546_examples("COUNTER")
    (answer,) = read_responses(as_mail(first))
    assert (answer.method, answer.proposed_start, answer.proposed_end) == (
        "COUNTER", datetime(1997, 7, 1, 16, tzinfo=timezone.utc), datetime(1997, 7, 1, 19, tzinfo=timezone.utc))
    assert "This time works much better" in answer.comment


def test_the_rfc_refresh_examples_are_answers_and_declinecounter_is_not():
    refreshes = [r for ics in rfc_5546_examples("REFRESH") for r in read_responses(as_mail(ics))]
    assert {r.method for r in refreshes} == {"REFRESH"} and "b@example.com" in {r.attendee for r in refreshes}
    assert read_methods(as_mail(rfc_5546_examples("DECLINECOUNTER")[0])) == ["DECLINECOUNTER"]
    assert "DECLINECOUNTER" in ITIP_METHODS - ANSWER_METHODS


def test_delegated_to_is_read_with_the_delegation():
    me = attendee(RICHARD, PARTSTAT="DELEGATED", **{"DELEGATED-TO": '"mailto:PA@example.com"'})
    (answer,) = read_responses(calendar_mail(RICHARD, "REPLY", event("u-1", me)))
    assert (answer.partstat, answer.delegated_to) == ("DELEGATED", ("pa@example.com",))


def test_the_outlook_counter_is_read_in_its_windows_zone():
    raw = outlook_counter("u-1", AISHA, london("2027-06-15 14:00"), occurrence=london("2027-06-14 09:00"), note="ok")
    (answer,) = read_responses(raw)
    assert answer.recurrence_id == datetime(2027, 6, 14, 8, tzinfo=timezone.utc)  # British summer time
    assert answer.proposed_start == datetime(2027, 6, 15, 13, tzinfo=timezone.utc)
    assert (answer.method, answer.partstat, answer.comment) == ("COUNTER", "TENTATIVE", "ok")


def test_a_declinecounter_passes_libicals_rfc_5546_check_and_a_location_is_never_empty():
    meeting = Meeting("u-1", 3, "mentoring@example.com", "Team", (PEOPLE[0], PEOPLE[1]), "Session", "", PLAN)
    ics = build_declinecounter(meeting, T0, PEOPLE[0], SESSIONS[1], "it is outside working hours")
    problems = libical_problems(ics)
    if problems is None:
        partly_missing(LIBICAL, "libical's RFC 5546 restriction check")
    else:  # libical checks RFC 2446's table, which had no ATTENDEE or SEQUENCE here; RFC 5546 requires them
        assert [p for p in problems if not any(f"for {name} property. Expected 0 instances" in p
                                               for name in ("ATTENDEE", "SEQUENCE"))] == []
    assert b"LOCATION" not in ics and b"LOCATION" not in build_request(meeting, T0)
    placed = build_request(replace(meeting, location="https://meet.example.com/aisha"), T0)
    assert [str(e["LOCATION"]) for e in icalendar_read(placed).walk("VEVENT")] == ["https://meet.example.com/aisha"]


# --------------------------------------------------------------------------------------------
# A place to meet


def test_the_rosters_location_template_is_in_every_invitation_and_agenda_and_the_programmes_elsewhere(tmp_path):
    roster = (ROSTER_HEADER + ",location\n"
              f"P01,Aisha Khan,{AISHA},Richard Hale,{RICHARD},Understand TikTok,Europe/London,Europe/London,weekly,"
              "https://meet.example.com/{{ mentor.email.split('@')[0] }}\n")
    prog = booked(tmp_path, roster=roster, location='"Room 4.12, London office"')
    uid = series_uid(prog)
    answered(prog, outlook_counter(uid, AISHA, london("2027-01-19 14:00"), occurrence=SESSIONS[1]), "counter.eml",
             T0 + timedelta(days=1))
    sent = invitations(prog, "richard.hale")
    assert [m for m, _ in sent] == ["REQUEST", "REQUEST"]
    url = "https://meet.example.com/aisha.khan"
    for _, ics in sent:
        assert {str(e["LOCATION"]) for e in icalendar_read(ics).walk("VEVENT")} == {url}
        assert {e["location"] for e in ical_js_itip(ics)} == {url}
        assert {str(e["LOCATION"]) for e in recurring_ical_events.of(icalendar_read(ics)).between(SESSIONS[0], SESSIONS[3] + timedelta(days=1))} == {url}
    assert all(f"Where: {url}" in text_of(m) for m in prog.outbox("itip", to="richard.hale"))
    agenda = agenda_for(prog, SESSIONS[0])
    assert f"Where: {url}" in text_of(agenda) and "Join online" not in text_of(agenda)


def test_the_programmes_location_is_used_when_the_roster_gives_none(tmp_path):
    prog = booked(tmp_path, location='"Room 4.12, London office"')
    (_, ics), = invitations(prog, "aisha.khan")
    assert [str(e["LOCATION"]) for e in icalendar_read(ics).walk("VEVENT")] == ["Room 4.12, London office"]


def test_a_plain_exchange_forward_notification_is_no_session_note(tmp_path):
    prog = booked(tmp_path)
    msg = EmailMessage()
    msg["From"], msg["To"] = f"Aisha Khan <{AISHA}>", "mentoring@example.com"
    msg["Subject"] = "Meeting Forward Notification: Reverse Mentoring Pilot: Aisha Khan & Richard Hale"
    msg["Message-ID"], msg["Auto-Submitted"] = "<fwd-1@client.example>", "auto-generated"
    msg.set_content("Your meeting was forwarded\n\nAisha Khan has forwarded your meeting request to additional "
                    "recipients.\n\nRecipients\nA Colleague <colleague@example.com>\n")
    row = answered(prog, msg.as_bytes(), "fwd.eml", T0 + timedelta(days=1))
    assert row["outcome"] == "itip" and "colleague@example.com" in row["reason"]
    assert not [r for r in inbox_rows(prog) if r["outcome"] == "log"]
    (told,) = notices(prog, RICHARD)
    assert "forwarded by Aisha Khan to colleague@example.com" in text_of(told)


def test_the_sentence_a_client_writes_by_itself_is_no_comment(tmp_path):
    prog = booked(tmp_path)
    accept = event(series_uid(prog), attendee(AISHA, PARTSTAT="ACCEPTED"))
    answered(prog, calendar_mail(AISHA, "REPLY", accept, note="Aisha Khan has accepted your event invitation."),
             "accept.eml", T0 + timedelta(days=1))
    assert pair_doc(prog)["responses"][AISHA] == {"series": "ACCEPTED"} and not notices(prog, RICHARD)
    assert "comments" not in pair_doc(prog)["series"]


def test_check_names_a_location_template_that_cannot_be_filled_in(tmp_path, capsys):
    prog = Programme.create(tmp_path, roster=ROSTER_HEADER + "\nP01,Aisha Khan,aisha.khan@example.com,Richard Hale,"
                            "richard.hale@example.com,Understand TikTok,Europe/London,Europe/London,weekly\n",
                            location='"https://meet.example.com/{{ mentor.emial }}"')
    assert prog.cli("check") == 2
    out = capsys.readouterr().out
    assert "[program] location:" in out and "emial" in out and "Traceback" not in out


def test_decline_and_propose_a_time_that_fits_moves_the_session_and_takes_the_decline_back(tmp_path):
    prog = booked(tmp_path)
    tuesday = london("2027-01-19 11:00")
    answered(prog, outlook_counter(series_uid(prog), AISHA, tuesday, occurrence=SESSIONS[1], partstat="DECLINED"),
             "counter.eml", T0 + timedelta(days=1))
    assert prog.run(T0 + timedelta(days=1, hours=1)) == 0
    doc = pair_doc(prog)
    assert doc["series"]["counters"][0]["state"] == "accepted" and doc["responses"][AISHA] == {}
    assert not prog.outbox("repair")
    assert agreed_starts(invitations(prog, "aisha.khan")[-1][1]) == [SESSIONS[0], tuesday, *SESSIONS[2:]]
