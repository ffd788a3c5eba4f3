"""Evaluate a FindItem ``m:Restriction`` against a rendered item, with Exchange's comparisons.

Strings compare case-insensitively; values that parse as date-times or numbers compare as such;
a path with no value makes every comparison false except IsNotEqualTo, which on a multi-valued
property means "no value equals" (how "items without category X" is asked).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime

from lxml import etree

from tests.servers.ews.paths import values
from tests.servers.ews.recurrence import parse_time
from tests.servers.ews.soap import EwsError, local, t

COMPARE: dict[str, Callable[[object, object], bool]] = {
    "IsEqualTo": operator.eq,
    "IsNotEqualTo": operator.ne,
    "IsGreaterThan": operator.gt,
    "IsGreaterThanOrEqualTo": operator.ge,
    "IsLessThan": operator.lt,
    "IsLessThanOrEqualTo": operator.le,
}
PATHS = ("FieldURI", "ExtendedFieldURI", "IndexedFieldURI")


def matches(node: etree._Element, item: etree._Element) -> bool:
    kind = local(node)
    if kind == "And":
        return all(matches(child, item) for child in node)
    if kind == "Or":
        return any(matches(child, item) for child in node)
    if kind == "Not":
        return not matches(node[0], item)
    path = node[0]
    if local(path) not in PATHS:
        raise EwsError("ErrorUnsupportedQueryFilter", f"unexpected {local(path)} in {kind}")
    found = values(item, path)
    if kind == "Exists":
        return bool(found)
    if kind in ("Contains", "Excludes"):
        return _contains(node, found)
    if kind in COMPARE:
        constant = node.find(f"{t('FieldURIOrConstant')}/{t('Constant')}")
        if constant is None:
            raise EwsError("ErrorUnsupportedQueryFilter", "comparing two properties is not supported here")
        wanted = constant.get("Value", "")
        if kind == "IsNotEqualTo":  # true when no value equals, also when the property is missing
            return not any(operator.eq(*_comparable(v, wanted)) for v in found)
        return any(COMPARE[kind](*_comparable(v, wanted)) for v in found)
    raise EwsError("ErrorUnsupportedQueryFilter", f"{kind} is not supported by this test server")


def _contains(node: etree._Element, found: list[str]) -> bool:
    wanted = node.find(t("Constant")).get("Value", "")
    mode = node.get("ContainmentMode", "Substring")
    ignore_case = "IgnoreCase" in node.get("ContainmentComparison", "Exact")
    norm = (lambda s: s.casefold()) if ignore_case else (lambda s: s)
    test = {"FullString": operator.eq, "Prefixed": str.startswith, "Substring": operator.contains}.get(mode, operator.contains)
    hit = any(test(norm(v), norm(wanted)) for v in found)
    return hit if local(node) == "Contains" else not hit


def _comparable(value: str, wanted: str) -> tuple[object, object]:
    for convert in (_as_time, _as_bool, float):
        try:
            return convert(value), convert(wanted)
        except (ValueError, TypeError):
            continue
    return value.casefold(), wanted.casefold()


def _as_time(text: str) -> datetime:
    if len(text) < 10 or text[4] != "-":
        raise ValueError(text)
    return parse_time(text)


def _as_bool(text: str) -> bool:
    lowered = text.strip().casefold()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueError(text)
