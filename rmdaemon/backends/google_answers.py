"""Who is going to which session, from the programme calendar's changes (``syncToken``).

The nudge job asks, for each missed session, whether both people said yes to it. Asking Google
per session costs a request each; instead the calendar's events are read once with
``events.list`` (series and their exceptions: sessions someone answered, moved or cancelled),
and after that only what changed since the stored ``nextSyncToken`` — across restarts, since
the token and the answers live in the journal. A token Google no longer accepts (410
``fullSyncRequired``) starts the read over. The read is repeated at most once a minute, so a
tick's questions cost one request, usually an empty answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

from rmdaemon.backends.google_http import GoogleHttp
from rmdaemon.backends.google_state import GoogleState
from rmdaemon.backends.http_common import Call

FRESH = timedelta(minutes=1)
KEYED = "series and original start"  # how exceptions are kept (older journals: by instance id)


class Answers:
    def __init__(self, http: GoogleHttp, state: GoogleState, events: str, clock: Callable[[], datetime]) -> None:
        self.http, self.state, self.events, self.clock = http, state, events, clock
        self._read_at: datetime | None = None

    def of(self, series_id: str, start: datetime) -> dict[str, Any] | None:
        """{"status", "attendees": {address: responseStatus}} of the session planned at ``start``
        (its exception, else the series'); None when the series is not on the calendar."""
        self._refresh()
        seen = self.state.data["answers"]["events"]
        series = seen.get(series_id)
        if series is None or series.get("status") == "cancelled":
            return None
        return seen.get(_key(series_id, start)) or series

    def stale(self) -> None:
        """We changed the calendar ourselves: the next question reads the changes again."""
        self._read_at = None

    def _refresh(self) -> None:
        now = self.clock()
        if self._read_at is not None and now - self._read_at < FRESH:
            return
        kept = self.state.data["answers"]
        token, seen = kept.get("sync_token"), dict(kept.get("events") or {})
        if kept.get("keyed") != KEYED:  # a journal that kept exceptions by instance id: read everything again
            token, seen = None, {}
        page = ""
        while True:
            params = {"syncToken": token} if token else {"showDeleted": "true"}
            reply = self.http.call(Call("GET", self.events + _query(maxResults="2500", **params, **({"pageToken": page} if page else {}))),
                                   "reading the calendar's changes")
            if reply.status == 410 and token:  # Google forgot the token: read everything again
                token, seen, page = None, {}, ""
                continue
            if not reply.ok:
                raise reply.error("reading the calendar's changes")
            for item in reply.body.get("items") or []:
                seen[_item_key(item)] = _answers(item)
            page = reply.body.get("nextPageToken") or ""
            if not page:
                break
        self.state.data["answers"] = {"sync_token": reply.body.get("nextSyncToken"), "events": seen, "keyed": KEYED}
        self.state.save()
        self._read_at = now


def _key(series_id: str, start: datetime) -> str:
    return f"{series_id} {start.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%SZ}"


def _item_key(item: dict[str, Any]) -> str:
    """A series by its id; an exception (one session changed) by its series and original start,
    never by its own id, which Google makes opaque."""
    original = (item.get("originalStartTime") or {}).get("dateTime")
    if not item.get("recurringEventId") or not original:
        return str(item["id"])
    return _key(str(item["recurringEventId"]), datetime.fromisoformat(str(original).replace("Z", "+00:00")))


def _answers(item: dict[str, Any]) -> dict[str, Any]:
    return {"status": item.get("status", "confirmed"),
            "attendees": {str(a.get("email", "")).casefold(): str(a.get("responseStatus", "needsAction"))
                          for a in item.get("attendees") or [] if not a.get("organizer")}}


def _query(**params: str) -> str:
    return "?" + urlencode(params, quote_via=quote, safe="@")
