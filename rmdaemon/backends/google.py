"""The google backend: Google Workspace through the Calendar API v3 and the Gmail API, as the
programme user, with a service account that has domain-wide delegation.

Same contract, different wire: google-auth for the token (a JWT signed with the service
account's key, exchanged at the key's ``token_uri``; or keyless, signed by the IAM Credentials
API, see ``google_auth``) and its ``AuthorizedSession`` (requests) for HTTP, nothing else — google-api-python-client was measured and left out (docs/google.md).

The work is split by job: ``google_http`` (quotas, back-off, batches), ``google_events`` (a Meeting
as an event), ``google_calendar`` (series, occurrences, answers, agendas), ``google_mail`` (send
and inbox), ``google_state`` (the journal file), ``google_online`` (``check --online`` sentences).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from rmdaemon.backends.base import Backend, Capability, FreeBusy, Note, NoteOutcomes, Outcomes, windows
from rmdaemon.backends.google_auth import delegated, keyless, session, token_request
from rmdaemon.backends.google_calendar import Calendar
from rmdaemon.backends.google_events import rfc3339
from rmdaemon.backends.google_http import GoogleError, GoogleHttp, TokenError
from rmdaemon.backends.google_mail import Inbox, Outbox, root
from rmdaemon.backends.google_online import api_problem, key_exposed, token_problem, transport_problem
from rmdaemon.backends.google_state import GoogleState
from rmdaemon.backends.http_common import Call, SendPace
from rmdaemon.config import GoogleBackendSettings
from rmdaemon.errors import BackendError
from rmdaemon.model import BusyTime, Incoming, Meeting, Outgoing, Person

MAX_PEOPLE = 50  # freeBusy.query: calendars per request
MAX_WINDOW = timedelta(days=61)  # Google names no longest range; others see 400 timeRangeTooLong past 90 days


class GoogleBackend(Backend):
    name = "google"
    capabilities = frozenset({Capability.FREE_BUSY, Capability.OCCURRENCE_ANSWERS, Capability.ANNOTATE,
                              Capability.ONLINE_MEETINGS})

    def __init__(self, settings: GoogleBackendSettings, key_json: str | None, *, clock: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        tokens = token_request(settings.ca_file, settings.timeout_seconds)
        if key_json is None:  # keyless: signed through the IAM Credentials API
            self.credentials, self.client_id = keyless(settings, tokens)
        else:
            self.credentials, self.client_id = delegated(key_json, settings.user, f"{settings.key_file or '$' + settings.key_env}")
        self.session = session(self.credentials, tokens)
        self.http = GoogleHttp(settings.api_base, self.session, budget=settings.retry_budget_seconds,
                               timeout=settings.timeout_seconds, sleep=sleep)
        self.state = GoogleState(settings.state_path)
        self.calendar = Calendar(self.http, self.state, settings.user, settings.online_meetings, self.clock)
        pace = SendPace(settings.messages_per_minute, monotonic, sleep, settings.retry_budget_seconds,
                        "[backend.google] messages_per_minute")
        self.outbox = Outbox(self.http, self.state, settings.user, pace, self.clock)
        self.inbox = Inbox(self.http, self.state, settings.user, settings.processed_label)

    # -- mail -------------------------------------------------------------------------------
    def send(self, message: Outgoing) -> None:
        self.outbox.send(message)

    def fetch_new(self) -> list[Incoming]:
        return self.inbox.fetch_new()

    def mark_processed(self, ref: str) -> None:
        self.inbox.mark_processed(ref)

    # -- calendar ---------------------------------------------------------------------------
    def publish_many(self, meetings: list[Meeting]) -> Outcomes:
        return self.calendar.publish_many(meetings)

    def cancel_occurrence(self, meeting: Meeting, start: datetime) -> None:
        self.calendar.cancel_occurrence(meeting, start)

    def occurrence_answers(self, meeting: Meeting, start: datetime) -> dict[str, str] | None:
        return self.calendar.occurrence_answers(meeting, start)

    def annotate_many(self, notes: list[Note]) -> NoteOutcomes:
        return self.calendar.annotate_many(notes)

    def join_url(self, uid: str) -> str | None:
        return self.calendar.join_url(uid)

    def free_busy(self, people: list[Person], start: datetime, end: datetime) -> FreeBusy:
        """``freeBusy.query``: 50 calendars and 61 days per request, all in one batch.
        Calendars Google cannot show (an unknown address, free/busy not shared) are in ``problems``."""
        addresses = list(dict.fromkeys(p.address for p in people))
        busy: dict[str, list[BusyTime]] = {a: [] for a in addresses}
        calls = [Call("POST", "/calendar/v3/freeBusy", {"timeMin": rfc3339(a), "timeMax": rfc3339(b),
                                                         "items": [{"id": x} for x in addresses[i : i + MAX_PEOPLE]]})
                 for a, b in windows(start, end, MAX_WINDOW) for i in range(0, len(addresses), MAX_PEOPLE)]
        problems: dict[str, str] = {}
        for reply in self.http.batch(calls, "reading free/busy") if calls else []:
            if not reply.ok:
                raise reply.error("reading free/busy")
            for address, found in (reply.body.get("calendars") or {}).items():
                address = address.casefold()
                if found.get("errors"):
                    problems.setdefault(address, ", ".join(str(e.get("reason")) for e in found["errors"]))
                    continue
                busy.setdefault(address, []).extend(BusyTime(_utc(b["start"]), _utc(b["end"])) for b in found.get("busy") or [])
        return FreeBusy.read(busy, {}, problems)

    # -- health -----------------------------------------------------------------------------
    def check_online(self) -> list[str]:
        """A token, then the mailbox's profile and one event of the calendar; problems, never a traceback."""
        exposed = key_exposed(self.settings.key_file)
        if exposed:
            return [exposed]
        probes = {"reading the mailbox": Call("GET", f"{root(self.settings.user)}/profile"),
                  "reading the calendar": Call("GET", self.calendar.events + "?maxResults=1")}
        problems = []
        for what, probe in probes.items():
            try:
                reply = self.http.call(probe, f"checking {self.settings.user}")
            except TokenError as exc:
                return [token_problem(exc, self.settings, self.client_id)]
            except BackendError as exc:
                return [transport_problem(exc, self.settings)]
            if not reply.ok:
                problems.append(api_problem(GoogleError(what, reply), self.settings, what))
        return problems

    def close(self) -> None:
        self.session.close()

    @property
    def requests_sent(self) -> int:
        """Round trips to the APIs so far (the token endpoint not counted), for benchmarks."""
        return self.http.requests_sent


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
