"""Series on the programme mailbox's calendar through Graph: create, PATCH, cancel, occurrences.

Round trips are what Exchange Online throttles, so: what the journal (``GraphState``) knows is not
looked up again; what it does not know is looked up by our extended property, 20 uids per
``$batch``; creates, updates and cancellations go 20 per ``$batch`` too. A create carries a
``transactionId`` derived from the uid, so repeating it after a lost answer returns the event
Graph already made instead of a second one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode


from rmdaemon.backends.graph_events import (EXCEPTIONS, EXPAND, SEQUENCE, SHAPE, event_body, exceptions, extended,
                                            key_filter, local_time, parse_time, shape)
from rmdaemon.backends.graph_http import Call, GraphError, GraphHttp
from rmdaemon.backends.graph_state import GraphState
from rmdaemon.backends.series_writer import GONE, Results, SeriesWriter
from rmdaemon.errors import BackendError
from rmdaemon.model import Meeting



def query(**params: str) -> str:
    """An OData query string, percent-encoded the way Graph (and $batch) expects."""
    return "?" + urlencode(params, quote_via=quote, safe="$',()/:@")


class Calendar(SeriesWriter):
    def __init__(self, http: GraphHttp, state: GraphState, mailbox: str, online: bool = False) -> None:
        self.http, self.state, self.online = http, state, online
        self.base = f"/users/{quote(mailbox, safe='@')}"

    # -- whole series: publish_many and the journal lookups are SeriesWriter's --------------
    def find(self, uids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Series carrying our key property, by uid; 20 lookups per round trip."""
        wanted = list(dict.fromkeys(uids))
        if not wanted:
            return {}
        calls = [Call("GET", f"{self.base}/events" + query(**{"$filter": key_filter(uid), "$select": "id,subject,onlineMeeting",
                                                               "$expand": EXPAND})) for uid in wanted]
        found: dict[str, dict[str, Any]] = {}
        for uid, reply in zip(wanted, self.http.batch(calls, "looking up booked series")):
            if not reply.ok:
                raise reply.error(f"looking up series {uid}")
            for item in reply.body.get("value", [])[:1]:
                found[uid] = {"id": item["id"], "sequence": int(extended(item, SEQUENCE) or 0), "shape": extended(item, SHAPE),
                              "exceptions": extended(item, EXCEPTIONS),
                              "join_url": (item.get("onlineMeeting") or {}).get("joinUrl")}
        self.state.applied(found)
        return found

    def _create(self, meetings: list[Meeting]) -> Results:
        calls, results = self._calls(meetings, lambda m: Call("POST", f"{self.base}/events", event_body(m, create=True, online=self.online)))
        ready = [m for m in meetings if m.uid not in results]
        if not ready:
            return results
        self.state.start_creates([m.uid for m in ready])  # a crash from here on: look up before creating again
        return results | self._run(ready, calls, "booking")

    def _update(self, meetings: list[Meeting], known: dict[str, dict[str, Any]]) -> Results:
        calls, results = self._calls(
            meetings, lambda m: Call("PATCH", f"{self.base}/events/{known[m.uid]['id']}", event_body(m, create=False, online=self.online)))
        ready = [m for m in meetings if m.uid not in results]
        outcome = self._run(ready, calls, "updating") if ready else {}
        vanished = [m for m in ready if getattr(outcome.get(m.uid), "status", 0) in GONE]
        if vanished:  # deleted from the calendar by a person: book it again
            self.state.applied({}, [m.uid for m in vanished])
            outcome |= self._create(vanished)
        return results | outcome

    def _stamp(self, meetings: list[Meeting], known: dict[str, dict[str, Any]]) -> Results:
        """The sequence of a light update, written last: a crash before it is finished by the rerun."""
        calls = [Call("PATCH", f"{self.base}/events/{known[m.uid]['id']}", {"singleValueExtendedProperties": [
            {"id": EXCEPTIONS, "value": exceptions(m)}, {"id": SEQUENCE, "value": str(m.sequence)}]}) for m in meetings]
        if not calls:
            return {}
        try:
            replies = self.http.batch(calls, "recording series")
        except BackendError as exc:
            return {m.uid: exc for m in meetings}
        done = {m.uid: dict(known[m.uid], sequence=m.sequence, exceptions=exceptions(m)) for m, r in zip(meetings, replies) if r.ok}
        self.state.applied(done)
        return {m.uid: None if r.ok else r.error(f"recording {m.uid}") for m, r in zip(meetings, replies)}

    def _cancel(self, meetings: list[Meeting], known: dict[str, dict[str, Any]]) -> Results:
        calls = [Call("POST", f"{self.base}/events/{known[m.uid]['id']}/cancel", {"comment": _comment(m)}) for m in meetings]
        if not calls:
            return {}
        try:
            replies = self.http.batch(calls, "cancelling series")
        except BackendError as exc:
            return {m.uid: exc for m in meetings}
        results: Results = {}
        for meeting, reply in zip(meetings, replies):
            done = reply.ok or reply.status in GONE
            results[meeting.uid] = None if done else reply.error(f"cancelling {meeting.uid}")
        self.state.applied({}, [m.uid for m, r in zip(meetings, replies) if r.ok or r.status in GONE])
        return results

    def _calls(self, meetings: list[Meeting], build) -> tuple[list[Call], Results]:  # type: ignore[no-untyped-def]
        """A call per meeting; one that cannot be expressed in Graph fails alone."""
        calls, results = [], {}
        for meeting in meetings:
            try:
                calls.append(build(meeting))
            except BackendError as exc:
                results[meeting.uid] = exc
        return calls, results

    def _run(self, meetings: list[Meeting], calls: list[Call], verb: str) -> Results:
        try:
            replies = self.http.batch(calls, f"{verb} series")
        except BackendError as exc:
            return {m.uid: exc for m in meetings}
        results: Results = {}
        done: dict[str, dict[str, Any]] = {}
        for meeting, reply in zip(meetings, replies):
            if reply.ok:
                done[meeting.uid] = {"id": reply.body["id"], "sequence": meeting.sequence, "shape": shape(meeting),
                                     "exceptions": exceptions(meeting),
                                     "join_url": (reply.body.get("onlineMeeting") or {}).get("joinUrl")}
                results[meeting.uid] = None
            else:
                results[meeting.uid] = reply.error(f"{verb} {meeting.uid}")
        self.state.applied(done)
        return results

    def join_url(self, uid: str) -> str | None:
        """The Teams join link Graph gave the series when it was created or updated (``onlineMeeting.joinUrl``)."""
        record = self.state.series(uid) or {}
        return record.get("join_url") or None

    # -- single occurrences -----------------------------------------------------------------
    def cancel_occurrence(self, meeting: Meeting, start: datetime) -> None:
        record = self.state.series(meeting.uid) or self.find([meeting.uid]).get(meeting.uid)
        if record is None:
            return  # never booked, or the whole series is gone: nothing to cancel
        window = (start - timedelta(minutes=1), start + timedelta(minutes=meeting.plan.duration_minutes + 1))
        wanted = start.astimezone(timezone.utc)
        try:
            found = self._instances(record["id"], *window)
        except GraphError as exc:
            if exc.status not in GONE:
                raise
            self.state.applied({}, [meeting.uid])  # the series is gone (deleted by a person): nothing to cancel
            return
        calls = [Call("POST", f"{self.base}/events/{i['id']}/cancel", {"comment": _skip_comment()})
                 for i in found if _original_start(i) == wanted]
        for reply in self.http.batch(calls, f"cancelling an occurrence of {meeting.uid}") if calls else ():
            if not reply.ok and reply.status not in GONE:
                raise reply.error(f"cancelling the occurrence {wanted:%Y-%m-%d %H:%M}Z of {meeting.uid}")

    def _times(self, item: dict[str, Any]) -> tuple[datetime | None, datetime | None, bool]:
        return _original_start(item), _start(item), False  # Graph lists no cancelled occurrences

    def _skip_call(self, item: dict[str, Any]) -> Call:
        return Call("POST", f"{self.base}/events/{item['id']}/cancel", {"comment": _skip_comment()})

    def _move_call(self, meeting: Meeting, item: dict[str, Any], target: datetime) -> Call:
        return Call("PATCH", f"{self.base}/events/{item['id']}", _moved(meeting, target))

    def _instances(self, event_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        path = f"{self.base}/events/{event_id}/instances" + query(
            startDateTime=_iso(start), endDateTime=_iso(end), **{"$select": "id,originalStart,start,end,type", "$top": "500"})
        found: list[dict[str, Any]] = []
        reply = self.http.call(Call("GET", path), "reading occurrences")
        while True:
            if not reply.ok:
                raise reply.error("reading occurrences")
            found += reply.body.get("value", [])
            link = reply.body.get("@odata.nextLink")
            if not link:
                return found
            reply = self.http.get_url(link, "reading occurrences")


def _comment(meeting: Meeting) -> str:
    return (meeting.body_text or "This series of sessions has been cancelled.").strip()


def _skip_comment() -> str:
    return "This session is skipped; the series goes on."


def _moved(meeting: Meeting, new_start: datetime) -> dict[str, Any]:
    end = new_start + timedelta(minutes=meeting.plan.duration_minutes)
    return {"start": local_time(new_start, meeting.plan.tzid), "end": local_time(end, meeting.plan.tzid)}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _original_start(instance: dict[str, Any]) -> datetime | None:
    text = instance.get("originalStart")
    if not text:
        return None
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(timezone.utc)


def _start(instance: dict[str, Any]) -> datetime:
    return parse_time(instance["start"]).astimezone(timezone.utc)
