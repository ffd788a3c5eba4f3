"""What the graph and google calendars do alike with whole series, written once.

Offered meetings are sorted against the journal (``GraphState`` or its google extension): new
ones are created; ones whose sequence rose are updated in full, or "lightly" when only skipped or
moved sessions changed (those sessions alone reach the attendees, then the journal's stamp is
written); cancelled ones are cancelled. What the journal does not know (a create in flight at a
crash, a later sequence, a cancellation) is looked up first; a first booking needs no lookup.
Skipped and moved sessions are applied by reading the series' occurrences and changing only
those that differ (idempotent, so a rerun after a crash finishes the work). Each service
supplies the wire: ``find``, ``_create``, ``_update``, ``_stamp`` and ``_cancel`` (each taking
many series at once so it can batch them), and for occurrences ``_instances``, ``_times``,
``_skip_call`` and ``_move_call``; ``http.batch`` sends the calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from dateutil import rrule

from rmdaemon.backends.graph_events import exceptions, shape
from rmdaemon.backends.graph_state import GraphState
from rmdaemon.errors import BackendError
from rmdaemon.model import Meeting

Results = dict[str, Exception | None]
Known = dict[str, dict[str, Any]]
GONE = (404, 410)  # the item is not there (any more): a cancel has nothing left to do
OPEN_ENDED = timedelta(days=2 * 366)  # how far an open-ended series is searched for occurrences


class SeriesWriter:
    state: GraphState

    def publish_many(self, meetings: list[Meeting]) -> Results:
        results: Results = {m.uid: None for m in meetings}
        try:
            known = self._known(meetings)
        except BackendError as exc:
            return {m.uid: exc for m in meetings}
        live = [m for m in meetings if not m.cancelled]
        stale = [m for m in live if m.uid in known and known[m.uid]["sequence"] < m.sequence]
        light = [m for m in stale if known[m.uid].get("shape") == shape(m) and known[m.uid].get("exceptions") != exceptions(m)]
        self.state.applied({}, [m.uid for m in meetings if m.cancelled and m.uid not in known])
        results.update(self._create([m for m in live if m.uid not in known]))
        results.update(self._update([m for m in stale if m not in light], known))
        for meeting in live:  # also finishes what a crash interrupted: applying exceptions is idempotent
            record = self.state.series(meeting.uid)
            if results[meeting.uid] is None and record and (meeting.exdates or meeting.moved or meeting in light):
                results[meeting.uid] = self._occurrences(meeting, record["id"])
        results.update(self._stamp([m for m in light if results[m.uid] is None], known))
        results.update(self._cancel([m for m in meetings if m.uid in known and m.cancelled], known))
        # a series a person deleted meanwhile: forget it, so the next offer looks it up (and books it again)
        self.state.applied({}, [uid for uid, error in results.items() if getattr(error, "status", 0) in GONE])
        return results

    def _known(self, meetings: list[Meeting]) -> Known:
        """uid → journal record of every series that exists: from the journal, else looked up."""
        known: Known = {}
        ask = []
        for m in meetings:
            record = self.state.series(m.uid)
            if record is not None and not self.state.creating(m.uid):
                known[m.uid] = record
            elif record is not None or self.state.creating(m.uid) or m.sequence > 0 or m.cancelled:
                ask.append(m.uid)
        known.update(self.find(ask))
        return known

    def _occurrences(self, meeting: Meeting, event_id: str) -> BackendError | None:
        """Skipped sessions cancelled and moved ones moved (or moved back), whatever was applied before."""
        skipped = {e.astimezone(timezone.utc) for e in meeting.exdates}
        moves = {a.astimezone(timezone.utc): b.astimezone(timezone.utc) for a, b in meeting.moved}
        first, last = span(meeting)
        try:
            calls = []
            for item in self._instances(event_id, first, max([last, *moves.values()]) + timedelta(days=1)):
                original, start, cancelled = self._times(item)
                if original in skipped and not cancelled:
                    calls.append(self._skip_call(item))
                elif original is not None and original not in skipped and not cancelled and start != moves.get(original, original):
                    calls.append(self._move_call(meeting, item, moves.get(original, original)))
            replies = self.http.batch(calls, f"adjusting occurrences of {meeting.uid}") if calls else []
        except BackendError as exc:
            return exc
        failed = [r for r in replies if not r.ok and r.status not in GONE]
        return failed[0].error(f"adjusting occurrences of {meeting.uid}") if failed else None

    # -- the wire, per service --------------------------------------------------------------
    http: Any  # GraphHttp | GoogleHttp: ``batch(calls, what)`` → replies with ``ok``, ``status``, ``error(what)``

    def _instances(self, event_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _times(self, item: dict[str, Any]) -> tuple[datetime | None, datetime | None, bool]:
        """(planned start, actual start, cancelled) of one occurrence the service listed."""
        raise NotImplementedError

    def _skip_call(self, item: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _move_call(self, meeting: Meeting, item: dict[str, Any], target: datetime) -> Any:
        raise NotImplementedError

    def find(self, uids: Iterable[str]) -> Known:
        raise NotImplementedError

    def _create(self, meetings: list[Meeting]) -> Results:
        raise NotImplementedError

    def _update(self, meetings: list[Meeting], known: Known) -> Results:
        raise NotImplementedError

    def _stamp(self, meetings: list[Meeting], known: Known) -> Results:
        raise NotImplementedError

    def _cancel(self, meetings: list[Meeting], known: Known) -> Results:
        raise NotImplementedError


def span(meeting: Meeting) -> tuple[datetime, datetime]:
    """First and last planned start of the series (open-ended ones: two years ahead)."""
    plan = meeting.plan
    rule = rrule.rrulestr(plan.rrule.removeprefix("RRULE:"), dtstart=plan.first_start)
    bounded = "COUNT" in plan.rrule or "UNTIL" in plan.rrule
    last = rule[-1] if bounded else plan.first_start + OPEN_ENDED
    return plan.first_start - timedelta(days=1), last
