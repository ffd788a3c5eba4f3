"""config.toml → frozen, typed Settings. One option table drives parsing, validation and docs.

``OPTIONS`` lists every key once: section, key, converter, default, help. ``load_settings`` walks
the TOML against it, collects *every* problem (unknown keys with a did-you-mean, wrong types,
secrets, cross-key rules) with its line, and only then builds the frozen dataclasses, so the rest
of the code never touches a raw dict. ``reference_markdown`` renders the same table as
docs/config-reference.md (``python -m rmdaemon.config --reference``).

Extending it:
- a new ``[schedule]`` key becomes a job interval in ``ScheduleSettings.jobs`` by itself;
- a backend kind gets options with section ``backend.<kind>``, a frozen dataclass whose fields
  are those keys, a field on ``BackendSettings`` and a line in ``_build_backend``. Its required
  keys are only demanded when ``kind`` names it, and the kind is "available" as soon as its
  section has options.

The small value parsers (times, days, hours ranges, slots, emails, zones) live here too because
the roster reads the same kinds of values and must judge them the same way.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from rmdaemon.errors import UserError
from rmdaemon.model import CADENCES, WEEKDAYS, Slot, WorkingHours

CONFIG_ENV = "RMDAEMON_CONFIG"
DEFAULT_CONFIG = "rmdaemon.toml"
BACKEND_KINDS = ("local", "exchange", "smtp", "graph")


@dataclass(frozen=True)
class ProgramSettings:
    name: str
    timezone: str  # IANA
    cadence: str  # weekly | biweekly | monthly
    duration_minutes: int
    sessions: int | None  # exactly one of sessions / end_date is set
    end_date: date | None
    start_date: date
    working_hours: WorkingHours
    require_opt_in: bool
    agenda_lead_hours: float
    organizer: str  # the programme mailbox address
    organizer_name: str
    champion: str
    max_pairs_per_mentor: int
    # Inclusive (first, last) days on which no session is booked, e.g. public holidays.
    blackout_dates: tuple[tuple[date, date], ...] = ()


@dataclass(frozen=True)
class LocalBackendSettings:
    outbox: Path  # Maildir
    inbox: Path  # Maildir


@dataclass(frozen=True)
class ExchangeBackendSettings:
    """``[backend.exchange]``; the backend adds the mailbox and zone from ``[program]``."""

    service_endpoint: str
    auth: str
    username: str
    password_env: str
    password_file: Path | None
    client_secret_env: str
    tenant_id: str
    client_id: str
    access: str
    version: str
    max_connections: int
    retry_budget_seconds: int
    state_path: Path | None
    processed_category: str


@dataclass(frozen=True)
class SmtpBackendSettings:
    """``[backend.smtp]``: one ordinary mailbox, mail out over SMTP, replies in over IMAP."""

    smtp_host: str
    smtp_port: int
    smtp_tls: str  # starttls | implicit | none
    imap_host: str
    imap_port: int
    imap_tls: str  # implicit | starttls | none
    username: str  # "" → [program] organizer
    password_env: str
    password_file: Path | None
    imap_username: str  # "" → username
    imap_password_env: str  # "" and no file → the shared password
    imap_password_file: Path | None
    folder: str
    processed_keyword: str
    processed_folder: str  # "" → keyword only
    sent_copy: str  # server | bcc | none
    sent_folder: str  # "" → the folder the server marks \Sent
    ca_file: Path | None
    timeout_seconds: int
    state_path: Path | None


@dataclass(frozen=True)
class GraphBackendSettings:
    """``[backend.graph]``: Microsoft 365 through Microsoft Graph, app-only (client credentials)."""

    tenant_id: str
    client_id: str
    client_secret_env: str
    client_secret_file: Path | None
    certificate_path: Path | None  # PEM with the private key and the certificate, or .pfx/.p12
    certificate_password_env: str
    mailbox: str | None  # None → [program] organizer
    authority_host: str
    graph_base: str
    ca_file: Path | None
    state_path: Path | None
    processed_category: str
    retry_budget_seconds: int
    timeout_seconds: int
    messages_per_minute: int


@dataclass(frozen=True)
class BackendSettings:
    kind: str  # local | exchange | smtp | graph
    local: LocalBackendSettings
    exchange: ExchangeBackendSettings | None = None
    smtp: SmtpBackendSettings | None = None
    graph: GraphBackendSettings | None = None


@dataclass(frozen=True)
class ScheduleSettings:
    tick_seconds: int  # how often the loop wakes to see what is due
    jobs: dict[str, int] = field(default_factory=dict)  # job name → minutes between runs


@dataclass(frozen=True)
class NudgeSettings:
    log_window_hours: float  # after a session, how long a log may take before it counts as missed
    at_risk_after: int  # missed sessions in a row → at risk (the pair is nudged)
    fizzling_after: int  # missed sessions in a row → fizzling (the champion is told)


@dataclass(frozen=True)
class DigestSettings:
    weekday: int  # 0 = Monday
    time: time  # in the programme time zone
    admins: tuple[str, ...]  # besides the champion, who may command by email


@dataclass(frozen=True)
class PrivacySettings:
    min_group_size: int  # aggregates over fewer people are suppressed
    retention_days: int  # notes and raw replies are deleted this long after a pair ends


@dataclass(frozen=True)
class SecuritySettings:
    """``[security]``: how far a reply's claims are believed, and how big a message may be."""

    trust_authentication_results: bool = False  # quarantine dmarc=fail / spf=fail from our own server
    authserv_id: str = ""  # the receiving server's name in its Authentication-Results headers
    max_message_bytes: int = 25 * 1024 * 1024  # larger inbox messages are quarantined unread


@dataclass(frozen=True)
class Settings:
    config_path: Path
    program: ProgramSettings
    roster_path: Path
    templates_dir: Path | None  # None → the shipped templates/
    storage_path: Path
    backend: BackendSettings
    schedule: ScheduleSettings
    nudges: NudgeSettings
    digest: DigestSettings
    privacy: PrivacySettings
    security: SecuritySettings = SecuritySettings()


# --- value parsers shared with the roster ---------------------------------------------------


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
    name, address = parseaddr(text)
    if name or address != text or not _EMAIL.match(text):
        raise Invalid("{value} is not an email address", text)
    return text


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


MAX_CONFIG_BYTES = 1024 * 1024  # a real config is a few KB


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


# --- converters: raw TOML value (+ the config's directory) → typed value -------------------


@dataclass(frozen=True)
class Converter:
    expects: str  # for the reference doc, e.g. "integer ≥ 1"
    parse: Callable[[Any, Path], Any]


def _text(value: Any, base: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid("expected a non-empty string, got {value}", value)
    return value.strip()


def _integer(low: int, high: int | None = None) -> Converter:
    span = f"between {low} and {high}" if high is not None else f"≥ {low}"

    def parse(value: Any, base: Path) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok or value < low or (high is not None and value > high):
            unquote = "; write it without quotes" if isinstance(value, str) and value.strip().isdigit() else ""
            raise Invalid(f"expected a whole number {span}, got {{value}}{unquote}", value)
        return int(value)

    return Converter(f"integer {span}", parse)


def _number(low: float) -> Converter:
    def parse(value: Any, base: Path) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
            raise Invalid(f"expected a number ≥ {low:g}, got {{value}}", value)
        return float(value)

    return Converter(f"number ≥ {low:g}", parse)


def _boolean(value: Any, base: Path) -> bool:
    if not isinstance(value, bool):
        raise Invalid("expected true or false (no quotes), got {value}", value)
    return value


def _choice(*choices: str) -> Converter:
    def parse(value: Any, base: Path) -> str:
        if not isinstance(value, str) or value not in choices:
            raise Invalid(f"expected {'|'.join(choices)}, got {{value}}", value)
        return value

    return Converter(" \\| ".join(f"`{c}`" for c in choices), parse)


def _timezone(value: Any, base: Path) -> str:
    return check_timezone(_text(value, base))


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
EMAIL = Converter("email address", _email)
DATE = Converter("date (`YYYY-MM-DD`)", _date)
PATH = Converter("path (relative to the config file)", _path)
HOURS = Converter("inline table `{ start, end, days }`", _hours)
BLACKOUTS = Converter("list of dates and `{ start, end }` ranges", _blackouts)
MINUTES = _integer(1, 24 * 60)


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


# --- the option table ---------------------------------------------------------------------

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


SECTIONS: dict[str, str] = {
    "program": "The programme: who runs it, when sessions happen, and the defaults for every pair.",
    "roster": "Where the pairing roster (CSV) lives.",
    "templates": "Optional override of the shipped Jinja2 templates.",
    "storage": "The state file (TinyDB JSON) the daemon keeps.",
    "backend": "Which mail/calendar system to talk to.",
    "backend.local": "The embedded local backend: Maildir folders on disk.",
    "backend.exchange": "Exchange Server (on-premises) through EWS; see docs/exchange.md.",
    "backend.smtp": "An ordinary mailbox: invitations and mail out over SMTP, replies in over IMAP; see docs/smtp.md.",
    "backend.graph": "Microsoft 365 (Exchange Online) through Microsoft Graph with an app registration; see docs/graph.md.",
    "schedule": "How often the daemon wakes up and how often each job runs (minutes).",
    "nudges": "When a pair counts as at risk or fizzling, and so gets a nudge or the champion's attention.",
    "digest": "The champion's weekly digest, and who may command the programme by email.",
    "privacy": "What the champion and reports may see, and how long personal data is kept.",
    "security": "How far incoming mail is believed, and how large it may be; see docs/security.md.",
}

WORKWEEK_DEFAULT = {"start": "09:00", "end": "17:00", "days": list(WEEKDAYS[:5])}
WORKWEEK = '{ start = "09:00", end = "17:00", days = ["Mon", "Tue", "Wed", "Thu", "Fri"] }'

OPTIONS: tuple[Option, ...] = (
    Option("program", "name", TEXT, REQUIRED, "Programme name, used in subjects and invitations.", '"Reverse Mentoring Pilot"'),
    Option("program", "timezone", TIMEZONE, REQUIRED, "Default IANA time zone for people without one in the roster.", '"Europe/London"'),
    Option("program", "cadence", _choice(*CADENCES), REQUIRED, "Default meeting rhythm for every pair.", '"biweekly"'),
    Option("program", "duration_minutes", _integer(10, 240), REQUIRED, "Default session length in minutes.", "45"),
    Option("program", "sessions", _integer(1, 100), None, "Number of sessions per pair (set this or end_date).", "6"),
    Option("program", "end_date", DATE, None, "Last day of the programme (set this or sessions).", "2027-06-30"),
    Option("program", "start_date", DATE, REQUIRED, "No session is booked before this day.", "2027-01-04"),
    Option("program", "working_hours", HOURS, WORKWEEK_DEFAULT, "Default working hours, in each person's own zone.", WORKWEEK),
    Option("program", "require_opt_in", BOOL, True, "Book only after both people said yes to the consent email.", "true"),
    Option("program", "agenda_lead_hours", _number(0), 24, "How many hours before a session its agenda is sent.", "24"),
    Option("program", "organizer", EMAIL, REQUIRED, "The programme mailbox: sender of all mail, organizer of all meetings.", '"mentoring@example.com"'),
    Option("program", "organizer_name", TEXT, SameAs("name"), "Display name of the organizer mailbox.", '"Mentoring Team"'),
    Option("program", "champion", EMAIL, REQUIRED, "Who receives the programme health digests.", '"champion@example.com"'),
    Option("program", "max_pairs_per_mentor", _integer(1), 1, "How many active pairs one mentor may have.", "1"),
    Option("program", "blackout_dates", BLACKOUTS, [], "Days without sessions (holidays, shutdowns), in each person's own zone: the session is skipped and one is added at the end of a series with a set number of sessions.", "[2027-04-05, { start = 2027-12-24, end = 2027-12-31 }]"),
    Option("roster", "path", PATH, REQUIRED, "The roster CSV.", '"examples/roster.csv"'),
    Option("templates", "dir", PATH, None, "A folder of templates that override the shipped ones, file by file.", '"templates"'),
    Option("storage", "path", PATH, "var/state.json", "The state file; one daemon per file.", '"var/state.json"'),
    Option("backend", "kind", _choice(*BACKEND_KINDS), "local", "Which backend to use; its settings go in [backend.<kind>].", '"local"'),
    Option("backend.local", "outbox", PATH, "var/outbox", "Maildir that outgoing mail is written to.", '"var/outbox"'),
    Option("backend.local", "inbox", PATH, "var/inbox", "Maildir that replies are read from.", '"var/inbox"'),
    Option("backend.exchange", "service_endpoint", URL, REQUIRED, "The EWS URL; set explicitly so no autodiscover requests are sent.", '"https://mail.example.com/EWS/Exchange.asmx"'),
    Option("backend.exchange", "auth", _choice("basic", "ntlm", "oauth2"), "ntlm", "How to authenticate (oauth2 = client credentials).", '"ntlm"'),
    Option("backend.exchange", "username", OPTIONAL_TEXT, "", "Service account for basic/ntlm: a UPN, or DOMAIN\\user.", '"svc-mentoring@corp.example.com"'),
    Option("backend.exchange", "password_env", OPTIONAL_TEXT, "", "Environment variable holding the password (basic/ntlm).", '"RMDAEMON_EWS_PASSWORD"'),
    Option("backend.exchange", "password_file", PATH, None, "Or a file holding the password (e.g. a systemd credential).", '"/run/credentials/rmdaemon.service/ews"'),
    Option("backend.exchange", "client_secret_env", OPTIONAL_TEXT, "", "Environment variable holding the client secret (oauth2).", '"RMDAEMON_EWS_SECRET"'),
    Option("backend.exchange", "tenant_id", OPTIONAL_TEXT, "", "Azure AD tenant id (oauth2).", '"00000000-0000-0000-0000-000000000000"'),
    Option("backend.exchange", "client_id", OPTIONAL_TEXT, "", "App registration id (oauth2).", '"00000000-0000-0000-0000-000000000000"'),
    Option("backend.exchange", "access", _choice("delegate", "impersonation"), "delegate", "delegate: the account has Full Access to the programme mailbox; impersonation: ApplicationImpersonation role.", '"delegate"'),
    Option("backend.exchange", "version", _choice("Exchange2013", "Exchange2013_SP1", "Exchange2016", "Exchange2019"), "Exchange2016", "Server version, set so exchangelib does not probe.", '"Exchange2016"'),
    Option("backend.exchange", "max_connections", _integer(1, 64), 4, "Concurrent HTTP connections to the server.", "4"),
    Option("backend.exchange", "retry_budget_seconds", _integer(0, 3600), 300, "Longest back-off waited for within a tick; longer ones retry next tick.", "300"),
    Option("backend.exchange", "state_path", PATH, None, "Small JSON file for the inbox watermark (default: beside the state file).", '"var/exchange-state.json"'),
    Option("backend.exchange", "processed_category", TEXT, "rmdaemon: processed", "Category put on inbox items once handled.", '"rmdaemon: processed"'),
    Option("backend.smtp", "smtp_host", TEXT, REQUIRED, "SMTP submission server.", '"smtp.gmail.com"'),
    Option("backend.smtp", "smtp_port", _integer(1, 65535), 587, "SMTP port: 587 with starttls, 465 with implicit.", "587"),
    Option("backend.smtp", "smtp_tls", _choice("starttls", "implicit", "none"), "starttls", "How SMTP is encrypted; none only for a relay on the same host.", '"starttls"'),
    Option("backend.smtp", "imap_host", TEXT, REQUIRED, "IMAP server of the programme mailbox.", '"imap.gmail.com"'),
    Option("backend.smtp", "imap_port", _integer(1, 65535), 993, "IMAP port: 993 with implicit, 143 with starttls.", "993"),
    Option("backend.smtp", "imap_tls", _choice("implicit", "starttls", "none"), "implicit", "How IMAP is encrypted.", '"implicit"'),
    Option("backend.smtp", "username", OPTIONAL_TEXT, "", "Login for SMTP and IMAP (default: [program] organizer).", '"mentoring@example.com"'),
    Option("backend.smtp", "password_env", OPTIONAL_TEXT, "", "Environment variable holding the password (an app password); SMTP logs in only when a password is set.", '"RMDAEMON_MAIL_PASSWORD"'),
    Option("backend.smtp", "password_file", PATH, None, "Or a file holding the password (e.g. a systemd credential).", '"/run/credentials/rmdaemon.service/mail"'),
    Option("backend.smtp", "imap_username", OPTIONAL_TEXT, "", "IMAP login when it differs from username.", '"mentoring@example.com"'),
    Option("backend.smtp", "imap_password_env", OPTIONAL_TEXT, "", "Environment variable with the IMAP password when it differs.", '"RMDAEMON_IMAP_PASSWORD"'),
    Option("backend.smtp", "imap_password_file", PATH, None, "Or a file with the IMAP password when it differs.", '"/run/credentials/rmdaemon.service/imap"'),
    Option("backend.smtp", "folder", TEXT, "INBOX", "IMAP folder replies are read from.", '"INBOX"'),
    Option("backend.smtp", "processed_keyword", IMAP_KEYWORD, "$RmdaemonProcessed", "IMAP keyword set on every message once handled (nothing is ever deleted).", '"$RmdaemonProcessed"'),
    Option("backend.smtp", "processed_folder", OPTIONAL_TEXT, "", "Also move handled messages to this folder (must exist); empty: leave them in place.", '"Processed"'),
    Option("backend.smtp", "sent_copy", _choice("server", "bcc", "none"), "server", "Where a copy of each sent message is looked for after a crash, so none is sent twice: server = the server files one in the Sent folder (Gmail, Microsoft 365); bcc = rmdaemon sends one to the mailbox itself; none = no check.", '"server"'),
    Option("backend.smtp", "sent_folder", OPTIONAL_TEXT, "", "Where the server files sent mail (default: the folder it flags as Sent, RFC 6154).", '"Sent"'),
    Option("backend.smtp", "ca_file", PATH, None, "PEM file of the CA(s) to trust instead of the system's, for private CAs.", '"/etc/ssl/private-ca.pem"'),
    Option("backend.smtp", "timeout_seconds", _integer(1, 600), 30, "Network timeout for each SMTP and IMAP operation.", "30"),
    Option("backend.smtp", "state_path", PATH, None, "Journal of sent keys and the inbox watermark (default: smtp-state.jsonl beside the state file).", '"var/smtp-state.jsonl"'),
    Option("backend.graph", "tenant_id", TEXT, REQUIRED, "Directory (tenant) id of the app registration.", '"00000000-0000-0000-0000-000000000000"'),
    Option("backend.graph", "client_id", TEXT, REQUIRED, "Application (client) id of the app registration.", '"00000000-0000-0000-0000-000000000000"'),
    Option("backend.graph", "client_secret_env", OPTIONAL_TEXT, "", "Environment variable holding the client secret (set this, client_secret_file or certificate_path).", '"RMDAEMON_GRAPH_SECRET"'),
    Option("backend.graph", "client_secret_file", PATH, None, "Or a file holding the client secret (e.g. a systemd credential).", '"/run/credentials/rmdaemon.service/graph"'),
    Option("backend.graph", "certificate_path", PATH, None, "Or a certificate credential: a PEM file with the private key and the certificate, or a .pfx/.p12 file.", '"/etc/rmdaemon/graph-app.pem"'),
    Option("backend.graph", "certificate_password_env", OPTIONAL_TEXT, "", "Environment variable holding the password of an encrypted key or .pfx, if any.", '"RMDAEMON_GRAPH_CERT_PASSWORD"'),
    Option("backend.graph", "mailbox", EMAIL, None, "The programme mailbox the app books and sends as (default: [program] organizer).", '"mentoring@example.com"'),
    Option("backend.graph", "authority_host", HTTPS_URL, "https://login.microsoftonline.com", "Where tokens come from; other values serve national clouds (https://login.microsoftonline.us).", '"https://login.microsoftonline.com"'),
    Option("backend.graph", "graph_base", HTTPS_URL, "https://graph.microsoft.com", "The Graph endpoint, without /v1.0; other values serve national clouds (https://graph.microsoft.us).", '"https://graph.microsoft.com"'),
    Option("backend.graph", "ca_file", PATH, None, "PEM file of the CA(s) to trust instead of the system's (a TLS-inspecting proxy's CA).", '"/etc/ssl/private-ca.pem"'),
    Option("backend.graph", "state_path", PATH, None, "Small JSON file for the inbox delta link and the send/booking journal (default: graph-state.json beside the state file).", '"var/graph-state.json"'),
    Option("backend.graph", "processed_category", TEXT, "rmdaemon: processed", "Category put on inbox messages once handled (they are also marked read).", '"rmdaemon: processed"'),
    Option("backend.graph", "retry_budget_seconds", _integer(0, 3600), 300, "Longest Retry-After waited for within a tick; longer throttling retries next tick.", "300"),
    Option("backend.graph", "timeout_seconds", _integer(1, 600), 30, "Network timeout for each request.", "30"),
    Option("backend.graph", "messages_per_minute", _integer(1, 30), 30, "Sending pace; Exchange Online accepts at most 30 messages a minute from one mailbox.", "30"),
    Option("schedule", "tick_seconds", _integer(1, 3600), 60, "How often the loop wakes to see what is due.", "60"),
    Option("schedule", "consent", MINUTES, 15, "Minutes between consent runs (invite, remind, record answers).", "15"),
    Option("schedule", "booking", MINUTES, 15, "Minutes between booking runs (book, update, cancel series).", "15"),
    Option("schedule", "agendas", MINUTES, 15, "Minutes between agenda runs.", "15"),
    Option("schedule", "inbox", MINUTES, 5, "Minutes between reading the inbox.", "5"),
    Option("schedule", "nudges", MINUTES, 60, "Minutes between looking for pairs at risk or fizzling.", "60"),
    Option("schedule", "surveys", MINUTES, 60, "Minutes between milestone checks (surveys, check-ins, the end).", "60"),
    Option("schedule", "outreach", MINUTES, 5, "Minutes between sending check-ins, flags and confirmations.", "5"),
    Option("schedule", "retention", MINUTES, 1440, "Minutes between retention sweeps (deleting old notes of ended pairs).", "1440"),
    Option("schedule", "digest", MINUTES, 15, "Minutes between checks whether the weekly digest is due.", "15"),
    Option("nudges", "log_window_hours", _number(1), 48, "Hours after a session within which a log must arrive, or the session counts as missed.", "48"),
    Option("nudges", "at_risk_after", _integer(1, 20), 1, "Missed sessions in a row that make a pair at risk (the pair gets a friendly nudge).", "1"),
    Option("nudges", "fizzling_after", _integer(1, 20), 2, "Missed sessions in a row that make a pair fizzling (the champion is told).", "2"),
    Option("digest", "weekday", WEEKDAY, "Mon", "Day of the week the champion's digest is sent.", '"Mon"'),
    Option("digest", "time", CLOCK, "09:00", "Time of day (programme time zone) the digest is sent.", '"09:00"'),
    Option("digest", "admins", EMAILS, [], "Addresses besides the champion that may send commands (NUDGE P01, PAUSE P01, ASK-MENTOR P01).", '["hr-admin@example.com"]'),
    Option("privacy", "min_group_size", _integer(1, 100), 5, "Aggregates over fewer people than this are suppressed in digests and reports.", "5"),
    Option("privacy", "retention_days", _integer(1), 365, "Days after a pair ends that its notes and raw replies are kept.", "365"),
    Option("security", "trust_authentication_results", BOOL, False, "The receiving mail server checks SPF/DMARC and adds Authentication-Results headers: a reply it marks dmarc=fail or spf=fail is quarantined even when the From matches.", "false"),
    Option("security", "authserv_id", OPTIONAL_TEXT, "", "The receiving server's authserv-id (the first word of its Authentication-Results headers); headers naming anyone else are ignored. Required with trust_authentication_results.", '"mx.example.com"'),
    Option("security", "max_message_bytes", _integer(1024), 25 * 1024 * 1024, "Inbox messages larger than this are quarantined without being read (the first max_message_bytes are kept; the whole message stays in the mailbox).", "26214400"),
)


def options_by_section() -> dict[str, dict[str, Option]]:
    grouped: dict[str, dict[str, Option]] = {}
    for option in OPTIONS:
        grouped.setdefault(option.section, {})[option.key] = option
    return grouped


def _table_names() -> set[str]:
    """Every dotted name that is a TOML table: the sections and their parents."""
    names: set[str] = set()
    for section in SECTIONS:
        parts = section.split(".")
        names.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return names


def available_backends() -> tuple[str, ...]:
    return tuple(k for k in BACKEND_KINDS if f"backend.{k}" in SECTIONS)


# --- finding and reading the file ---------------------------------------------------------


def find_config(arg: str | None) -> Path:
    """``--config``, else ``$RMDAEMON_CONFIG``, else ``./rmdaemon.toml``; it must exist."""
    if arg:
        path, source = Path(arg), "given with --config"
    elif os.environ.get(CONFIG_ENV):
        path, source = Path(os.environ[CONFIG_ENV]), f"from ${CONFIG_ENV}"
    else:
        path, source = Path(DEFAULT_CONFIG), "the default"
    path = path.expanduser()
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a config file ({source}); give the .toml file in it")
    if not path.is_file():
        fix = ("check the path" if source != "the default" else
               f"give --config PATH or set ${CONFIG_ENV}, or start one here with: rmdaemon init .")
        raise UserError(f"not found: {path} (the config file, {source}); {fix}")
    return path


def _read_text(path: Path) -> str:
    name = display_path(path)
    try:
        data = read_bounded(path, MAX_CONFIG_BYTES)
    except OSError as exc:
        raise UserError(f"cannot read {name}", [f"{name}: {exc.strerror}; check the path and its permissions"]) from None
    except FileTooLarge as exc:
        raise UserError(f"{name} is too large", [f"{name}: {exc}; is --config pointing at the right file?"]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(f"{name} is not UTF-8", [f"{name}: line {line}: byte {exc.start} is not UTF-8; save the file as UTF-8"]) from None


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        name = display_path(path)
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        reason = re.sub(r"\s*\(at line.*\)$", "", str(exc)) or "invalid TOML"
        where = f"line {found[1]}, column {found[2]}: " if found else ""
        raise UserError(f"{name} is not valid TOML", [f"{name}: {where}TOML syntax error: {reason}; fix the syntax there"]) from None


# --- collecting problems ------------------------------------------------------------------


def _line_of(lines: list[str], section: str, key: str | None) -> int | None:
    """Best-effort line number of ``key`` under ``[section]`` (or of the header itself)."""
    header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(re.escape, section.split("."))) + r"\s*\]") if section else None
    key_line = re.compile(r'^\s*"?' + re.escape(key or "") + r'"?\s*=') if key else None
    inside = header is None
    for number, line in enumerate(lines, start=1):
        if header is not None and header.match(line):
            if key_line is None:
                return number
            inside = True
        elif re.match(r"^\s*\[", line):
            inside = False
        elif inside and key_line is not None and key_line.match(line):
            return number
    if key:  # dotted keys or inline tables: any line that assigns the key
        anywhere = re.compile(r'(^|[\s{,.])"?' + re.escape(key) + r'"?\s*=')
        return next((n for n, line in enumerate(lines, start=1) if anywhere.search(line)), None)
    return None


@dataclass
class _Report:
    """Problems found so far, each with its best-effort line; raised all at once."""

    path: Path
    lines: list[str]
    found: list[tuple[int | None, str]] = field(default_factory=list)

    def add(self, section: str, key: str | None, message: str, *, locate: bool = True) -> None:
        where = f"[{section}] {key}" if section and key else f"[{section}]" if section else str(key)
        line = _line_of(self.lines, section, key) if locate else None
        self.found.append((line, f"{where}: {message}"))

    def raise_if_any(self) -> None:
        if not self.found:
            return
        name = display_path(self.path)
        ordered = sorted(self.found, key=lambda item: item[0] or sys.maxsize)
        problems = [f"{name}: line {line}: {text}" if line else f"{name}: {text}" for line, text in ordered]
        plural = "" if len(problems) == 1 else "s"
        raise UserError(f"{name} has {len(problems)} problem{plural}", problems)


_SECRET_KEY = re.compile(r"pass(word|wd|phrase)|secret|token|api_?key|credential", re.IGNORECASE)


def _find_secrets(table: Mapping[str, Any], section: str, report: _Report) -> None:
    """A key like ``password`` holding a value: secrets belong in the environment or a file."""
    for key, value in table.items():
        if isinstance(value, dict):
            _find_secrets(value, f"{section}.{key}" if section else key, report)
        elif _is_secret(key, value):
            report.add(section, key, f"secrets never go in the config file; put it in an environment variable "
                                     f'and name that instead: {key}_env = "RMDAEMON_{key.upper()}" (or {key}_file = "/path/to/file")')


def _is_secret(key: str, value: Any) -> bool:
    named = bool(_SECRET_KEY.search(key)) and not key.endswith(("_env", "_file"))
    return named and isinstance(value, str) and bool(value.strip())


def _collect(table: Mapping[str, Any], section: str, report: _Report, into: dict[tuple[str, str], Any]) -> None:
    """Walk one table: known keys go ``into``, sub-tables recurse, anything else is a problem."""
    options, tables = options_by_section(), _table_names()
    for key, value in table.items():
        name = f"{section}.{key}" if section else key
        if _is_secret(key, value):
            continue  # reported by _find_secrets
        if name in tables:
            if isinstance(value, dict):
                _collect(value, name, report, into)
            else:
                report.add(section, key, f"expected a table [{name}], got {_toml_quote(value)}")
        elif key in options.get(section, {}):
            into[(section, key)] = value
        else:
            _unknown(section, key, value, report)
            if not section:
                into[("", key)] = value  # a stray key; its "missing" twin is not reported again


def _unknown(section: str, key: str, value: Any, report: _Report) -> None:
    name = f"{section}.{key}" if section else key
    if section == "backend" and key in BACKEND_KINDS:
        usable = ", ".join(f"[backend.{k}]" for k in available_backends())
        report.add(name, None, f"backend kind {key!r} is not available in this version; remove this table (available: {usable})")
    elif not section and isinstance(value, dict):
        hint = did_you_mean(f"[{key}]", [f"[{s}]" for s in SECTIONS]) or f"; known sections: {', '.join(SECTIONS)}"
        report.add(key, None, f"unknown section{hint}")
    elif not section:
        homes = [s for s, keys in options_by_section().items() if key in keys]
        hint = f"; move it under [{homes[0]}]" if homes else f"; keys belong in a section: {', '.join(SECTIONS)}"
        report.add("", key, f"key outside any section{hint}")
    else:
        known = [*options_by_section().get(section, {}), *(t.rsplit(".", 1)[1] for t in SECTIONS if t.startswith(section + "."))]
        hint = did_you_mean(key, known) or f"; known keys: {', '.join(known)}"
        report.add(section, key, f"unknown key{hint}")


# --- converting and cross-checking ---------------------------------------------------------


def _section_active(section: str, raw: Mapping[tuple[str, str], Any]) -> bool:
    """``[backend.<kind>]`` only matters when ``kind`` names it; every other section always does."""
    if not section.startswith("backend."):
        return True
    return bool(section.split(".", 1)[1] == raw.get(("backend", "kind"), "local"))


def _convert(raw: Mapping[tuple[str, str], Any], base: Path, report: _Report) -> dict[str, dict[str, Any]]:
    """Every option → its typed value (defaults converted like input); problems into ``report``."""
    values: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for option in OPTIONS:
        given = (option.section, option.key) in raw
        value = raw[(option.section, option.key)] if given else option.default
        if value is REQUIRED:
            if _section_active(option.section, raw) and ("", option.key) not in raw:
                report.add(option.section, option.key, f"missing; add {option.key} = {option.example}", locate=False)
            continue
        if value is None or isinstance(value, SameAs):
            values[option.section][option.key] = value
            continue
        try:
            values[option.section][option.key] = option.convert.parse(value, base)
        except Invalid as exc:
            report.add(option.section, option.key, exc.render(_toml_quote))
    for section in values.values():
        for key, value in section.items():
            if isinstance(value, SameAs):
                section[key] = section.get(value.key)
    return values


def _check_rules(raw: Mapping[tuple[str, str], Any], values: dict[str, dict[str, Any]], report: _Report) -> None:
    """Rules that span keys; judged on what the user wrote, so one typo is not reported twice."""
    has_sessions, has_end = ("program", "sessions") in raw, ("program", "end_date") in raw
    if has_sessions and has_end:
        report.add("program", "end_date", "set either sessions or end_date, not both; remove one of them")
    elif not has_sessions and not has_end:
        report.add("program", None, "set how long the programme runs: sessions = 6 or end_date = 2027-06-30")
    start, end = values["program"].get("start_date"), values["program"].get("end_date")
    if start and end and end < start:
        report.add("program", "end_date", f"end_date {end} is before start_date {start}; move one of them")
    kind = values["backend"].get("kind")
    if kind and kind not in available_backends():
        usable = " or ".join(f'"{k}"' for k in available_backends())
        report.add("backend", "kind", f"backend kind {kind!r} is not available in this version; use kind = {usable}")
    if values["security"].get("trust_authentication_results") and not values["security"].get("authserv_id"):
        report.add("security", "authserv_id", "is needed with trust_authentication_results = true: set it to the name "
                   "your mail server writes first in its Authentication-Results headers, e.g. \"mx.example.com\"")


def _build_backend(values: dict[str, dict[str, Any]]) -> BackendSettings:
    kind = values["backend"]["kind"]
    exchange = ExchangeBackendSettings(**values["backend.exchange"]) if kind == "exchange" else None
    smtp = SmtpBackendSettings(**values["backend.smtp"]) if kind == "smtp" else None
    graph = GraphBackendSettings(**values["backend.graph"]) if kind == "graph" else None
    return BackendSettings(kind=kind, local=LocalBackendSettings(**values["backend.local"]), exchange=exchange,
                           smtp=smtp, graph=graph)


def _build(path: Path, values: dict[str, dict[str, Any]]) -> Settings:
    schedule = dict(values["schedule"])
    tick = schedule.pop("tick_seconds")
    return Settings(
        config_path=path,
        program=ProgramSettings(**values["program"]),
        roster_path=values["roster"]["path"],
        templates_dir=values["templates"]["dir"],
        storage_path=values["storage"]["path"],
        backend=_build_backend(values),
        schedule=ScheduleSettings(tick_seconds=tick, jobs=schedule),
        nudges=NudgeSettings(**values["nudges"]),
        digest=DigestSettings(**values["digest"]),
        privacy=PrivacySettings(**values["privacy"]),
        security=SecuritySettings(**values["security"]),
    )


def load_settings(path: Path) -> Settings:
    """Read, validate and freeze the config; every problem is reported in one UserError."""
    text = _read_text(path)
    table = _parse_toml(path, text)
    report = _Report(path, text.splitlines())
    raw: dict[tuple[str, str], Any] = {}
    _find_secrets(table, "", report)
    _collect(table, "", report, raw)
    values = _convert(raw, path.resolve().parent, report)
    _check_rules(raw, values, report)
    report.raise_if_any()
    return _build(path.resolve(), values)


def _toml_quote(value: Any) -> str:
    """Show a value the way it is written in TOML, so the user recognises it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_quote(v)}" for k, v in value.items()) + " }"
    return str(value)


# --- the reference ------------------------------------------------------------------------


def _default_text(option: Option) -> str:
    if option.default is REQUIRED:
        return "**required**"
    if option.default is None:
        return "not set"
    if isinstance(option.default, SameAs):
        return f"same as `{option.default.key}`"
    return f"`{_toml_quote(option.default)}`"


def reference_markdown() -> str:
    """docs/config-reference.md, rendered from OPTIONS so it cannot drift from the code."""
    out = [
        "# Configuration reference",
        "",
        "Generated from `rmdaemon/config.py` by `python -m rmdaemon.config --reference`; do not edit by hand.",
        "",
        "Relative paths are relative to the config file. Secrets never go in the file: a key such as",
        "`password` holding a value is refused; name an environment variable (`password_env`) or a file",
        "(`password_file`) instead. Unknown sections and keys are errors. `rmdaemon check` reports every",
        "problem at once, with its line.",
    ]
    grouped = options_by_section()
    for section, about in SECTIONS.items():
        out += ["", f"## [{section}]", "", about, "", "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for option in grouped.get(section, {}).values():
            out.append(f"| `{option.key}` | {option.convert.expects} | {_default_text(option)} | {option.help} |")
    out += ["", "`[program]` needs exactly one of `sessions` and `end_date`; `end_date` may not be before `start_date`.",
            f"`[backend] kind` accepts {', '.join(BACKEND_KINDS)}; available in this version: {', '.join(available_backends())}."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["--reference"]:
        print("usage: python -m rmdaemon.config --reference", file=sys.stderr)
        return 2
    sys.stdout.write(reference_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
