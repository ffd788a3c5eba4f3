"""Which handler serves which request, and which OAuth scopes let a token call it (any one of them)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.servers.google.calendar import Calendar
from tests.servers.google.gmail import Gmail
from tests.servers.google.store import CALENDAR, CALENDAR_EVENTS, FREEBUSY, GMAIL_MODIFY, GMAIL_SEND

FULL_MAIL = "https://mail.google.com/"
EVENTS = frozenset({CALENDAR, CALENDAR_EVENTS})
FREE_BUSY = frozenset({CALENDAR, FREEBUSY, "https://www.googleapis.com/auth/calendar.readonly",
                       "https://www.googleapis.com/auth/calendar.freebusy"})
MAIL = frozenset({GMAIL_MODIFY, FULL_MAIL})
SEND = MAIL | {GMAIL_SEND}


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    api: str  # calendar | gmail: the API that must be enabled in the account's project
    scopes: frozenset[str]
    call: Callable[..., Any]  # (handler object, *groups, [body]) → JSON
    units: int = 5  # Gmail quota units of the method (developers.google.com/gmail/api/reference/quota)


def _r(method: str, pattern: str, api: str, scopes: frozenset[str], call: Callable[..., Any], units: int = 5) -> Route:
    return Route(method, re.compile("^" + pattern + "$"), api, scopes, call, units)


CAL = r"/calendar/v3/calendars/([^/]+)/events"
USER = r"/gmail/v1/users/([^/]+)"
ROUTES = (
    _r("POST", CAL, "calendar", EVENTS, Calendar.insert),
    _r("GET", CAL, "calendar", EVENTS, Calendar.list),
    _r("GET", CAL + r"/([^/]+)/instances", "calendar", EVENTS, Calendar.instances),
    _r("GET", CAL + r"/([^/]+)", "calendar", EVENTS, Calendar.get),
    _r("PATCH", CAL + r"/([^/]+)", "calendar", EVENTS, Calendar.patch),
    _r("DELETE", CAL + r"/([^/]+)", "calendar", EVENTS, Calendar.delete),
    _r("POST", r"/calendar/v3/freeBusy", "calendar", FREE_BUSY, Calendar.free_busy),
    _r("POST", USER + r"/messages/send", "gmail", SEND, Gmail.send, units=100),
    _r("GET", USER + r"/messages", "gmail", MAIL, Gmail.list),
    _r("GET", USER + r"/messages/([^/]+)", "gmail", MAIL, Gmail.get),
    _r("POST", USER + r"/messages/([^/]+)/modify", "gmail", MAIL, Gmail.modify),
    _r("GET", USER + r"/history", "gmail", MAIL, Gmail.history, units=2),
    _r("GET", USER + r"/labels", "gmail", MAIL, Gmail.labels, units=1),
    _r("POST", USER + r"/labels", "gmail", MAIL, Gmail.create_label),
    _r("GET", USER + r"/profile", "gmail", SEND, Gmail.profile, units=1),
)
HANDLERS: dict[str, type] = {"calendar": Calendar, "gmail": Gmail}


def find(method: str, path: str) -> tuple[Route, tuple[str, ...]] | None:
    for route in ROUTES:
        match = route.pattern.match(path)
        if match and route.method == method:
            return route, match.groups()
    return None
