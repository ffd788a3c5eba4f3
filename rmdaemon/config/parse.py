"""The small value parsers (times, days, hours ranges, slots, emails, zones) and file reading.

They live apart from the config schema because the roster reads the same kinds of values and
must judge them the same way. A refusal is an ``Invalid`` whose message quotes the value the way
the file it came from writes it (TOML for the config, plain text for the roster's CSV).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from datetime import date, time
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from rmdaemon.model import WEEKDAYS, Slot, WorkingHours


class Invalid(ValueError):
    """A value we refuse. ``template`` holds ``{value}``; each file format quotes values its own way."""

    def __init__(self, template: str, value: object = None) -> None:
        super().__init__(template)
        self.template = template
        self.value = value

    def render(self, quote: Callable[[object], str]) -> str:
        return self.template.replace("{value}", quote(self.value))


_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_HOURS = re.compile(r"^\s*(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})(?:\s+(.+?))?\s*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$")
# An address of only these characters is one parseaddr leaves as it is (tests/test_config.py
# compares the two): the roster's addresses skip its parser, 20,000 a tick at 10,000 pairs.
_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_DAY_NAMES = {name.casefold(): i for i, name in enumerate(WEEKDAYS)} | {
    name.casefold(): i
    for i, name in enumerate(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"))
}
WORKDAYS = (0, 1, 2, 3, 4)


def parse_time(text: str) -> time:
    """``"09:00"`` → time; 24-hour clock, because "9pm" vs "21:00" is a classic roster mistake."""
    match = _TIME.match(text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise Invalid("expected a 24-hour time like 09:00, got {value}", text)
    return time(int(match[1]), int(match[2]))


def parse_day(text: str) -> int:
    """``"Tue"`` or ``"tuesday"`` → 1 (datetime.weekday())."""
    day = _DAY_NAMES.get(text.strip().casefold())
    if day is None:
        raise Invalid("expected a day like Mon, Tue, ... Sun, got {value}", text)
    return day


def parse_days(items: Iterable[str]) -> tuple[int, ...]:
    """Day names or ranges (``"Mon-Thu"``) → sorted weekday numbers; an empty list is refused."""
    items = list(items)
    days: set[int] = set()
    for item in items:
        first, _, last = item.partition("-")
        start = parse_day(first)
        stop = parse_day(last) if last else start
        if stop < start:
            raise Invalid("day range {value} runs backwards; write it Mon-Fri style", item)
        days.update(range(start, stop + 1))
    if not days:
        raise Invalid("expected at least one working day, got {value}", list(items))
    return tuple(sorted(days))


def working_hours(start: str, end: str, days: tuple[int, ...]) -> WorkingHours:
    """Build WorkingHours, refusing an empty or overnight window (planning assumes one day)."""
    hours = WorkingHours(parse_time(start), parse_time(end), days)
    if hours.end <= hours.start:
        raise Invalid("working hours must end after they start, got {value}", f"{start}-{end}")
    return hours


def parse_date_range(text: str) -> tuple[date, date]:
    """``"2027-02-01..2027-02-14"`` or a single ``"2027-04-05"`` → inclusive (first, last)."""
    first, dots, last = text.strip().partition("..")
    try:
        span = (date.fromisoformat(first.strip()), date.fromisoformat(last.strip() if dots else first.strip()))
    except ValueError:
        raise Invalid("expected a date like 2027-04-05 or a range like 2027-02-01..2027-02-14, got {value}", text) from None
    if span[1] < span[0]:
        raise Invalid("date range {value} ends before it starts; write it first..last", text)
    return span


def parse_date_ranges(text: str) -> tuple[tuple[date, date], ...]:
    """``"2027-02-01..2027-02-14;2027-04-05"``: days and ranges separated by semicolons."""
    return tuple(parse_date_range(part) for part in text.split(";") if part.strip())


def parse_hours_range(text: str, default_days: tuple[int, ...]) -> WorkingHours:
    """``"08:00-18:00"`` or ``"08:00-18:00 Mon-Thu"`` (comma-separated days or ranges)."""
    match = _HOURS.match(text)
    if not match:
        raise Invalid("expected working hours like 08:00-18:00 (optionally followed by days like Mon-Thu), got {value}", text)
    days = parse_days(d for d in re.split(r"[,\s]+", match[3]) if d) if match[3] else default_days
    return working_hours(match[1], match[2], days)


def parse_slot(text: str) -> Slot:
    """``"Tue 15:00"`` → Slot."""
    day, _, clock = text.strip().partition(" ")
    if not clock.strip():
        raise Invalid("expected a day and a time like Tue 15:00, got {value}", text)
    return Slot(parse_day(day), parse_time(clock))


def check_email(text: str) -> str:
    """A bare address: one @, a dot in the domain, no spaces, nothing parseaddr would rewrite."""
    if _PLAIN_EMAIL.fullmatch(text):
        return text
    name, address = parseaddr(text)
    if name or address != text or not _EMAIL.match(text):
        raise Invalid("{value} is not an email address", text)
    return text


_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


def check_language(tag: str) -> str:
    """A BCP 47 language tag (``de``, ``pt-BR``, ``ja``), written the usual way: language in lower
    case, region in upper case. Whether templates exist for it is ``check``'s to say, not an error."""
    if not _LANGUAGE_TAG.fullmatch(tag.strip()):
        raise Invalid("expected a language tag such as en, de, pt-BR or ja, got {value}", tag)
    first, *rest = tag.strip().replace("_", "-").split("-")
    return "-".join([first.lower(), *(p.upper() if len(p) == 2 else p.title() if len(p) == 4 else p for p in rest)])


def check_timezone(name: str) -> str:
    """An IANA zone name that zoneinfo (or tzdata) knows; suggests the nearest name if not."""
    try:
        ZoneInfo(name)
        return name
    except (ZoneInfoNotFoundError, ValueError):
        pass
    hint = did_you_mean(name, sorted(available_timezones()))
    raise Invalid("{value} is not an IANA time zone" + (hint or "; use a name like Europe/London"), name)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the nearest choice, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


class FileTooLarge(ValueError):
    """An input file over its size limit: the wrong file, or one that would exhaust memory."""


def read_bounded(path: Path, limit: int) -> bytes:
    """The file's bytes, reading at most ``limit + 1`` (a device or a huge file is not slurped)."""
    with open(path, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(f"more than {limit:,} bytes, the most a file of this kind may have")
    return data


def display_path(path: Path) -> str:
    """How a file is named in messages: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
