"""The Graph backend: Microsoft 365 (Exchange Online) through Microsoft Graph, app-only.

EWS in Exchange Online is blocked by default from 1 October 2026 and switched off on 1 April 2027,
so Microsoft 365 customers use this backend; ``exchange`` stays for Exchange Server on-premises.
Same contract, different wire: msal for the token (a client secret or a certificate), requests for
HTTP, nothing else (measured: msgraph-sdk adds ~446 MB, is async-only, and its retry handler
re-sends POSTs on 503/504, which can duplicate a mail).

The work is split by job: ``graph_http`` (token, throttling, ``$batch``), ``graph_events`` (a
Meeting as an event), ``graph_calendar`` (series and occurrences), ``graph_mail`` (send and
inbox), ``graph_state`` (the journal file), ``graph_online`` (``check --online`` sentences).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, time as clock_time, timedelta, timezone
from functools import partial
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rmdaemon.backends.graph_auth import Credential, TokenSource, certificate_problems
from rmdaemon.backends.graph_calendar import Calendar
from rmdaemon.backends.exchange_hours import Collected, Unusable, in_persons_zone
from rmdaemon.backends.graph_events import iana_zone, parse_time
from rmdaemon.backends.graph_http import Call, GraphError, GraphHttp, TimeoutSession, TokenError
from rmdaemon.backends.http_common import SendPace
from rmdaemon.backends.graph_mail import Inbox, Outbox
from rmdaemon.backends.graph_online import mailbox_problem, token_problem, transport_problem
from rmdaemon.backends.graph_state import GraphState
from rmdaemon.backends.base import DEFAULT_MAX_BYTES, Backend, Capability, FreeBusy, Outcomes, windows
from rmdaemon.config import GraphBackendSettings
from rmdaemon.errors import BackendError
from rmdaemon.model import BusyTime, Incoming, Meeting, Outgoing, Person, WorkingHours

MAX_PEOPLE = 20  # getSchedule: schedules per request
MAX_WINDOW = timedelta(days=61)  # getSchedule: the window must stay under 62 days
BUSY = ("busy", "tentative", "oof")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class GraphBackend(Backend):
    name = "graph"
    capabilities = frozenset({Capability.FREE_BUSY, Capability.WORKING_HOURS, Capability.ONLINE_MEETINGS})

    def __init__(self, settings: GraphBackendSettings, credential: Credential, *, clock: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.settings, self.credential = settings, credential
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.session = TimeoutSession(str(settings.ca_file) if settings.ca_file else True, settings.timeout_seconds)
        self.tokens = TokenSource(authority_host=settings.authority_host, tenant_id=settings.tenant_id,
                                  client_id=settings.client_id, credential=credential,
                                  scope=settings.graph_base.rstrip("/") + "/.default", session=self.session)
        self.http = GraphHttp(settings.graph_base, self.session, self.tokens, budget=settings.retry_budget_seconds, sleep=sleep)
        self.state = GraphState(settings.state_path)
        self.calendar = Calendar(self.http, self.state, settings.mailbox, settings.online_meetings)
        self.outbox = Outbox(self.http, self.state, settings.mailbox,
                             SendPace(settings.messages_per_minute, monotonic, sleep, settings.retry_budget_seconds,
                                      "Exchange Online's limit"),
                             self.clock)
        self.inbox = Inbox(self.http, self.state, settings.mailbox, settings.processed_category, max_bytes)
        self.base = f"/users/{quote(settings.mailbox, safe='@')}"

    # -- mail -------------------------------------------------------------------------------
    def send(self, message: Outgoing) -> None:
        self.outbox.send(message)

    def fetch_new(self) -> list[Incoming]:
        return self.inbox.fetch_new()

    def mark_processed(self, ref: str) -> None:
        self.inbox.mark_processed(ref)

    # -- calendar ---------------------------------------------------------------------------
    def publish_many(self, meetings: list[Meeting]) -> Outcomes:
        """Book, update or cancel many series in few round trips; one failure stays with its uid."""
        return self.calendar.publish_many(meetings)

    def cancel_occurrence(self, meeting: Meeting, start: datetime) -> None:
        self.calendar.cancel_occurrence(meeting, start)

    def join_url(self, uid: str) -> str | None:
        return self.calendar.join_url(uid)

    def free_busy(self, people: list[Person], start: datetime, end: datetime) -> FreeBusy:
        """Busy times from getSchedule: 20 people and under 62 days per request, all in one $batch,
        with the working hours people keep in their mailboxes, in each person's own zone (hours kept
        in a zone with another clock are left out, see ``exchange_hours``). Addresses Exchange
        cannot resolve are named in ``problems``."""
        by_address = {p.address: p for p in people}
        addresses = list(by_address)
        busy: dict[str, list[BusyTime]] = {a: [] for a in addresses}
        hours = Collected("Graph")
        calls, asked = [], []
        for window_start, window_end in windows(start, end, MAX_WINDOW):
            for index in range(0, len(addresses), MAX_PEOPLE):
                chunk = addresses[index : index + MAX_PEOPLE]
                calls.append(Call("POST", f"{self.base}/calendar/getSchedule", _schedule_body(chunk, window_start, window_end)))
                asked.append(chunk)
        problems: dict[str, str] = {}
        for chunk, reply in zip(asked, self.http.batch(calls, "reading free/busy") if calls else []):
            if not reply.ok:
                raise reply.error("reading free/busy")
            for entry in reply.body.get("value", []):
                address = str(entry.get("scheduleId", "")).casefold()
                if entry.get("error"):
                    problems.setdefault(address, f"{entry['error'].get('responseCode', '')}: {entry['error'].get('message', '')}")
                    continue
                busy.setdefault(address, []).extend(_busy_times(entry))
                if address in by_address:
                    hours.add(by_address[address], partial(_working_hours, entry, by_address[address], start))
        hours.report()
        return FreeBusy.read(busy, hours.found, problems)

    # -- health -----------------------------------------------------------------------------
    def check_online(self) -> list[str]:
        """A token, then the inbox and the calendar read in one $batch; problems, never a traceback."""
        problems = certificate_problems(self.credential, self.clock())
        if problems:
            return problems
        probes = {"reading the inbox": Call("GET", f"{self.base}/mailFolders/inbox?$select=id"),
                  "reading the calendar": Call("GET", f"{self.base}/calendar?$select=id")}
        try:
            replies = self.http.batch(list(probes.values()), "checking the programme mailbox")
        except TokenError as exc:
            return [token_problem(exc, self.settings)]
        except GraphError as exc:
            return [mailbox_problem(exc, self.settings, "the $batch probe")]
        except BackendError as exc:
            return [transport_problem(exc, self.settings)]
        failed: dict[tuple[int, str], list[str]] = {}
        for what, reply in zip(probes, replies):
            if not reply.ok:
                failed.setdefault((reply.status, reply.code), []).append(what)
        return [mailbox_problem(next(r for r in replies if (r.status, r.code) == key).error(" and ".join(whats)),
                                self.settings, " and ".join(whats)) for key, whats in failed.items()]

    def close(self) -> None:
        self.session.close()

    @property
    def requests_sent(self) -> int:
        """Round trips to Graph so far (the token endpoint not counted), for benchmarks."""
        return self.http.requests_sent


def _schedule_body(addresses: list[str], start: datetime, end: datetime) -> dict[str, object]:
    def stamp(moment: datetime) -> dict[str, str]:
        return {"dateTime": moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}

    return {"schedules": addresses, "startTime": stamp(start), "endTime": stamp(end), "availabilityViewInterval": 30}


def _busy_times(entry: dict) -> list[BusyTime]:  # type: ignore[type-arg]
    return [BusyTime(parse_time(item["start"]).astimezone(timezone.utc), parse_time(item["end"]).astimezone(timezone.utc))
            for item in entry.get("scheduleItems") or [] if str(item.get("status", "")).casefold() in BUSY]


def _working_hours(entry: dict, person: Person, around: datetime) -> WorkingHours | None:  # type: ignore[type-arg]
    """``workingHours`` of a getSchedule answer: one window for the listed days, in a zone named
    the Windows way or the IANA way. (When Outlook keeps different hours per day, Graph answers
    with the earliest start and the latest end.) Raises Unusable."""
    found = entry.get("workingHours") or {}
    if not found.get("daysOfWeek"):
        return None
    zone = found.get("timeZone") or {}
    if "customTimeZone" in str(zone.get("@odata.type", "")):
        raise Unusable(f"they are kept in a custom time zone ({zone.get('name', '')!r}), which rmdaemon does not compare")
    try:
        clock = ZoneInfo(iana_zone(str(zone.get("name", ""))))
        start, end = (clock_time.fromisoformat(str(found[k])[:15]) for k in ("startTime", "endTime"))
    except (ZoneInfoNotFoundError, ValueError, KeyError) as e:
        raise Unusable(f"they could not be read ({found!r}: {e})") from None
    days = tuple(DAYS.index(str(d).casefold()) for d in found["daysOfWeek"] if str(d).casefold() in DAYS)
    return in_persons_zone([(days, start, end)], clock, person, around)
