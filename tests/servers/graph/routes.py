"""Which handler answers which Graph path, and which permission it needs in the target mailbox."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from tests.servers.graph import events, messages
from tests.servers.graph.api import Answer, Context

USER = r"^/users/(?P<user>[^/]+)"
ID = r"(?P<item>[^/]+)"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    role: str  # the application permission (or RBAC role) the call needs
    handler: Callable[..., Answer]
    sends: bool = False  # counted against the message rate limit


def _r(method: str, tail: str, role: str, handler: Callable[..., Answer], sends: bool = False) -> Route:
    return Route(method, re.compile(USER + tail + "$"), role, handler, sends)


ROUTES = (
    _r("GET", r"/mailFolders/(?P<folder>[^/]+)", "Mail.Read", messages.get_folder),
    _r("GET", r"/mailFolders/(?P<folder>[^/]+)/messages", "Mail.Read", messages.list_folder),
    _r("GET", r"/mailFolders/(?P<folder>[^/]+)/messages/delta", "Mail.Read", messages.delta),
    _r("POST", r"/messages", "Mail.ReadWrite", messages.create_message),
    _r("GET", r"/messages/" + ID, "Mail.Read", messages.get_message),
    _r("PATCH", r"/messages/" + ID, "Mail.ReadWrite", messages.patch_message),
    _r("GET", r"/messages/" + ID + r"/\$value", "Mail.Read", messages.message_value),
    _r("POST", r"/messages/" + ID + r"/send", "Mail.Send", messages.send_message, sends=True),
    _r("GET", r"/calendar", "Calendars.Read", lambda ctx: Answer(200, {"id": "AAMkADcalendar", "name": "Calendar",
                                                                        "canEdit": True, "isDefaultCalendar": True})),
    _r("POST", r"/calendar/getSchedule", "Calendars.Read", events.get_schedule),
    _r("GET", r"/events", "Calendars.Read", events.list_events),
    _r("POST", r"/events", "Calendars.ReadWrite", events.create_event),
    _r("GET", r"/events/" + ID, "Calendars.Read", events.get_event),
    _r("PATCH", r"/events/" + ID, "Calendars.ReadWrite", events.patch_event),
    _r("POST", r"/events/" + ID + r"/cancel", "Calendars.ReadWrite", events.cancel_event),
    _r("GET", r"/events/" + ID + r"/instances", "Calendars.Read", events.instances),
)


def find(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in ROUTES:
        match = route.pattern.match(path)
        if match and route.method == method:
            return route, {k: unquote(v) for k, v in match.groupdict().items()}
    return None


def call(route: Route, ctx: Context, groups: dict[str, str], **extra: object) -> Answer:
    args = {k: v for k, v in groups.items() if k != "user"}
    names = list(args.values())
    return route.handler(ctx, *names, **extra)
