"""What every Graph handler gets and returns, and the small shared shapes (paging, times, errors)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from tests.servers.graph.recurrence import zone
from tests.servers.graph.store import App, GraphFault, Store


@dataclass
class Request:
    method: str
    path: str  # below the version root: /users/x/events
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    app: App
    root: str  # https://127.0.0.1:PORT/v1.0, for links

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise GraphFault(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header "
                                                "is set and payload is of valid JSON format.") from None

    @property
    def prefer(self) -> dict[str, str]:
        """``Prefer`` preferences by name (``IdType``, ``outlook.timezone``, ``odata.maxpagesize``)."""
        found = {}
        for part in self.headers.get("prefer", "").split(","):
            name, _, value = part.strip().partition("=")
            if name:
                found[name.strip()] = value.strip().strip('"')
        return found

    @property
    def zone_name(self) -> str:
        return self.prefer.get("outlook.timezone", "UTC")


@dataclass
class Answer:
    status: int
    body: Any = None  # dict → JSON; bytes → sent as is
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8"


@dataclass
class Context:
    store: Store
    request: Request
    mailbox: str  # the /users/{id} of the path, resolved and lower-cased


def graph_time(moment: datetime, zone_name: str = "UTC") -> dict[str, str]:
    """A dateTimeTimeZone as Graph writes it (seven decimals, in the preferred zone)."""
    local = moment.astimezone(timezone.utc if zone_name == "UTC" else zone(zone_name))
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone_name}


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GraphFault(400, "ErrorInvalidParameter", f"The value '{text}' of parameter '{name}' is invalid.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def page(ctx: Context, items: list[dict[str, Any]], default_top: int, context: str) -> Answer:
    """One page of a collection: ``$top`` (or ``Prefer: odata.maxpagesize``) items from ``$skip``, and a nextLink."""
    from tests.servers.graph.odata import top

    query = ctx.request.query
    size = int(ctx.request.prefer.get("odata.maxpagesize", "0") or 0) or top(query, default_top)
    skip = int(query.get("$skip", "0") or 0)
    body: dict[str, Any] = {"@odata.context": f"{ctx.request.root}/$metadata#{context}", "value": items[skip : skip + size]}
    if skip + size < len(items):
        body["@odata.nextLink"] = link(ctx.request, {**query, "$skip": str(skip + size)})
    return Answer(200, body)


def link(request: Request, query: dict[str, str]) -> str:
    return f"{request.root}{quote(request.path, safe='/@$')}?" + urlencode(query, quote_via=quote, safe="$',()/:@")


def address(email: str, name: str = "") -> dict[str, Any]:
    return {"emailAddress": {"name": name or email, "address": email}}
