"""iCalendar/iTIP (RFC 5545/5546): build the invitations we send, read the answers that come back.

Pure functions: no I/O and no clock (the DTSTAMP is passed in), so jobs can call them freely and
tests can compare bytes. Outbound is strict, inbound is lenient: Outlook, Gmail and Thunderbird
must all read what we write, and we must understand whatever Exchange, Google, Apple or
Thunderbird send back (Exchange omits ORGANIZER, DTSTAMP and SEQUENCE and names zones the
Windows way; Google sends every answer twice).

The VTIMEZONE is written here rather than by ``icalendar``'s ``add_missing_timezones()``: that
one puts every DST change of an observance on one multi-value RDATE line, which ICAL.js
(Thunderbird) misreads, so every occurrence after a DST change lands an hour off. We write
yearly RRULE observances (what Outlook and Google write) derived from zoneinfo's transitions.
"""

from __future__ import annotations

import calendar as gregorian
import email
import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar import Alarm, Calendar, Event, Timezone, TimezoneDaylight, TimezoneStandard
from icalendar import vCalAddress, vRecur
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from rmdaemon.model import Meeting, Person

PRODID = "-//rmdaemon//Reverse mentoring programme//EN"
REMINDER_BEFORE = timedelta(minutes=15)
PARTSTATS = frozenset({"ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED", "NEEDS-ACTION"})
# RFC 5546's methods. Answers to our invitations are REPLY, COUNTER and REFRESH; the rest are what an
# organizer sends (a forwarded invitation, a PUBLISH). A method outside this set is not iTIP at all.
ITIP_METHODS = frozenset({"PUBLISH", "REQUEST", "REPLY", "ADD", "CANCEL", "REFRESH", "COUNTER", "DECLINECOUNTER"})
ANSWER_METHODS = frozenset({"REPLY", "COUNTER", "REFRESH"})
CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "text/x-vcalendar"})
# Enough for any series planning produces; only an RRULE without COUNT/UNTIL gets near it.
MAX_OCCURRENCES = 1000
# Transitions are searched a year either side of the series so that the observances are yearly
# rules (as Outlook and Google write them) rather than one-off dates.
TZ_MARGIN = timedelta(days=366)
TZ_SCAN_STEP = 6 * 3600  # seconds; no zone changes its offset twice within six hours
FOLD_AT = 74  # characters a written line holds before icalendar folds it (RFC 5545: 75 octets)


@dataclass(frozen=True)
class ItipResponse:
    """One attendee's answer to one event (or one occurrence, when ``recurrence_id`` is set)."""

    uid: str
    attendee: str  # case-folded address, without "mailto:"
    partstat: str  # ACCEPTED, DECLINED, TENTATIVE, DELEGATED or NEEDS-ACTION
    recurrence_id: datetime | None  # UTC
    sequence: int | None
    comment: str
    method: str
    # COUNTER: the time proposed (DTSTART/DTEND as UTC instants); None in other answers.
    proposed_start: datetime | None = None
    proposed_end: datetime | None = None
    delegated_to: tuple[str, ...] = ()  # DELEGATED-TO addresses (case-folded), when PARTSTAT=DELEGATED


# --------------------------------------------------------------------------------------------
# Outbound


def build_request(meeting: Meeting, stamp: datetime) -> bytes:
    """METHOD:REQUEST for the whole series, with one override VEVENT per moved occurrence.

    Sending the whole series every time (never a lone override) is what keeps clients that
    missed an earlier update consistent: each REQUEST replaces what they have.
    """
    if meeting.cancelled:
        raise ValueError(f"meeting {meeting.uid} is cancelled: send build_cancel() instead")
    master = _series_event(meeting, stamp, "CONFIRMED")
    master.add_component(_alarm(meeting))
    events = [master]
    for planned, new_start in _overrides(meeting):
        override = _occurrence_event(meeting, stamp, planned, new_start, "CONFIRMED")
        override.add_component(_alarm(meeting))
        events.append(override)
    return _written("REQUEST", _series_vtimezone(meeting), events)


def build_cancel(meeting: Meeting, stamp: datetime, occurrence: datetime | None = None) -> bytes:
    """METHOD:CANCEL for the series, or for one occurrence (its planned start) when given.

    The caller raises ``meeting.sequence`` first: clients ignore a CANCEL whose SEQUENCE is not
    higher than the REQUEST they hold.
    """
    if occurrence is None:
        return _written("CANCEL", _series_vtimezone(meeting), [_series_event(meeting, stamp, "CANCELLED")])
    planned, start = _locate(meeting, occurrence)
    end = max(planned, start) + _duration(meeting)
    return _written("CANCEL", _zone_lines(meeting.plan.tzid, min(planned, start), end),
                    [_occurrence_event(meeting, stamp, planned, start, "CANCELLED")])


def build_declinecounter(meeting: Meeting, stamp: datetime, attendee: Person, occurrence: datetime | None,
                         comment: str) -> bytes:
    """METHOD:DECLINECOUNTER to the attendee whose COUNTER we refused (RFC 5546 3.2.8), for one
    occurrence (its planned start) or the series, saying why in COMMENT. RFC 5546 wants the
    ATTENDEE and SEQUENCE (RFC 2446, which libical checks, wanted neither) and no DTSTART or
    SUMMARY: the time that stands is in the REQUEST the client already holds."""
    planned = meeting.plan.first_start
    if occurrence is not None:
        planned = _locate(meeting, occurrence)[0]
    zone = ZoneInfo(meeting.plan.tzid)
    event = Event()
    event.add("UID", meeting.uid)
    event.add("SEQUENCE", meeting.sequence)
    event.add("DTSTAMP", _utc(stamp))
    event.add("ORGANIZER", _address(meeting.organizer_email, meeting.organizer_name))
    event.add("ATTENDEE", _address(attendee.email, attendee.name))
    if occurrence is not None:
        event.add("RECURRENCE-ID", planned.astimezone(zone))
    _add_text(event, "COMMENT", comment)
    return _written("DECLINECOUNTER", _zone_lines(meeting.plan.tzid, planned, planned + _duration(meeting)), [event])


def _written(method: str, tz: bytes, events: list[Event]) -> bytes:
    """The VCALENDAR bytes, written as icalendar writes a calendar holding the VTIMEZONE and the
    events: its own lines, each component's lines in order, its END. A component's lines are the
    same written alone as inside the calendar, so the VTIMEZONE can come written already
    (``_zone_lines``)."""
    return b"".join([_head(method), tz, *(_component_lines(event) for event in events), b"END:VCALENDAR\r\n"])


def _component_lines(component: Event) -> bytes:
    """``component.to_ical()`` with ASCII lines folded here: icalendar folds a line by stepping
    through its characters in Python, a third of building an invitation. A line with other
    characters goes through icalendar (tests/test_itip.py compares the two on random lines)."""
    lines = (component.content_line(name, value) for name, value in component.property_items())
    return b"".join((_fold_ascii(line).encode() if line.isascii() else line.to_ical()) + b"\r\n" for line in lines)


def _fold_ascii(line: str) -> str:
    """icalendar's folding of an ASCII line: pieces of at most 74 characters, the next ones after
    CRLF and a space; a piece that would end in the ``\\`` or ``^`` of an escape leaves it to the next."""
    pieces = []
    while len(line) > FOLD_AT:
        cut = FOLD_AT - 1 if line[FOLD_AT - 1] in "\\^" else FOLD_AT
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return "\r\n ".join(pieces)


@functools.lru_cache(maxsize=16)
def _head(method: str) -> bytes:
    """The VCALENDAR's BEGIN and its own properties: what precedes its components."""
    cal = Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    cal.add("CALSCALE", "GREGORIAN")
    cal.add("METHOD", method)
    return cal.to_ical().removesuffix(b"END:VCALENDAR\r\n")


def _series_event(meeting: Meeting, stamp: datetime, status: str) -> Event:
    """The master VEVENT: the first occurrence, the RRULE and one EXDATE line per skipped one."""
    zone = ZoneInfo(meeting.plan.tzid)
    start = meeting.plan.first_start.astimezone(zone)
    event = _event(meeting, stamp, start, status)
    event.add("RRULE", _rrule(meeting.plan.rrule, meeting.plan.tzid))
    for skipped in sorted(meeting.exdates):
        # One value per line: the multi-value form is where clients disagree.
        event.add("EXDATE", skipped.astimezone(zone))
    return event


def _occurrence_event(
    meeting: Meeting, stamp: datetime, planned: datetime, start: datetime, status: str
) -> Event:
    """A VEVENT for one occurrence, keyed by RECURRENCE-ID = its planned start."""
    zone = ZoneInfo(meeting.plan.tzid)
    event = _event(meeting, stamp, start.astimezone(zone), status)
    event.add("RECURRENCE-ID", planned.astimezone(zone))
    return event


def _event(meeting: Meeting, stamp: datetime, start: datetime, status: str) -> Event:
    """The properties every VEVENT we send carries (icalendar writes them in its own order)."""
    event = Event()
    event.add("UID", meeting.uid)
    event.add("SEQUENCE", meeting.sequence)
    event.add("DTSTAMP", _utc(stamp))
    event.add("ORGANIZER", _address(meeting.organizer_email, meeting.organizer_name))
    for person in meeting.attendees:
        event.add("ATTENDEE", _attendee(person))
    _add_text(event, "SUMMARY", meeting.summary)
    _add_text(event, "DESCRIPTION", meeting.description)
    _add_text(event, "LOCATION", meeting.location)
    event.add("DTSTART", start)
    event.add("DTEND", start + _duration(meeting))
    categories = [c for c in meeting.categories if c.strip()]
    if categories:
        event.add("CATEGORIES", categories)
    event.add("CLASS", "PRIVATE")
    event.add("TRANSP", "OPAQUE")
    event.add("STATUS", status)
    # Outlook shows the slot as busy from these, whatever TRANSP says.
    event.add("X-MICROSOFT-CDO-BUSYSTATUS", "BUSY")
    event.add("X-MICROSOFT-CDO-INTENDEDSTATUS", "BUSY")
    return event


def _address(email_address: str, name: str) -> vCalAddress:
    """A bare ``mailto:`` with CN: no SENT-BY, which makes Gmail show "Unknown organizer"."""
    address = vCalAddress(f"mailto:{email_address}")
    if name.strip():
        address.params["CN"] = name.strip()
    return address


def _attendee(person: Person) -> vCalAddress:
    address = _address(person.email, person.name)
    address.params["CUTYPE"] = "INDIVIDUAL"
    address.params["ROLE"] = "REQ-PARTICIPANT"
    address.params["PARTSTAT"] = "NEEDS-ACTION"
    address.params["RSVP"] = "TRUE"
    return address


def _add_text(component: Event | Alarm, name: str, value: str) -> None:
    """Add a text property unless it would be empty: libical flags ``DESCRIPTION:``."""
    if value.strip():
        component.add(name, value)


def _alarm(meeting: Meeting) -> Alarm:
    alarm = Alarm()
    alarm.add("ACTION", "DISPLAY")
    alarm.add("TRIGGER", -REMINDER_BEFORE)
    alarm.add("DESCRIPTION", meeting.summary.strip() or "Reminder")
    return alarm


def _duration(meeting: Meeting) -> timedelta:
    return timedelta(minutes=meeting.plan.duration_minutes)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment} has no time zone: DTSTAMP and UNTIL are instants")
    return moment.astimezone(timezone.utc)


def _rrule(rrule: str, tzid: str) -> vRecur:
    """The plan's RRULE with UNTIL in UTC, as RFC 5545 requires when DTSTART has a TZID.

    A floating or DATE UNTIL is read in the series' zone (a DATE means "through that day").
    """
    recur = vRecur.from_ical(rrule.strip().removeprefix("RRULE:"))
    if "UNTIL" in recur:
        zone = ZoneInfo(tzid)
        until = recur["UNTIL"][0]
        if not isinstance(until, datetime):
            until = datetime.combine(until, time(23, 59, 59))
        if until.tzinfo is None:
            until = until.replace(tzinfo=zone)
        recur["UNTIL"] = [_utc(until)]
    return recur


def _planned_starts(meeting: Meeting) -> list[datetime]:
    """Every start the RRULE produces (before EXDATE and moves), aware in the series' zone.

    dateutil steps in wall-clock time when DTSTART is aware, which is RFC 5545's rule: a
    Tuesday 10:00 series stays at 10:00 local across DST changes.
    """
    plan = meeting.plan
    return list(_rule_starts(plan.rrule, plan.tzid, plan.first_start.astimezone(timezone.utc)))


@functools.lru_cache(maxsize=1024)
def _rule_starts(rrule: str, tzid: str, first: datetime) -> tuple[datetime, ...]:
    """Memoised: many series of a programme share a slot, and so their starts. ``first`` is keyed
    in UTC: two wall times of a zone's repeated hour compare equal in the zone's own time."""
    rule = rrulestr(_rrule(rrule, tzid).to_ical().decode(), dtstart=first.astimezone(ZoneInfo(tzid)))
    return tuple(itertools.islice(rule, MAX_OCCURRENCES))


def _overrides(meeting: Meeting) -> list[tuple[datetime, datetime]]:
    """Moved occurrences, minus any that were also skipped (an EXDATE wins)."""
    skipped = set(meeting.exdates)
    return sorted((old, new) for old, new in meeting.moved if old not in skipped)


def _locate(meeting: Meeting, occurrence: datetime) -> tuple[datetime, datetime]:
    """(planned start, actual start) of an occurrence given by either of them."""
    moved = dict(meeting.moved)
    if occurrence in _planned_starts(meeting):
        return occurrence, moved.get(occurrence, occurrence)
    for planned, new_start in meeting.moved:
        if new_start == occurrence:
            return planned, new_start
    raise ValueError(f"{occurrence} is not an occurrence of meeting {meeting.uid}")


def _series_vtimezone(meeting: Meeting) -> bytes:
    """The VTIMEZONE (written) covering every start and end the series can have, moves included."""
    starts = _planned_starts(meeting) + [new for _, new in meeting.moved]
    return _zone_lines(meeting.plan.tzid, min(starts), max(starts) + _duration(meeting))


# --------------------------------------------------------------------------------------------
# VTIMEZONE


@dataclass(frozen=True)
class _Transition:
    at: datetime  # UTC instant of the change
    before: timedelta  # UTC offset before
    after: timedelta  # UTC offset after
    name: str  # abbreviation after, e.g. "BST"

    @property
    def local(self) -> datetime:
        """The onset as RFC 5545 wants it in DTSTART: local time before the change."""
        return (self.at + self.before).replace(tzinfo=None)

    @property
    def rule(self) -> tuple[object, ...]:
        """What a yearly RRULE can repeat: offsets, name, month, nth weekday, time of day."""
        local = self.local
        days_in_month = gregorian.monthrange(local.year, local.month)[1]
        nth = -1 if local.day > days_in_month - 7 else (local.day - 1) // 7 + 1
        return (self.before, self.after, self.name, local.month, local.weekday(), nth, local.time())


def vtimezone(tzid: str, start: datetime, end: datetime) -> Timezone:
    """A VTIMEZONE for ``tzid`` that is exact for every instant from ``start`` to ``end``.

    Each run of yearly-repeating offset changes becomes one STANDARD/DAYLIGHT observance with a
    ``FREQ=YEARLY;BYMONTH=..;BYDAY=..`` rule (bounded by UNTIL when the rule later changed); a
    zone without changes (Asia/Kolkata) gets a single STANDARD.
    """
    return _vtimezone(*_vtimezone_key(tzid, start, end))


def _zone_lines(tzid: str, start: datetime, end: datetime) -> bytes:
    """``vtimezone`` written, once per zone and window: writing it afresh for every series was a
    third of building an invitation, and a programme books thousands of series in a handful of
    zones and months (bench/, 10,000 pairs)."""
    return _written_vtimezone(*_vtimezone_key(tzid, start, end))


def _vtimezone_key(tzid: str, start: datetime, end: datetime) -> tuple[str, datetime, datetime, bool]:
    """All a VTIMEZONE for ``start`` to ``end`` depends on: the zone, the window scanned for its
    changes, and whether the offset at the window's start needs an observance of its own."""
    window_start, window_end = _month_floor(_utc(start) - TZ_MARGIN), _month_ceil(_utc(end) + TZ_MARGIN)
    transitions = _zone_transitions(tzid, window_start, window_end)
    return tzid, window_start, window_end, not transitions or transitions[0].at > _utc(start)


@functools.lru_cache(maxsize=256)
def _written_vtimezone(tzid: str, window_start: datetime, window_end: datetime, fixed: bool) -> bytes:
    return _vtimezone(tzid, window_start, window_end, fixed).to_ical()


def _vtimezone(tzid: str, window_start: datetime, window_end: datetime, fixed: bool) -> Timezone:
    zone = ZoneInfo(tzid)
    transitions = list(_zone_transitions(tzid, window_start, window_end))
    tz = Timezone()
    tz.add("TZID", tzid)
    if fixed:
        tz.add_component(_fixed_observance(zone, window_start))
    for run in _yearly_runs(transitions):
        open_ended = run[-1].at + TZ_MARGIN > window_end
        tz.add_component(_observance(run, open_ended))
    return tz


def _month_floor(moment: datetime) -> datetime:
    """Windows snap to whole months, so series of one zone share the scanned transitions."""
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _month_ceil(moment: datetime) -> datetime:
    floor = _month_floor(moment)
    return floor if floor == moment else _month_floor(floor + timedelta(days=32))


@functools.lru_cache(maxsize=256)
def _zone_transitions(tzid: str, start: datetime, end: datetime) -> tuple[_Transition, ...]:
    """Scanning a zone costs milliseconds and a programme books thousands of series in a handful
    of zones: the scan is memoised (pure: the same zone and window always give the same answer)."""
    return tuple(_transitions(ZoneInfo(tzid), start, end))


def _transitions(zone: ZoneInfo, start: datetime, end: datetime) -> list[_Transition]:
    """Every change of UTC offset in [start, end), found by stepping and bisecting zoneinfo."""

    def offset(second: int) -> timedelta:
        return datetime.fromtimestamp(second, zone).utcoffset() or timedelta()

    found: list[_Transition] = []
    first, last = int(start.timestamp()), int(end.timestamp())
    for lo in range(first, last, TZ_SCAN_STEP):
        hi = min(lo + TZ_SCAN_STEP, last)
        before, after = offset(lo), offset(hi)
        if before == after:
            continue
        while hi - lo > 1:  # invariant: offset(lo) == before, offset(hi) == after
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if offset(mid) == before else (lo, mid)
        at = datetime.fromtimestamp(hi, timezone.utc)
        found.append(_Transition(at, before, after, at.astimezone(zone).tzname() or ""))
    return found


def _yearly_runs(transitions: list[_Transition]) -> list[list[_Transition]]:
    """Group transitions into runs that one yearly RRULE reproduces exactly.

    A run continues while the same rule fires in consecutive years; anything irregular (a zone
    that changed its rules, a rule no RRULE can express) ends up in runs of one, which are
    written as single onsets — verbose but still exact.
    """
    runs: list[list[_Transition]] = []
    open_runs: dict[tuple[object, ...], list[_Transition]] = {}
    for transition in transitions:
        run = open_runs.get(transition.rule)
        if run is not None and run[-1].local.year == transition.local.year - 1:
            run.append(transition)
            continue
        run = [transition]
        open_runs[transition.rule] = run
        runs.append(run)
    return runs


def _observance(run: list[_Transition], open_ended: bool) -> TimezoneStandard | TimezoneDaylight:
    first = run[0]
    kind = TimezoneDaylight if first.after > first.before else TimezoneStandard
    observance = kind()
    observance.add("DTSTART", first.local)
    observance.add("TZOFFSETFROM", first.before)
    observance.add("TZOFFSETTO", first.after)
    if first.name:
        observance.add("TZNAME", first.name)
    if len(run) > 1:
        _, _, _, month, weekday, nth, _ = first.rule
        day = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[weekday]
        recur = vRecur(FREQ="YEARLY", BYMONTH=month, BYDAY=f"{nth}{day}")
        if not open_ended:
            recur["UNTIL"] = _vtimezone_until(run[-1])
        observance.add("RRULE", recur)
    return observance


def _vtimezone_until(last: _Transition) -> datetime:
    """An UNTIL that keeps the last onset however a reader compares it.

    RFC 5545 compares UNTIL (UTC) with the onset in UTC, but some readers (icalendar, via
    dateutil) compare it with the onset's local time; for zones far east of UTC the two
    disagree about the last year. A day after the local onset, written as UTC, is past the
    last onset both ways and still a year before the next one.
    """
    return (last.local + timedelta(days=1)).replace(tzinfo=timezone.utc)


def _fixed_observance(zone: ZoneInfo, since: datetime) -> TimezoneStandard | TimezoneDaylight:
    """The offset in force at ``since``, for zones with no change before the series starts."""
    local = since.astimezone(zone)
    dst = local.dst()
    observance = TimezoneDaylight() if dst and dst > timedelta() else TimezoneStandard()
    offset = local.utcoffset() or timedelta()
    observance.add("DTSTART", datetime.combine(local.date(), time()))
    observance.add("TZOFFSETFROM", offset)
    observance.add("TZOFFSETTO", offset)
    if local.tzname():
        observance.add("TZNAME", local.tzname())
    return observance


# --------------------------------------------------------------------------------------------
# Inbound


def read_responses(raw_email: bytes) -> list[ItipResponse]:
    """Every answer in a whole RFC 5322 message, from all its calendar parts, de-duplicated.

    Google sends the same REPLY as a text/calendar part and as an .ics attachment; some
    clients send only one of them, so all are read.
    """
    return read_calendars(raw_email)[0]


def read_methods(raw_email: bytes) -> list[str]:
    """The METHOD of every calendar part of the message (the part's method parameter, else the
    calendar's own), in order, without repeats; "" for a calendar that names none."""
    return read_calendars(raw_email)[1]


def read_calendars(raw_email: bytes | Message | None) -> tuple[list[ItipResponse], list[str]]:
    """``read_responses`` and ``read_methods`` from one parse of the message (the inbox asks
    both of every reply). ``raw_email`` is the raw message, or the compat32 tree a caller has
    parsed already: the inbox's ``replies.Inbound.tree``, None when the parser gave up on it."""
    message = raw_email if isinstance(raw_email, Message) or raw_email is None else _message(raw_email)
    if message is None:  # a message we cannot parse has no answer
        return [], []
    responses: list[ItipResponse] = []
    methods: list[str] = []
    for part in _calendar_parts(message):
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            responses.extend(_responses(payload, _mime_method(part)))
            methods += [_mime_method(part) or str(c.get("METHOD", "")).strip().upper() for c in _parse(payload)]
    return list(dict.fromkeys(responses)), list(dict.fromkeys(methods))


def _message(raw_email: bytes) -> Message | None:
    try:
        return email.message_from_bytes(raw_email)
    except Exception:  # noqa: BLE001 - untrusted bytes
        return None


def _calendar_parts(message: Message) -> Iterator[Message]:
    """Calendar parts of the message itself, not of messages attached to it.

    A bounce or a forward carries someone else's message (often our own REQUEST) as
    message/rfc822; its calendar is not the sender's answer.
    """
    stack = [message]
    while stack:
        part = stack.pop()
        if part.get_content_maintype() == "message" and part is not message:
            continue
        if part.is_multipart():
            stack.extend(reversed(part.get_payload()))
        elif _is_calendar(part):
            yield part


def _is_calendar(part: Message) -> bool:
    try:
        filename = (part.get_filename() or "").strip().lower()
    except Exception:  # noqa: BLE001 - a mangled RFC 2231 filename must not hide the part
        filename = ""
    return part.get_content_type() in CALENDAR_TYPES or filename.endswith(".ics")


def _mime_method(part: Message) -> str:
    method = part.get_param("method")
    return method.strip().upper() if isinstance(method, str) else ""


def _responses(ics: bytes, mime_method: str) -> list[ItipResponse]:
    found: list[ItipResponse] = []
    for cal in _parse(ics):
        method = mime_method or str(cal.get("METHOD", "")).strip().upper()
        for event in cal.walk("VEVENT"):
            found.extend(_event_responses(event, cal, method))
    return found


def _parse(ics: bytes) -> list[Calendar]:
    """All VCALENDARs in the bytes (some files concatenate several), or none if unreadable."""
    text = _decode(ics).lstrip("\ufeff")
    try:
        parsed = Calendar.from_ical(text, multiple=True)
    except Exception:  # noqa: BLE001 - untrusted input; icalendar raises many kinds on garbage
        return []
    return [c for c in parsed if isinstance(c, Calendar)]


def _decode(ics: bytes) -> str:
    """UTF-8 as RFC 5545 says; old Exchange and Lotus exports are sometimes Windows-1252."""
    try:
        return ics.decode("utf-8")
    except UnicodeDecodeError:
        return ics.decode("cp1252", errors="replace")


def _event_responses(event: Event, cal: Calendar, method: str) -> list[ItipResponse]:
    """One response per answering attendee of a VEVENT; nothing if the VEVENT is unusable.

    The answering attendees are those with a PARTSTAT; Exchange also lists others without
    one. If none has a PARTSTAT, RFC 5545's default NEEDS-ACTION applies to all.
    """
    try:
        uid = str(event.get("UID", "")).strip()
        attendees = [a for a in _as_list(event.get("ATTENDEE")) if "@" in _attendee_address(a)]  # not a room's urn:
        if not uid or not attendees:
            return []
        answering = [a for a in attendees if "PARTSTAT" in a.params] or attendees
        recurrence_id = _recurrence_id(event, cal)
        sequence = _sequence(event)
        comment = "\n".join(str(c).strip() for c in _as_list(event.get("COMMENT"))).strip()
        proposed = (_instant(event, "DTSTART", cal), _instant(event, "DTEND", cal)) if method == "COUNTER" else (None, None)
    except Exception:  # noqa: BLE001 - one malformed VEVENT must not hide the others
        return []
    return [
        ItipResponse(
            uid, _attendee_address(a), _partstat(a), recurrence_id, sequence, comment, method, *proposed,
            _delegated_to(a),
        )
        for a in answering
    ]


def _delegated_to(attendee: object) -> tuple[str, ...]:
    """DELEGATED-TO="mailto:a@b","mailto:c@d" as case-folded addresses."""
    value = getattr(attendee, "params", {}).get("DELEGATED-TO")
    if not value:
        return ()
    values = value if isinstance(value, list) else str(value).split(",")
    return tuple(a for a in (_attendee_address(v.strip().strip('"')) for v in values) if "@" in a)


def _instant(event: Event, name: str, cal: Calendar) -> datetime | None:
    """DTSTART/DTEND as a UTC instant, read like RECURRENCE-ID (Windows zone names included)."""
    prop = event.get(name)
    return _as_utc(prop, cal) if prop is not None else None


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _attendee_address(attendee: object) -> str:
    """The address after the last ``mailto:`` (any case); RFC 7986's EMAIL parameter if none.

    Taking the last one also copes with clients that leak parameters into the value
    (``x-key=..;cn=..:mailto:a@b``).
    """
    value = str(attendee).strip()
    cut = value.lower().rfind("mailto:")
    if cut >= 0:
        value = value[cut + len("mailto:"):].strip()
    if "@" not in value:
        params = getattr(attendee, "params", {})
        value = str(params.get("EMAIL", value)).strip()
    return value.casefold()


def _partstat(attendee: object) -> str:
    """PARTSTAT upper-cased; RFC 5545 says to treat an unknown value as NEEDS-ACTION."""
    params = getattr(attendee, "params", {})
    value = str(params.get("PARTSTAT", "NEEDS-ACTION")).strip().upper()
    return value if value in PARTSTATS else "NEEDS-ACTION"


def _sequence(event: Event) -> int | None:
    value = event.get("SEQUENCE")
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def _recurrence_id(event: Event, cal: Calendar) -> datetime | None:
    """RECURRENCE-ID as a UTC instant; floating values are read as UTC, dates as midnight UTC."""
    prop = event.get("RECURRENCE-ID")
    return _as_utc(prop, cal) if prop is not None else None


def _as_utc(prop: Any, cal: Calendar) -> datetime | None:
    value = prop.dt
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), timezone.utc) if isinstance(value, date) else None
    tzid = str(prop.params.get("TZID", "")).strip()
    if tzid:
        # Re-read the wall-clock time ourselves: icalendar resolves unknown TZIDs through a
        # process-wide cache filled by earlier files, which would make this depend on history.
        value = value.replace(tzinfo=_zone(tzid, cal))
    elif value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _zone(tzid: str, cal: Calendar) -> tzinfo:
    """IANA name, else a Windows name via CLDR's table, else this file's VTIMEZONE, else UTC.

    Exchange writes ``W. Europe Standard Time``; zoneinfo is more trustworthy than whatever
    VTIMEZONE a client improvised, so it wins whenever the name is known.
    """
    for name in (tzid.strip("/"), WINDOWS_TO_OLSON.get(tzid.strip())):
        if name:
            try:
                return ZoneInfo(name)
            except (ValueError, KeyError, OSError):  # not a zone name (or not a safe path)
                pass
    for component in cal.walk("VTIMEZONE"):
        if str(component.get("TZID", "")).strip() == tzid:
            try:
                return component.to_tz(lookup_tzid=False)
            except Exception:  # noqa: BLE001 - a broken VTIMEZONE: fall back like floating time
                break
    return timezone.utc
