"""The vocabulary of the config schema: converters (raw TOML value → typed value) and ``Option``.

A converter refuses a value with ``Invalid``; the loader adds the file, line and key. An
``Option`` is one key: its section, converter, default, help and an example for "missing". Keys
are declared either as rows of ``schema.OPTIONS`` or, for a section whose dataclass is handed
over whole (the backends'), on the dataclass's fields with ``config_key()``; ``section_options`` reads
those back as rows, so each key is written down once.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from rmdaemon.config.parse import (
    WORKDAYS,
    Invalid,
    check_email,
    check_language,
    check_timezone,
    parse_date_range,
    parse_day,
    parse_days,
    parse_hours_range,
    parse_time,
    working_hours,
)
from rmdaemon.model import WEEKDAYS, WorkingHours


@dataclass(frozen=True)
class Converter:
    expects: str  # for the reference doc, e.g. "integer ≥ 1"
    parse: Callable[[Any, Path], Any]


def _text(value: Any, base: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("expected a non-empty string, got {value}", value)
    return value.strip()


def integer(low: int, high: int | None = None) -> Converter:
    span = f"between {low} and {high}" if high is not None else f"≥ {low}"

    def parse(value: Any, base: Path) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok or value < low or (high is not None and value > high):
            unquote = "; write it without quotes" if isinstance(value, str) and value.strip().isdigit() else ""
            raise Invalid(f"expected a whole number {span}, got {{value}}{unquote}", value)
        return int(value)

    return Converter(f"integer {span}", parse)


def number(low: float) -> Converter:
    def parse(value: Any, base: Path) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise Invalid(f"expected a number ≥ {low:g}, got {{value}}", value)
        return float(value)

    return Converter(f"number ≥ {low:g}", parse)


def _boolean(value: Any, base: Path) -> bool:
    if not isinstance(value, bool):
        raise Invalid("expected true or false (no quotes), got {value}", value)
    return value


def choice(*choices: str) -> Converter:
    def parse(value: Any, base: Path) -> str:
        if not isinstance(value, str) or value not in choices:
            raise Invalid(f"expected {'|'.join(choices)}, got {{value}}", value)
        return value

    return Converter(" \\| ".join(f"`{c}`" for c in choices), parse)


def _timezone(value: Any, base: Path) -> str:
    return check_timezone(_text(value, base))


def _language(value: Any, base: Path) -> str:
    return check_language(_text(value, base))


def _email(value: Any, base: Path) -> str:
    if not isinstance(value, str):
        raise Invalid("expected an email address in quotes, got {value}", value)
    try:
        return check_email(value.strip())
    except Invalid as exc:
        raise Invalid(exc.template + '; write a plain address like "mentoring@example.com"', value) from None


def _date(value: Any, base: Path) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    elif isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise Invalid("expected a date like 2027-01-04, got {value}", value)


def _path(value: Any, base: Path) -> Path:
    """Relative paths are relative to the config file, so the daemon's cwd never matters."""
    return base / Path(_text(value, base)).expanduser()


def _hours(value: Any, base: Path) -> WorkingHours:
    if isinstance(value, str):
        return parse_hours_range(value, WORKDAYS)
    if not isinstance(value, dict) or not {"start", "end"} <= value.keys():
        raise Invalid('expected { start = "09:00", end = "17:00", days = ["Mon", ...] }, got {value}', value)
    extra = sorted(value.keys() - {"start", "end", "days"})
    if extra:
        raise Invalid(f"unknown key {extra[0]!r} in working_hours; use start, end and days", value)
    days = value.get("days", list(WEEKDAYS[:5]))
    if not isinstance(days, list) or not all(isinstance(d, str) for d in days):
        raise Invalid('expected days = ["Mon", "Tue", ...], got {value}', days)
    if not all(isinstance(value[k], str) for k in ("start", "end")):
        raise Invalid('expected start and end as quoted times like "09:00", got {value}', value)
    return working_hours(value["start"], value["end"], parse_days(days))


def _weekday(value: Any, base: Path) -> int:
    return parse_day(_text(value, base))


def _clock(value: Any, base: Path) -> time:
    return parse_time(_text(value, base))


def _emails(value: Any, base: Path) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Invalid('expected a list of addresses like ["admin@example.com"], got {value}', value)
    return tuple(_email(v, base) for v in value)


def _optional_text(value: Any, base: Path) -> str:
    if not isinstance(value, str):
        raise Invalid("expected a string in quotes, got {value}", value)
    return value.strip()


def _url(value: Any, base: Path) -> str:
    text = _text(value, base)
    if not re.match(r"^https?://[^\s/]+", text):
        raise Invalid("expected a URL like https://mail.example.com/EWS/Exchange.asmx, got {value}", value)
    return text


def _blackout_span(value: Any, base: Path) -> tuple[date, date]:
    if isinstance(value, dict):
        if set(value) != {"start", "end"}:
            raise Invalid("expected a range like { start = 2027-12-24, end = 2027-12-31 }, got {value}", value)
        span = (_date(value["start"], base), _date(value["end"], base))
        if span[1] < span[0]:
            raise Invalid("blackout range {value} ends before it starts; swap start and end", value)
        return span
    if isinstance(value, str):
        return parse_date_range(value)
    day = _date(value, base)
    return (day, day)


def _blackouts(value: Any, base: Path) -> tuple[tuple[date, date], ...]:
    """Days (``2027-04-05``) and ranges (``{ start = ..., end = ... }`` or ``"first..last"``), sorted."""
    if not isinstance(value, list):
        raise Invalid("expected a list like [2027-04-05, { start = 2027-12-24, end = 2027-12-31 }], got {value}", value)
    return tuple(sorted(_blackout_span(v, base) for v in value))


TEXT = Converter("string", _text)
OPTIONAL_TEXT = Converter("string", _optional_text)
URL = Converter("URL", _url)
WEEKDAY = Converter("day (`Mon` … `Sun`)", _weekday)
CLOCK = Converter("time (`HH:MM`)", _clock)
EMAILS = Converter("list of email addresses", _emails)
BOOL = Converter("`true` \\| `false`", _boolean)
TIMEZONE = Converter("IANA time zone", _timezone)
LANGUAGE = Converter("BCP 47 language tag", _language)
EMAIL = Converter("email address", _email)
DATE = Converter("date (`YYYY-MM-DD`)", _date)
PATH = Converter("path (relative to the config file)", _path)
HOURS = Converter("inline table `{ start, end, days }`", _hours)
BLACKOUTS = Converter("list of dates and `{ start, end }` ranges", _blackouts)
MINUTES = integer(1, 24 * 60)


def _imap_keyword(value: Any, base: Path) -> str:
    """An IMAP keyword is an atom: no spaces, brackets, quotes or a leading backslash (RFC 3501)."""
    text = _text(value, base)
    if not re.fullmatch(r"[^\\\s(){}%*\"\]]+", text):
        raise Invalid("expected an IMAP keyword like \"$RmdaemonProcessed\" (no spaces, brackets or backslash), got {value}", value)
    return text


IMAP_KEYWORD = Converter("IMAP keyword", _imap_keyword)


def _https_url(value: Any, base: Path) -> str:
    """msal refuses any authority that is not https, and tokens must never travel in the clear."""
    text = _text(value, base).rstrip("/")
    if not re.match(r"^https://[^\s/]+(/\S*)?$", text):
        raise Invalid("expected an https URL like https://login.microsoftonline.com, got {value}", value)
    return text


HTTPS_URL = Converter("https URL", _https_url)


REQUIRED: Any = object()  # default marker: the key must be set


@dataclass(frozen=True)
class SameAs:
    """Default that copies another key of the same section (organizer_name ← name)."""

    key: str


@dataclass(frozen=True)
class Option:
    section: str
    key: str
    convert: Converter
    default: Any  # raw TOML value (converted like user input), None, REQUIRED or SameAs
    help: str
    example: str = ""  # TOML value text, shown when the key is missing


def config_key(convert: Converter, default: Any, help: str, example: str) -> Any:
    """A dataclass field that is also a config key (see ``section_options``).

    The field's own default is the option's default as a typed value (a path relative to the
    working directory), for code that builds the dataclass by hand; the loader passes every key.
    """
    spec = {"option": (convert, default, help, example)}
    if default is REQUIRED:
        return dataclasses.field(metadata=spec)
    return dataclasses.field(default=None if default is None else convert.parse(default, Path()), metadata=spec)


def section_options(section: str, settings: type) -> tuple[Option, ...]:
    """The ``config_key()`` fields of a settings dataclass as option rows, in field order."""
    return tuple(Option(section, f.name, *f.metadata["option"]) for f in dataclasses.fields(settings)
                 if "option" in f.metadata)


def toml_quote(value: Any) -> str:
    """Show a value the way it is written in TOML, so the user recognises it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_quote(v)}" for k, v in value.items()) + " }"
    return str(value)
