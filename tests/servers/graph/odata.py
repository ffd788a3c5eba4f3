"""The slice of OData query syntax Graph clients use with Outlook items, parsed strictly.

Supported ``$filter``: ``singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…')``
clauses joined by ``or``, and ``iCalUId eq '…'``. Anything else is refused with Exchange's
``ErrorInvalidUrlQueryFilter``, so a client that relies on more than that fails here first.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from tests.servers.graph.store import GraphFault

_QUOTED = r"'((?:[^']|'')*)'"
_ANY = re.compile(r"^singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+" + _QUOTED + r"\s+and\s+\1/value\s+eq\s+"
                  + _QUOTED + r"\s*\)$", re.I)
_ICAL = re.compile(r"^iCalUId\s+eq\s+" + _QUOTED + "$", re.I)
_EXPAND = re.compile(r"^singleValueExtendedProperties\(\$filter=(.+)\)$", re.I)
_ID_EQ = re.compile(r"^id\s+eq\s+" + _QUOTED + "$", re.I)
_PROPERTY_ID = re.compile(r"^(String|Integer|Binary|Boolean|SystemTime|Long)\s+\{[0-9a-fA-F-]{36}\}\s+(Name\s+\S.*|Id\s+0x[0-9a-fA-F]{1,4})$")

Predicate = Callable[[Any], bool]


def unquote(text: str) -> str:
    return text.replace("''", "'")


def split_or(text: str) -> list[str]:
    """Split on `` or `` outside quotes and parentheses."""
    parts, depth, quoted, start = [], 0, False, 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and text[i : i + 4].lower() == " or ":
            parts.append(text[start:i].strip())
            start = i + 4
            i += 3
        i += 1
    parts.append(text[start:].strip())
    return parts


def item_filter(text: str | None) -> Predicate:
    """A predicate over items that have ``extended`` (casefolded id → (id, value)) and ``ical_uid``."""
    if not text:
        return lambda item: True
    clauses: list[Predicate] = []
    for clause in split_or(text.strip()):
        match, ical = _ANY.match(clause), _ICAL.match(clause)
        if match:
            prop, value = unquote(match[2]).casefold(), unquote(match[3])
            clauses.append(lambda item, p=prop, v=value: item.extended.get(p, ("", None))[1] == v)
        elif ical:
            clauses.append(lambda item, v=unquote(ical[1]): getattr(item, "ical_uid", None) == v)
        else:
            raise GraphFault(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
    return lambda item: any(c(item) for c in clauses)


def expand_ids(text: str | None) -> set[str] | None:
    """Property ids named by ``$expand=singleValueExtendedProperties($filter=id eq '…' or …)``."""
    if not text:
        return None
    match = _EXPAND.match(text.strip())
    if not match:
        raise GraphFault(400, "BadRequest", f"Parsing OData Select and Expand failed: Could not find a property named '{text}'.")
    ids = set()
    for clause in split_or(match[1]):
        found = _ID_EQ.match(clause)
        if not found:
            raise GraphFault(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
        ids.add(unquote(found[1]).casefold())
    return ids


def check_property_id(prop_id: str) -> None:
    if not _PROPERTY_ID.match(prop_id.strip()):
        raise GraphFault(400, "ErrorInvalidProperty", f"The extended property id '{prop_id}' is not valid.")


def extended_props(entries: Any) -> dict[str, tuple[str, str]]:
    """``singleValueExtendedProperties`` of a request body, checked like Exchange does."""
    found: dict[str, tuple[str, str]] = {}
    for entry in entries or []:
        prop_id, value = str(entry.get("id", "")), entry.get("value")
        check_property_id(prop_id)
        if not isinstance(value, str):
            raise GraphFault(400, "ErrorInvalidExtendedPropertyValue", f"The value of '{prop_id}' must be a string.")
        kind = prop_id.split()[0]
        if kind == "Integer" and not re.fullmatch(r"-?\d+", value):
            raise GraphFault(400, "ErrorInvalidExtendedPropertyValue", f"'{value}' is not a valid Integer.")
        if kind == "Binary":
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                raise GraphFault(400, "ErrorInvalidExtendedPropertyValue", f"'{value}' is not valid base64.") from None
        found[prop_id.casefold()] = (prop_id, value)
    return found


def shape(item: dict[str, Any], select: str | None, extended: dict[str, tuple[str, str]], expand: set[str] | None) -> dict[str, Any]:
    """``$select`` keeps the named properties (and id, etag); ``$expand`` adds the named extended ones."""
    out = dict(item)
    if select:
        wanted = {s.strip() for s in select.split(",")} | {"id", "@odata.etag", "@odata.type"}
        out = {k: v for k, v in item.items() if k in wanted}
    if expand is not None:
        out["singleValueExtendedProperties"] = [{"id": pid, "value": value} for key, (pid, value) in extended.items()
                                                if key in expand]
    return out


def top(query: dict[str, str], default: int, most: int = 1000) -> int:
    text = query.get("$top", str(default))
    if not text.isdigit() or not 0 < int(text) <= most:
        raise GraphFault(400, "ErrorInvalidUrlQuery", f"The value of $top must be between 1 and {most}.")
    return int(text)


def token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def untoken(text: str) -> dict[str, Any]:
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise GraphFault(400, "ErrorInvalidUrlQuery", "The skip or delta token is not valid.") from None
