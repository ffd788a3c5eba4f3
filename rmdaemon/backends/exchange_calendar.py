"""The programme's series in the organiser's calendar: book, update and cancel them, and keep their
exceptions (skipped sessions deleted, moved sessions at their new time) — each step for a whole
batch of series in one request per 100 items.

Three named properties of our own ride on every series: its uid (found again before creating, so
a crash between "booked" and "recorded" never books twice), a digest of what the series looks like
(so a SKIP or a move does not re-send the whole series), and — written last, once everything
else is done — the sequence and the exceptions applied. A crash anywhere leaves the sequence
behind, and the rerun finishes the work instead of skipping it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from exchangelib import Attendee, Body, CalendarItem, EWSDateTime, EWSTimeZone, HTMLBody, Mailbox, Message
from exchangelib import errors as ews_errors
from exchangelib.extended_properties import ExtendedProperty
from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY, SEND_TO_NONE
from exchangelib.properties import OccurrenceItemId

from rmdaemon.backends.exchange_connect import TRANSIENT, translate
from rmdaemon.backends.exchange_recurrence import instance_index, to_recurrence
from rmdaemon.errors import BackendError
from rmdaemon.model import Meeting

PROPERTY_SET = "6f0b1f8e-3c56-4a3e-9d3a-7a2c5e1b9d40"  # rmdaemon's own named-property namespace
LOOKUP_CHUNK = 100  # uids per FindItem restriction (one OR of IsEqualTo)
UNFINISHED = -1  # rm_sequence of a series created but whose exceptions are not applied yet
SERIES_FIELDS = ["subject", "body", "location", "start", "end", "required_attendees", "recurrence", "categories", "rm_shape"]
Outcomes = dict[str, Exception | None]
Notes = dict[tuple[str, datetime], Exception | None]  # by (uid, planned start)


class RmKey(ExtendedProperty):
    """The pair/series uid on calendar items, the idempotency key on messages."""

    property_set_id = PROPERTY_SET
    property_name = "rmdaemon-key"
    property_type = "String"


class RmSequence(ExtendedProperty):
    """The Meeting.sequence last applied to a calendar item, in full (exceptions included)."""

    property_set_id = PROPERTY_SET
    property_name = "rmdaemon-sequence"
    property_type = "Integer"


class RmShape(ExtendedProperty):
    """A digest of the series-level fields (plan, people, text): unchanged means only exceptions changed."""

    property_set_id = PROPERTY_SET
    property_name = "rmdaemon-shape"
    property_type = "String"


class RmExceptions(ExtendedProperty):
    """JSON of the skipped and moved sessions already applied, so only new ones cost requests."""

    property_set_id = PROPERTY_SET
    property_name = "rmdaemon-exceptions"
    property_type = "String"


PROPERTIES = {"rm_key": RmKey, "rm_sequence": RmSequence, "rm_shape": RmShape, "rm_exceptions": RmExceptions}


def register_properties() -> None:
    """Teach exchangelib our properties (a class-level registry, so done once, on first use)."""
    for cls in (CalendarItem, Message):
        for name, prop in PROPERTIES.items():
            if name not in {f.name for f in cls.FIELDS}:
                cls.register(name, prop)


@dataclass
class Pending:
    """A series whose exceptions still have to be applied, then stamped with its sequence."""

    meeting: Meeting
    item_id: str
    changekey: str | None
    applied: dict | None  # exceptions known to be on the calendar already; None: unknown, apply all


class SeriesCalendar:
    """The calendar half of the Exchange backend, on the programme mailbox's calendar."""

    def __init__(self, account) -> None:  # type: ignore[no-untyped-def]  # exchangelib has no stubs
        self.account = account
        # (uid, start) of sessions this instance saw deleted and recorded: the job's follow-up
        # cancel_occurrence for a SKIP it just published then costs no request.
        self._skipped: set[tuple[str, str]] = set()

    # -- publish ----------------------------------------------------------------------------
    def publish_many(self, meetings: list[Meeting]) -> Outcomes:
        """Book, update or cancel many series in few requests; one failure stays with its uid."""
        results: Outcomes = {m.uid: None for m in meetings}
        try:
            existing = self.find_series([m.uid for m in meetings])
        except BackendError as exc:
            return {m.uid: exc for m in meetings}
        new = [m for m in meetings if m.uid not in existing and not m.cancelled]
        stale = [m for m in meetings if m.uid in existing and not m.cancelled and _sequence(existing[m.uid]) < m.sequence]
        light = [m for m in stale if _only_exceptions_changed(m, existing[m.uid])]
        reshaped = [m for m in stale if m not in light]
        pending = [Pending(m, existing[m.uid].id, existing[m.uid].changekey, _applied(existing[m.uid])) for m in light]
        results.update(self._create(new, pending))
        results.update(self._update(reshaped, existing, pending))
        results.update(self._exceptions([p for p in pending if results[p.meeting.uid] is None]))
        results.update(self._stamp([p for p in pending if results[p.meeting.uid] is None]))
        self._skipped |= {(p.meeting.uid, key) for p in pending if results[p.meeting.uid] is None
                          for key in exceptions_of(p.meeting)["exdates"]}  # fmt: skip
        results.update(self._cancel([m for m in meetings if m.uid in existing and m.cancelled], existing))
        return results

    def find_series(self, uids: Iterable[str], *also: str) -> dict[str, CalendarItem]:
        """The booked series by uid, with our properties (and the fields in ``also``); one FindItem
        (and the GetItem exchangelib reads named properties with) per 100 uids."""
        found: dict[str, CalendarItem] = {}
        wanted = list(dict.fromkeys(uids))
        try:
            for start in range(0, len(wanted), LOOKUP_CHUNK):
                chunk = wanted[start : start + LOOKUP_CHUNK]
                query = self.account.calendar.filter(rm_key__in=chunk).only(*PROPERTIES, *also)
                found.update({item.rm_key: item for item in query})
        except Exception as exc:
            raise translate(exc, "looking up booked series") from exc
        return found

    def _create(self, meetings: list[Meeting], pending: list[Pending]) -> Outcomes:
        """New series in one CreateItem per 100, with invitations. A series with skipped or moved
        sessions is marked unfinished until they are applied too."""
        results: Outcomes = {}
        items = []
        for meeting in meetings:
            try:
                items.append((meeting, self._item(meeting, rm_sequence=UNFINISHED if _has_exceptions(meeting) else meeting.sequence,
                                                  rm_exceptions=json.dumps(_NONE))))  # fmt: skip
            except BackendError as exc:
                results[meeting.uid] = exc
        if not items:
            return results
        try:
            created = self.account.bulk_create(
                folder=self.account.calendar, items=[i for _, i in items], send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY
            )
        except Exception as exc:
            error = translate(exc, "booking series")
            return results | {m.uid: error for m, _ in items}
        for (meeting, _), outcome in zip(items, created):
            if isinstance(outcome, Exception):
                results[meeting.uid] = translate(outcome, f"booking {meeting.uid}")
                continue
            results[meeting.uid] = None
            if _has_exceptions(meeting):
                pending.append(Pending(meeting, outcome.id, outcome.changekey, dict(_NONE)))
        return results

    def _item(self, meeting: Meeting, **extra: object) -> CalendarItem:
        plan = meeting.plan
        start = ews_time(plan.first_start, plan.tzid)
        return CalendarItem(
            account=self.account,
            folder=self.account.calendar,
            subject=meeting.summary,
            body=_body(meeting),
            location=meeting.location or None,
            start=start,
            end=start + timedelta(minutes=plan.duration_minutes),
            required_attendees=[
                Attendee(mailbox=Mailbox(email_address=p.email, name=p.name), response_type="Unknown") for p in meeting.attendees
            ],
            recurrence=to_recurrence(plan),
            legacy_free_busy_status="Busy",
            sensitivity="Private",
            categories=list(meeting.categories),
            reminder_is_set=True,
            reminder_minutes_before_start=15,
            uid=meeting.uid,
            rm_key=meeting.uid,
            rm_shape=shape(meeting),
            **extra,
        )

    def _update(self, meetings: list[Meeting], existing: dict[str, CalendarItem], pending: list[Pending]) -> Outcomes:
        """Changed series: the series-level fields, re-sent to the attendees. Whether Exchange kept
        the old exceptions depends on whether the pattern changed, so they are applied again."""
        results: Outcomes = {}
        changes = []
        for meeting in meetings:
            old = existing[meeting.uid]
            try:
                item = self._item(meeting, id=old.id, changekey=old.changekey, rm_sequence=meeting.sequence,
                                  rm_exceptions=json.dumps(_NONE))  # fmt: skip
            except BackendError as exc:
                results[meeting.uid] = exc
                continue
            done = [] if _has_exceptions(meeting) else ["rm_sequence", "rm_exceptions"]
            changes.append((meeting, item, SERIES_FIELDS + done))
        try:
            updated = list(self.account.bulk_update(
                items=[(item, fields) for _, item, fields in changes],
                send_meeting_invitations_or_cancellations=SEND_TO_ALL_AND_SAVE_COPY,
            )) if changes else []  # fmt: skip
        except Exception as exc:
            error = translate(exc, "updating series")
            return results | {m.uid: error for m, _, _ in changes}
        for (meeting, item, _), outcome in zip(changes, updated):
            if isinstance(outcome, Exception):
                results[meeting.uid] = translate(outcome, f"updating {meeting.uid}")
                continue
            results[meeting.uid] = None
            if _has_exceptions(meeting):
                pending.append(Pending(meeting, item.id, outcome[1], None))
        return results

    def _cancel(self, meetings: list[Meeting], existing: dict[str, CalendarItem]) -> Outcomes:
        items = [existing[m.uid] for m in meetings]
        call = lambda ids: self.account.bulk_delete(  # noqa: E731
            ids=ids, send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY, delete_type="MoveToDeletedItems")
        return self._bulk(call, [(m.uid, i) for m, i in zip(meetings, items)], "cancelling")

    # -- exceptions -------------------------------------------------------------------------
    def _exceptions(self, pending: list[Pending]) -> Outcomes:
        """Delete the newly skipped sessions and move the newly moved ones, all series at once:
        one DeleteItem and one UpdateItem per 100, each sending the attendees that one change."""
        deletes = [(p.meeting.uid, o) for p in pending for o in self._deletions(p)]
        moves = self._not_there_yet([(p.meeting.uid, o) for p in pending for o in self._movements(p)])
        results = self._bulk(self._delete_call, deletes, "cancelling a session of")
        return results | self._bulk(self._move_call, moves, "moving a session of")

    def _deletions(self, p: Pending) -> list[CalendarItem]:
        """The occurrences to delete: skipped sessions not yet recorded as deleted (all, if unknown)."""
        known = set(p.applied["exdates"]) if p.applied is not None else set()
        wanted = sorted(set(exceptions_of(p.meeting)["exdates"]) - known)
        return [o for o in (self._occurrence(p, datetime.fromisoformat(k)) for k in wanted) if o is not None]

    def _movements(self, p: Pending) -> list[CalendarItem]:
        """The occurrences to change: new or changed moves, and dropped ones back to their planned time."""
        wanted = dict(exceptions_of(p.meeting)["moved"])
        done = dict(p.applied["moved"]) if p.applied is not None else {}
        skipped = set(exceptions_of(p.meeting)["exdates"])
        changes = []
        for planned in sorted((set(wanted) | set(done)) - skipped):
            target = wanted.get(planned, planned)
            occurrence = self._occurrence(p, datetime.fromisoformat(planned)) if done.get(planned, planned) != target else None
            if occurrence is not None:
                changes.append(self._moved(occurrence, p.meeting, datetime.fromisoformat(target)))
        return changes

    def _not_there_yet(self, moves: list[tuple[str, CalendarItem]]) -> list[tuple[str, CalendarItem]]:
        """The moves whose session is not at its new time already. A crash or a failed stamp after
        a move and before its record makes the rerun ask again, and every move is sent to the
        attendees: without this look they got the same change twice (found by bench/chaos.py).
        One GetItem for all of them; when it fails, move (at worst once more)."""
        if not moves:
            return moves
        try:
            found = list(self.account.fetch(ids=[o for _, o in moves], only_fields=["start"]))
        except Exception:  # noqa: BLE001 — cannot tell: better a repeat than a lost move
            return moves
        return [(uid, o) for (uid, o), now in zip(moves, found)
                if isinstance(now, Exception) or now.start is None or plain(now.start) != plain(o.start)]

    def _occurrence(self, p: Pending, start: datetime) -> CalendarItem | None:
        index = instance_index(p.meeting.plan, start)
        if index is None:
            return None
        occurrence_id = OccurrenceItemId(id=p.item_id, changekey=p.changekey, instance_index=index)
        return CalendarItem(account=self.account, folder=self.account.calendar, _id=occurrence_id)

    def _moved(self, occurrence: CalendarItem, meeting: Meeting, start: datetime) -> CalendarItem:
        occurrence.start = ews_time(start, meeting.plan.tzid)
        occurrence.end = occurrence.start + timedelta(minutes=meeting.plan.duration_minutes)
        return occurrence

    def _delete_call(self, items: list[CalendarItem]) -> list:  # type: ignore[type-arg]
        return list(self.account.bulk_delete(ids=items, send_meeting_cancellations=SEND_TO_ALL_AND_SAVE_COPY))

    def _move_call(self, items: list[CalendarItem]) -> list:  # type: ignore[type-arg]
        return list(self.account.bulk_update(items=[(i, ["start", "end"]) for i in items],
                                             send_meeting_invitations_or_cancellations=SEND_TO_ALL_AND_SAVE_COPY))  # fmt: skip

    def _stamp(self, pending: list[Pending]) -> Outcomes:
        """Last step: record on each series the sequence and exceptions now applied (no mail)."""
        stamps = []
        for p in pending:
            item = CalendarItem(account=self.account, folder=self.account.calendar, id=p.item_id, changekey=None,
                                rm_sequence=p.meeting.sequence, rm_exceptions=json.dumps(exceptions_of(p.meeting)))  # fmt: skip
            stamps.append((p.meeting.uid, item))
        call = lambda items: list(self.account.bulk_update(  # noqa: E731
            items=[(i, ["rm_sequence", "rm_exceptions"]) for i in items], send_meeting_invitations_or_cancellations=SEND_TO_NONE))
        return self._bulk(call, stamps, "recording")

    def cancel_occurrence(self, meeting: Meeting, start: datetime) -> None:
        if (meeting.uid, _key(start)) in self._skipped:
            return
        master = self.find_series([meeting.uid]).get(meeting.uid)
        if master is None:
            return  # never booked, or the whole series is gone: nothing to cancel
        occurrence = self._occurrence(Pending(meeting, master.id, master.changekey, None), start)
        error = self._bulk(self._delete_call, [(meeting.uid, occurrence)] if occurrence else [], "cancelling a session of")
        if error:
            raise error[meeting.uid]  # type: ignore[misc]

    # -- one session, as the calendar shows it ----------------------------------------------
    def occurrence_answers(self, meeting: Meeting, start: datetime) -> dict[str, str] | None:
        """Each attendee's answer for the session planned at ``start``, as the organiser's calendar
        tracks it (PARTSTAT words: ACCEPTED, DECLINED, TENTATIVE, NEEDS-ACTION; an answer to that
        session alone wins over the series answer). A session deleted or cancelled on the calendar
        answers DECLINED for everyone: nobody is going. None when the series is not there."""
        master = self.find_series([meeting.uid]).get(meeting.uid)
        occurrence = self._occurrence(Pending(meeting, master.id, None, None), start) if master is not None else None
        if occurrence is None:
            return None
        try:
            (found,) = self.account.fetch(ids=[occurrence], only_fields=["required_attendees", "is_cancelled"])
        except ALREADY_GONE:
            found = None
        except Exception as exc:
            raise translate(exc, f"reading a session of {meeting.uid}") from exc
        if isinstance(found, Exception) and not isinstance(found, ALREADY_GONE):
            raise translate(found, f"reading a session of {meeting.uid}")
        if found is None or isinstance(found, Exception) or found.is_cancelled:
            return {p.address: "DECLINED" for p in meeting.attendees}
        return {a.mailbox.email_address.casefold(): PARTSTAT.get(a.response_type, "NEEDS-ACTION")
                for a in found.required_attendees or []}  # fmt: skip

    def annotate_many(self, notes: list[tuple[Meeting, datetime, str]]) -> Notes:
        """Write each text (an agenda) into the body of the session planned at its start, and send
        the attendees that update, so their own calendar entries show it: per 100 notes one
        FindItem (and the GetItem exchangelib reads our properties with) for the series, one
        GetItem for the sessions' bodies — a rerun after a crash writes nothing twice — and one
        UpdateItem. The outcome by (uid, start): None when written, already there, or the session
        was deleted from the calendar; else a BackendError for that note alone."""
        texts = {(m.uid, start): (m, text) for m, start, text in notes}
        try:
            masters = self.find_series((uid for uid, _ in texts), "deleted_occurrences")
        except BackendError as exc:
            return {key: exc for key in texts}
        results: Notes = {key: None for key in texts}
        work: list[tuple[str, CalendarItem]] = []
        names: dict[str, tuple[str, datetime]] = {}
        for (uid, start), (meeting, text) in texts.items():
            master = masters.get(uid)
            if master is None:
                results[(uid, start)] = BackendError(f"writing the agenda into {uid}: the series is not in the "
                                                     "organiser's calendar (deleted there?)", permanent=True)
                continue
            occurrence = self._occurrence(Pending(meeting, master.id, None, None), start)
            if occurrence is not None and not _deleted(master, start):  # asking for it, exchangelib would raise
                occurrence.body = Body(text)
                names[f"{uid} at {_key(start)}"] = (uid, start)
                work.append((f"{uid} at {_key(start)}", occurrence))
        for first in range(0, len(work), LOOKUP_CHUNK):  # one request per call: a failure loses no other outcome
            chunk = self._unwritten(work[first : first + LOOKUP_CHUNK])
            errors = self._bulk(self._body_call, chunk, "writing the agenda into the session of")
            results.update({names[name]: error for name, error in errors.items()})
        return results

    def _unwritten(self, work: list[tuple[str, CalendarItem]]) -> list[tuple[str, CalendarItem]]:
        """The sessions whose body is not their text already, nor deleted (one GetItem; when it
        fails, all of them: better an update sent twice than an agenda missing)."""
        if not work:
            return work
        try:
            found = list(self.account.fetch(ids=[o for _, o in work], only_fields=["body"]))
        except Exception:  # noqa: BLE001 — cannot tell: write them
            return work
        return [(name, o) for (name, o), now in zip(work, found)
                if not isinstance(now, ALREADY_GONE) and (isinstance(now, Exception) or _words(now.body) != _words(o.body))]

    def _body_call(self, items: list[CalendarItem]) -> list:  # type: ignore[type-arg]
        return list(self.account.bulk_update(items=[(i, ["body"]) for i in items], chunk_size=LOOKUP_CHUNK,
                                             send_meeting_invitations_or_cancellations=SEND_TO_ALL_AND_SAVE_COPY))  # fmt: skip

    # -- plumbing ---------------------------------------------------------------------------
    def _bulk(self, call: Callable[[list], list], work: list[tuple[str, object]], what: str) -> dict[str, BackendError]:  # type: ignore[type-arg]
        """``call`` over every item in one go, each failure kept with its series. exchangelib raises a
        few per-item errors even in bulk; then item by item, so one series never fails the others.
        An occurrence already deleted counts as done."""
        if not work:
            return {}
        try:
            outcomes = call([item for _, item in work])
        except Exception as exc:
            if isinstance(exc, TRANSIENT) or len(work) == 1:
                outcomes = [exc] * len(work)
            else:
                outcomes = [_one(call, item) for _, item in work]
        errors: dict[str, BackendError] = {}
        for (uid, _), outcome in zip(work, outcomes):
            if isinstance(outcome, Exception) and not isinstance(outcome, ALREADY_GONE) and uid not in errors:
                errors[uid] = translate(outcome, f"{what} {uid}")
        return errors


ALREADY_GONE = (ews_errors.ErrorCalendarOccurrenceIsDeletedFromRecurrence, ews_errors.ErrorItemNotFound)
_NONE = {"exdates": [], "moved": []}
PARTSTAT = {"Accept": "ACCEPTED", "Decline": "DECLINED", "Tentative": "TENTATIVE", "Unknown": "NEEDS-ACTION",
            "NoResponseReceived": "NEEDS-ACTION"}  # fmt: skip


def _deleted(master: CalendarItem, start: datetime) -> bool:
    """Whether the session planned at ``start`` was deleted from the series. Exchange answers a
    request for it with an error for that item alone, but exchangelib raises it, losing the rest."""
    return any(plain(d.start) == start for d in master.deleted_occurrences or [] if d.start is not None)


def _words(body: object) -> str:
    return " ".join(str(body or "").split())


def _one(call: Callable[[list], list], item: object) -> object:  # type: ignore[type-arg]
    try:
        return call([item])[0]
    except Exception as exc:  # the per-item outcome, as bulk calls report it
        return exc


def shape(meeting: Meeting) -> str:
    """What the series looks like apart from its exceptions; a change here re-sends the series."""
    plan = meeting.plan
    parts = [plan.tzid, plan.first_start.isoformat(), plan.duration_minutes, plan.rrule, meeting.summary,
             [(p.email.casefold(), p.name) for p in meeting.attendees], meeting.body_text, meeting.body_html,
             meeting.description, list(meeting.categories)]  # fmt: skip
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def exceptions_of(meeting: Meeting) -> dict:
    """The skipped and moved sessions a series should carry, as stored in RmExceptions."""
    skipped = sorted(_key(s) for s in meeting.exdates)
    return {"exdates": skipped, "moved": sorted([a, b] for a, b in _moves(meeting) if a not in skipped)}


def _only_exceptions_changed(meeting: Meeting, item: CalendarItem) -> bool:
    """A raised sequence that only skips or moves sessions reaches the attendees as those changes
    alone; any other raise (or an item without our record) re-sends the whole series."""
    applied = _applied(item)
    if item.rm_shape != shape(meeting) or applied is None:
        return False
    wanted = exceptions_of(meeting)
    return (wanted["exdates"], [tuple(m) for m in wanted["moved"]]) != (sorted(applied["exdates"]), sorted(applied["moved"]))


def _has_exceptions(meeting: Meeting) -> bool:
    return bool(meeting.exdates or meeting.moved)


def _moves(meeting: Meeting) -> list[tuple[str, str]]:
    return [(_key(a), _key(b)) for a, b in meeting.moved]


def _key(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _applied(item: CalendarItem) -> dict | None:
    """The exceptions a series carries by our own record; None for one that has no record."""
    if not item.rm_exceptions:
        return None
    try:
        data = json.loads(item.rm_exceptions)
        return {"exdates": list(data["exdates"]), "moved": [tuple(m) for m in data["moved"]]}
    except (ValueError, KeyError, TypeError):
        return None  # someone edited it: apply everything again, which is harmless


def _sequence(item: CalendarItem) -> int:
    return int(item.rm_sequence if item.rm_sequence is not None else 0)


def ews_time(moment: datetime, zone: str) -> EWSDateTime:
    """An aware datetime as exchangelib's own type, in ``zone`` (it rejects plain datetimes)."""
    return EWSDateTime.from_datetime(plain(moment)).astimezone(EWSTimeZone(zone))


def plain(moment: datetime) -> datetime:
    """exchangelib's EWSDateTime → a plain aware UTC datetime for the rest of the code."""
    return datetime.fromtimestamp(moment.timestamp(), timezone.utc)


def _body(meeting: Meeting) -> HTMLBody | Body:
    """The item body a person sees when opening the meeting: the rendered note, else the description."""
    if meeting.body_html:
        return HTMLBody(meeting.body_html)
    return Body(meeting.body_text or meeting.description)
