"""Calendar answers on the smtp backend over real servers (aiosmtpd captures what leaves, Dovecot
holds the programme mailbox): Outlook's "Decline and propose new time" and a REFRESH are APPENDed
to the IMAP inbox as the clients write them; the DECLINECOUNTER, the repair offer carrying the
comment, and the invitation sent again leave over SMTP, each checked by the three parsers (and
libical where installed)."""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from prerequisites import LIBICAL, partly_missing
from test_calendar_answers import AISHA, RICHARD, attendee, calendar_mail, event, ical_js_itip, outlook_counter
from test_calendar_readers import agreed_starts, icalendar_read
from test_smtp_walkthrough import T0, World, check_invitation, libical_problems, pairs_state, world  # noqa: F401
from tests.servers.fixtures import dovecot, mail_certs, mailbox, smtp_server  # noqa: F401


def calendar_of(received, method: str) -> bytes:
    (part,) = [p for p in received.message.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == method
    return part.get_payload(decode=True)


@pytest.fixture
def booked(world: World) -> tuple[World, object]:
    assert world.prog.run(T0) == 0
    for kickoff in world.sent("kickoff"):
        world.answer(kickoff, "Yes, I'm in.", T0)
    assert world.prog.run(T0 + timedelta(hours=1)) == 0
    (invitation,) = [m for m in world.sent("itip") if list(m.rcpt_tos) == [RICHARD]]
    return world, next(iter(check_invitation(invitation).walk("VEVENT")))


def test_decline_and_propose_over_imap_gets_a_declinecounter_and_the_offer_with_the_comment(booked):
    world, p01 = booked
    first = p01["DTSTART"].dt.astimezone(timezone.utc)
    evening = first + timedelta(days=1, hours=11)  # the next day at 20:00 London: outside both people's hours
    world.append(outlook_counter(str(p01["UID"]), RICHARD, evening, occurrence=first, partstat="DECLINED",
                                 comment="I am travelling that week", when=T0 + timedelta(hours=2)))
    assert world.prog.run(T0 + timedelta(hours=2)) == 0
    state = pairs_state(world)["P01"]
    assert state["responses"][RICHARD] == {first.isoformat(): "DECLINED"}
    assert state["series"]["counters"][0]["state"] == "refused"
    (refusal,) = [m for m in world.sent("notice", to=RICHARD)]
    ics = calendar_of(refusal, "DECLINECOUNTER")
    assert str(icalendar_read(ics).walk("VEVENT")[0]["RECURRENCE-ID"].dt.astimezone(timezone.utc)) == str(first)
    assert ical_js_itip(ics)[0]["recurrence_id"] == f"{first:%Y-%m-%dT%H:%M:%SZ}"
    problems = libical_problems(ics)
    if problems is None:
        partly_missing(LIBICAL, "libical's RFC 5546 restriction check")
    else:  # RFC 2446's table (libical) had no ATTENDEE or SEQUENCE in a DECLINECOUNTER; RFC 5546 requires them
        assert [p for p in problems if "ATTENDEE property" not in p and "SEQUENCE property" not in p] == []
    (offer,) = world.sent("repair")
    assert sorted(offer.rcpt_tos) == sorted([AISHA, RICHARD])
    assert "I am travelling that week" in offer.message.get_body(("plain",)).get_content()


def test_refresh_over_imap_sends_the_current_invitation_to_that_attendee_only(booked):
    world, p01 = booked
    world.append(calendar_mail(AISHA, "REFRESH", event(str(p01["UID"]), attendee(AISHA))))
    assert world.prog.run(T0 + timedelta(hours=2)) == 0
    (again,) = world.sent("notice")
    assert list(again.rcpt_tos) == [AISHA]
    (first,) = [m for m in world.sent("itip") if list(m.rcpt_tos) == [AISHA]]
    assert agreed_starts(calendar_of(again, "REQUEST")) == agreed_starts(calendar_of(first, "REQUEST"))
