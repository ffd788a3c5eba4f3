"""Series on the programme user's Google Calendar: create, update, cancel, and single occurrences
(skip, move, agenda, answers) through the instances Google lists (their ids are opaque).

Round trips are what Google's quotas count, so what the journal knows is not looked up again;
what it does not know is looked up by our own UID (``events.list?iCalUID=``), 50 per batch.
An insert carries our iCalUID, which Google takes only once (409 ``duplicate`` after that), so an
insert repeated after a lost answer or a crash books nothing twice: the 409 is followed by the
lookup. ``sendUpdates=all`` on every change the attendees should hear of, and on nothing else
(the journal's own stamps go with ``sendUpdates=none``), so each person gets exactly one mail
per change: a PATCH that mails people is never repeated after an unknown outcome (a 5xx, a lost
answer); the next attempt first reads what Google has (our sequence, the occurrence's
description, the instances' times) and changes only what is not there yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

from rmdaemon.backends.google_events import (event_body, exceptions, local_time, meet_link, private, record_of, rfc3339,
                                             shape)
from rmdaemon.backends.google_answers import Answers
from rmdaemon.backends.google_http import GoogleHttp
from rmdaemon.backends.google_state import GoogleState
from rmdaemon.backends.http_common import Call, Unsure
from rmdaemon.backends.series_writer import GONE, Known, Results, SeriesWriter
from rmdaemon.errors import BackendError
from rmdaemon.model import Meeting

PARTSTAT = {"needsAction": "NEEDS-ACTION", "accepted": "ACCEPTED", "declined": "DECLINED", "tentative": "TENTATIVE"}


def query(**params: str) -> str:
    return "?" + urlencode(params, quote_via=quote, safe="@")


class Calendar(SeriesWriter):
    def __init__(self, http: GoogleHttp, state: GoogleState, user: str, meet: bool = False,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.http, self.state, self.meet = http, state, meet
        self.events = f"/calendar/v3/calendars/{quote(user, safe='@')}/events"
        self.answers = Answers(http, state, self.events, clock)

    # -- whole series: publish_many and the journal lookups are SeriesWriter's --------------
    def publish_many(self, meetings: list[Meeting]) -> Results:
        self.answers.stale()
        return super().publish_many(meetings)

    def _update(self, meetings: list[Meeting], known: Known) -> Results:
        return self._write(meetings, known, "updating", lambda m: Call(
            "PATCH", f"{self.events}/{known[m.uid]['id']}" + query(sendUpdates="all"), event_body(m, create=False),
            safe_to_repeat=False))

    def _stamp(self, meetings: list[Meeting], known: Known) -> Results:
        """The sequence of a light update, written last and silently: a crash before it is finished by the rerun."""
        return self._write(meetings, known, "recording", lambda m: Call(
            "PATCH", f"{self.events}/{known[m.uid]['id']}" + query(sendUpdates="none"),
            {"extendedProperties": private(m), "sequence": m.sequence}))

    def find(self, uids: Iterable[str]) -> Known:
        """Live series by our UID, 50 lookups per round trip."""
        wanted = list(dict.fromkeys(uids))
        if not wanted:
            return {}
        calls = [Call("GET", self.events + query(iCalUID=uid, showDeleted="false", maxResults="1")) for uid in wanted]
        found: Known = {}
        links: dict[str, str | None] = {}
        for uid, reply in zip(wanted, self.http.batch(calls, "looking up booked series")):
            if not reply.ok:
                raise reply.error(f"looking up series {uid}")
            for item in [i for i in reply.body.get("items", []) if "recurringEventId" not in i][:1]:
                found[uid] = record_of(item)
                links[uid] = meet_link(item)
        self._learn(found, links)
        return found

    def _learn(self, records: Known, links: dict[str, str | None]) -> None:
        self.state.meet_links({uid: link for uid, link in links.items() if link})
        self.state.applied(records)

    def _create(self, meetings: list[Meeting]) -> Results:
        if not meetings:
            return {}
        self.state.start_creates([m.uid for m in meetings])  # a crash from here on: look up before inserting again
        params = {"sendUpdates": "all", **({"conferenceDataVersion": "1"} if self.meet else {})}
        calls = [Call("POST", self.events + query(**params), event_body(m, create=True, meet=self.meet)) for m in meetings]
        try:
            replies = self.http.batch(calls, "booking series")
        except BackendError as exc:
            return {m.uid: exc for m in meetings}
        results: Results = {}
        done, twice, links = {}, [], {}
        for meeting, reply in zip(meetings, replies):
            if reply.ok:
                done[meeting.uid] = record_of(reply.body)
                links[meeting.uid] = meet_link(reply.body)
            elif reply.status == 409:  # booked by an attempt whose answer was lost
                twice.append(meeting.uid)
            results[meeting.uid] = None if reply.ok or reply.status == 409 else reply.error(f"booking {meeting.uid}")
        self._learn(done, links)
        if twice:
            try:
                found = self.find(twice)
            except BackendError as exc:
                return results | {uid: exc for uid in twice}
            results |= {uid: BackendError(f"booking {uid}: Google holds a deleted event with this UID", permanent=True)
                        for uid in twice if uid not in found}
        return results

    def _write(self, meetings: list[Meeting], known: Known, verb: str, build: Callable[[Meeting], Call]) -> Results:
        """One PATCH per series (a full update, or the journal's stamp after a light one). A PATCH
        that mails attendees is not repeated blindly: after an unknown outcome the series is
        forgotten by the journal, so the next offer reads our sequence from Google first."""
        if not meetings:
            return {}
        try:
            replies = self.http.batch([build(m) for m in meetings], f"{verb} series")
        except Unsure as exc:
            self.state.applied({}, [m.uid for m in meetings])
            return {m.uid: exc for m in meetings}
        except BackendError as exc:
            return {m.uid: exc for m in meetings}
        done = {m.uid: dict(known[m.uid], sequence=m.sequence, shape=shape(m), exceptions=exceptions(m))
                for m, r in zip(meetings, replies) if r.ok}
        self.state.applied(done, [m.uid for m, r in zip(meetings, replies) if r.status >= 500])
        return {m.uid: None if r.ok else r.error(f"{verb} {m.uid}") for m, r in zip(meetings, replies)}

    def _cancel(self, meetings: list[Meeting], known: Known) -> Results:
        if not meetings:
            return {}
        calls = [Call("DELETE", f"{self.events}/{known[m.uid]['id']}" + query(sendUpdates="all")) for m in meetings]
        try:
            replies = self.http.batch(calls, "cancelling series")
        except BackendError as exc:
            return {m.uid: exc for m in meetings}
        gone = [m.uid for m, r in zip(meetings, replies) if r.ok or r.status in GONE]
        self.state.applied({}, gone)
        return {m.uid: None if m.uid in gone else r.error(f"cancelling {m.uid}") for m, r in zip(meetings, replies)}

    # -- single occurrences -----------------------------------------------------------------
    def record(self, meeting: Meeting) -> dict[str, Any] | None:
        return self.state.series(meeting.uid) or self.find([meeting.uid]).get(meeting.uid)

    def cancel_occurrence(self, meeting: Meeting, start: datetime) -> None:
        record = self.record(meeting)
        if record is None:
            return  # never booked, or the whole series is gone: nothing to cancel
        what = f"cancelling an occurrence of {meeting.uid}"
        (item,) = self._sessions([(record["id"], start)], what)
        if item is None or item.get("status") == "cancelled":
            return  # cancelled already, or the series was deleted
        self.answers.stale()
        reply = self.http.call(Call("DELETE", f"{self.events}/{item['id']}" + query(sendUpdates="all")), what)
        if not reply.ok and reply.status not in GONE:  # gone: cancelled already (or the series was deleted)
            raise reply.error(f"cancelling the occurrence {start:%Y-%m-%d %H:%M} of {meeting.uid}")

    def occurrence_answers(self, meeting: Meeting, start: datetime) -> dict[str, str] | None:
        """Each attendee's ``responseStatus`` for that session, as PARTSTAT words; a cancelled
        session has everybody declined; None when the series is not there. Read from the
        calendar's changes (``Answers``): one request for every question asked in a tick."""
        record = self.record(meeting)
        if record is None:
            return None
        found = self.answers.of(record["id"], start)
        if found is None:
            return None
        if found.get("status") == "cancelled":
            return {p.address: "DECLINED" for p in meeting.attendees}
        return {address: PARTSTAT.get(status, "NEEDS-ACTION") for address, status in found["attendees"].items()}

    def annotate_many(self, notes: list[tuple[Meeting, datetime, str]]) -> dict[tuple[str, datetime], BackendError | None]:
        """Each agenda into its occurrence's description (attendees get the updated session),
        once: written notes are in the journal; one a crash may have written is read first."""
        outcomes: dict[tuple[str, datetime], BackendError | None] = {}
        try:
            records = {m.uid: r for m in {n[0].uid: n[0] for n in notes}.values() if (r := self.record(m)) is not None}
        except BackendError as exc:
            return {(m.uid, s): exc for m, s, _ in notes}
        ask = []
        for meeting, start, text in [(m, s, self._with_meet(m.uid, t)) for m, s, t in notes]:
            if meeting.uid not in records:
                outcomes[(meeting.uid, start)] = BackendError(f"series {meeting.uid} is not booked in Google Calendar")
            elif self.state.noted(meeting.uid, start, text):
                outcomes[(meeting.uid, start)] = None
            else:
                ask.append((meeting, start, text))
        try:  # each session's instance (its id is Google's to make); a crash may have written it already
            found = self._sessions([(records[m.uid]["id"], s) for m, s, _ in ask], "finding the sessions of agendas")
        except BackendError as exc:
            return outcomes | {(m.uid, s): exc for m, s, _ in ask}
        todo = []
        for (meeting, start, text), item in zip(ask, found):
            if item is None or item.get("status") == "cancelled":
                outcomes[(meeting.uid, start)] = BackendError(f"no session of {meeting.uid} at {start:%Y-%m-%d %H:%M} "
                                                              "in Google Calendar")
            elif self.state.noting(meeting.uid, start) and item.get("description") == text:
                self.state.notes_done([(meeting.uid, start, text)])
                outcomes[(meeting.uid, start)] = None
            else:
                todo.append((meeting, start, text, str(item["id"])))
        return outcomes | self._annotate(todo)

    def join_url(self, uid: str) -> str | None:
        """The Google Meet link Google gave the series (``conferenceData``), as read when it was
        booked or looked up; the agenda e-mails carry it. Google makes the link asynchronously
        (an insert may answer with its createRequest ``pending``), so a booked series without
        one is looked up once more."""
        if self.state.meet(uid) is None and self.meet and self.state.series(uid) is not None:
            self.find([uid])
        return self.state.meet(uid)

    def _with_meet(self, uid: str, text: str) -> str:
        """The agenda, with the series' Google Meet link when it has one (the calendar entry is
        where people click to join)."""
        link = self.join_url(uid)
        return f"{text.rstrip()}\n\nJoin with Google Meet: {link}\n" if link and link not in text else text

    def _sessions(self, wanted: list[tuple[str, datetime]], what: str) -> list[dict[str, Any] | None]:
        """The instance of each (series id, planned start), or None where the series is gone.
        Asked with ``instances?originalStart=``, never built from the ids: Google's instance ids
        are opaque (their format changed in 2026), 50 lookups per round trip."""
        if not wanted:
            return []
        calls = [Call("GET", f"{self.events}/{series}/instances" + query(originalStart=rfc3339(start), showDeleted="true"))
                 for series, start in wanted]
        found: list[dict[str, Any] | None] = []
        for reply in self.http.batch(calls, what):
            if reply.status in GONE:
                found.append(None)
            elif not reply.ok:
                raise reply.error(what)
            else:
                found.append((reply.body.get("items") or [None])[0])
        return found

    def _annotate(self, todo: list[tuple[Meeting, datetime, str, str]]) -> dict[tuple[str, datetime], BackendError | None]:
        """PATCH each session (by the instance id Google gave it) with its agenda, 50 per batch."""
        if not todo:
            return {}
        self.state.start_notes([(m.uid, s) for m, s, _, _ in todo])
        calls = [Call("PATCH", f"{self.events}/{ident}" + query(sendUpdates="all"), {"description": text}, safe_to_repeat=False)
                 for _, _, text, ident in todo]
        try:
            replies = self.http.batch(calls, "writing agendas into sessions")
        except BackendError as exc:
            return {(m.uid, s): exc for m, s, _, _ in todo}
        self.state.notes_done([(m.uid, s, t) for (m, s, t, _), r in zip(todo, replies) if r.ok])
        return {(m.uid, s): None if r.ok else r.error(f"writing the agenda of {m.uid} at {s:%Y-%m-%d %H:%M}")
                for (m, s, _, _), r in zip(todo, replies)}

    def _times(self, item: dict[str, Any]) -> tuple[datetime | None, datetime | None, bool]:
        return _when(item.get("originalStartTime")), _when(item.get("start")), item.get("status") == "cancelled"

    def _skip_call(self, item: dict[str, Any]) -> Call:
        return Call("DELETE", f"{self.events}/{item['id']}" + query(sendUpdates="all"))

    def _move_call(self, meeting: Meeting, item: dict[str, Any], target: datetime) -> Call:
        return Call("PATCH", f"{self.events}/{item['id']}" + query(sendUpdates="all"), _moved(meeting, target),
                    safe_to_repeat=False)

    def _instances(self, event_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        path = f"{self.events}/{event_id}/instances" + query(timeMin=rfc3339(start), timeMax=rfc3339(end),
                                                             showDeleted="true", maxResults="2500")
        found: list[dict[str, Any]] = []
        while True:
            reply = self.http.call(Call("GET", path), "reading occurrences")
            if not reply.ok:
                raise reply.error("reading occurrences")
            found += reply.body.get("items", [])
            token = reply.body.get("nextPageToken")
            if not token:
                return found
            path = f"{self.events}/{event_id}/instances" + query(timeMin=rfc3339(start), timeMax=rfc3339(end),
                                                                 showDeleted="true", pageToken=token)


def _moved(meeting: Meeting, new_start: datetime) -> dict[str, Any]:
    end = new_start + timedelta(minutes=meeting.plan.duration_minutes)
    return {"start": local_time(new_start, meeting.plan.tzid), "end": local_time(end, meeting.plan.tzid)}


def _when(value: Any) -> datetime | None:
    if not isinstance(value, dict) or "dateTime" not in value:
        return None
    moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        from zoneinfo import ZoneInfo

        moment = moment.replace(tzinfo=ZoneInfo(str(value.get("timeZone") or "UTC")))
    return moment.astimezone(timezone.utc)

