"""The option table: every config key once, with its converter, default and help.

``OPTIONS`` drives the loader (which keys exist, how each is read, what is missing) and the
reference doc. Keys of the sections that become a ``[program]``-style dataclass are rows here;
the backend sections' keys are declared on their dataclasses' fields (``backend_sections``) and
read back as rows, so nothing is written twice. A ``[schedule]`` key becomes a job interval in
``ScheduleSettings.jobs`` by itself; a backend kind is "available" as soon as its section has options.
"""

from __future__ import annotations

from rmdaemon.config.backend_sections import BY_KIND
from rmdaemon.config.convert import (
    BLACKOUTS,
    BOOL,
    CLOCK,
    DATE,
    EMAIL,
    EMAILS,
    HOURS,
    LANGUAGE,
    MINUTES,
    OPTIONAL_TEXT,
    PATH,
    REQUIRED,
    TEXT,
    TIMEZONE,
    WEEKDAY,
    Option,
    SameAs,
    choice,
    integer,
    number,
    section_options,
)
from rmdaemon.model import CADENCES, WEEKDAYS

BACKEND_KINDS = ("local", "exchange", "smtp", "graph", "google")

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
    "backend.google": "Google Workspace through the Calendar and Gmail APIs with a service account; see docs/google.md.",
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
    Option("program", "cadence", choice(*CADENCES), REQUIRED, "Default meeting rhythm for every pair.", '"biweekly"'),
    Option("program", "duration_minutes", integer(10, 240), REQUIRED, "Default session length in minutes.", "45"),
    Option("program", "sessions", integer(1, 100), None, "Number of sessions per pair (set this or end_date).", "6"),
    Option("program", "end_date", DATE, None, "Last day of the programme (set this or sessions).", "2027-06-30"),
    Option("program", "start_date", DATE, REQUIRED, "No session is booked before this day.", "2027-01-04"),
    Option("program", "working_hours", HOURS, WORKWEEK_DEFAULT, "Default working hours, in each person's own zone.", WORKWEEK),
    Option("program", "require_opt_in", BOOL, True, "Book only after both people said yes to the consent email.", "true"),
    Option("program", "agenda_lead_hours", number(0), 24, "How many hours before a session its agenda is sent.", "24"),
    Option("program", "organizer", EMAIL, REQUIRED, "The programme mailbox: sender of all mail, organizer of all meetings.", '"mentoring@example.com"'),
    Option("program", "organizer_name", TEXT, SameAs("name"), "Display name of the organizer mailbox.", '"Mentoring Team"'),
    Option("program", "champion", EMAIL, REQUIRED, "Who receives the programme health digests.", '"champion@example.com"'),
    Option("program", "champion_name", OPTIONAL_TEXT, "", "The champion's name, so digests and alerts greet them by it (e.g. \"Hans Becker\"; the greeting uses the first name, docs/templates.md).", '"Hans Becker"'),
    Option("program", "language", LANGUAGE, "en", "Default language of the e-mails (BCP 47: en, de, fr, es, nl, pt, ja); the roster's mentor_language / mentee_language override it per person.", '"en"'),
    Option("program", "max_pairs_per_mentor", integer(1), 1, "How many active pairs one mentor may have.", "1"),
    Option("program", "blackout_dates", BLACKOUTS, [], "Days without sessions (holidays, shutdowns), in each person's own zone: the session is skipped and one is added at the end of a series with a set number of sessions.", "[2027-04-05, { start = 2027-12-24, end = 2027-12-31 }]"),
    Option("program", "location", OPTIONAL_TEXT, "", "Where sessions happen: a room or a meeting URL, in every invitation and agenda. May be a template, e.g. a personal meeting room per mentor; the roster's location column wins.", '"https://meet.example.com/{{ pair.mentor.email.split(\'@\')[0] }}"'),
    Option("roster", "path", PATH, REQUIRED, "The roster CSV.", '"examples/roster.csv"'),
    Option("templates", "dir", PATH, None, "A folder of templates that override the shipped ones, file by file.", '"templates"'),
    Option("storage", "path", PATH, "var/state.json", "The state file; one daemon per file.", '"var/state.json"'),
    Option("storage", "prune_after_days", integer(0), 180, "Outbox keys and inbox ids older than this many days are pruned from the state file where nothing can be sent or read again because of it (see docs/state.md); at least 30, or 0 to keep them for ever.", "180"),
    Option("backend", "kind", choice(*BACKEND_KINDS), "local", "Which backend to use; its settings go in [backend.<kind>].", '"local"'),
    *(row for kind, settings in BY_KIND.items() for row in section_options(f"backend.{kind}", settings)),
    Option("schedule", "tick_seconds", integer(1, 3600), 60, "How often the loop wakes to see what is due.", "60"),
    Option("schedule", "consent", MINUTES, 15, "Minutes between consent runs (invite, remind, record answers).", "15"),
    Option("schedule", "booking", MINUTES, 15, "Minutes between booking runs (book, update, cancel series).", "15"),
    Option("schedule", "agendas", MINUTES, 15, "Minutes between agenda runs.", "15"),
    Option("schedule", "inbox", MINUTES, 5, "Minutes between reading the inbox.", "5"),
    Option("schedule", "nudges", MINUTES, 60, "Minutes between looking for pairs at risk or fizzling.", "60"),
    Option("schedule", "surveys", MINUTES, 60, "Minutes between milestone checks (surveys, check-ins, the end).", "60"),
    Option("schedule", "outreach", MINUTES, 5, "Minutes between sending check-ins, flags and confirmations.", "5"),
    Option("schedule", "retention", MINUTES, 1440, "Minutes between retention sweeps (deleting old notes of ended pairs).", "1440"),
    Option("schedule", "digest", MINUTES, 15, "Minutes between checks whether the weekly digest is due.", "15"),
    Option("nudges", "log_window_hours", number(1), 48, "Hours after a session within which a log must arrive, or the session counts as missed.", "48"),
    Option("nudges", "at_risk_after", integer(1, 20), 1, "Missed sessions in a row that make a pair at risk (the pair gets a friendly nudge).", "1"),
    Option("nudges", "fizzling_after", integer(1, 20), 2, "Missed sessions in a row that make a pair fizzling (the champion is told).", "2"),
    Option("digest", "weekday", WEEKDAY, "Mon", "Day of the week the champion's digest is sent.", '"Mon"'),
    Option("digest", "time", CLOCK, "09:00", "Time of day (programme time zone) the digest is sent.", '"09:00"'),
    Option("digest", "attach_report", BOOL, False, "Attach the HTML report (the whole programme so far, as `rmdaemon report --format html` gives it) to the weekly digest.", "false"),
    Option("digest", "admins", EMAILS, [], "Addresses besides the champion that may send commands (NUDGE P01, PAUSE P01, ASK-MENTOR P01).", '["hr-admin@example.com"]'),
    Option("privacy", "min_group_size", integer(1, 100), 5, "Aggregates over fewer people than this are suppressed in digests and reports.", "5"),
    Option("privacy", "retention_days", integer(1), 365, "Days after a pair ends that its notes and raw replies are kept.", "365"),
    Option("security", "trust_authentication_results", BOOL, False, "The receiving mail server checks SPF/DMARC and adds Authentication-Results headers: a reply it marks dmarc=fail or spf=fail is quarantined even when the From matches.", "false"),
    Option("security", "authserv_id", OPTIONAL_TEXT, "", "The receiving server's authserv-id (the first word of its Authentication-Results headers); headers naming anyone else are ignored. Required with trust_authentication_results.", '"mx.example.com"'),
    Option("security", "max_message_bytes", integer(1024), 25 * 1024 * 1024, "Inbox messages larger than this are quarantined without being read (the whole message stays in the mailbox). The local backend keeps their first max_message_bytes; IMAP, Exchange and Graph never download them (their size is asked first) and keep their first 64 KiB or the headers the server reports.", "26214400"),
)


def options_by_section() -> dict[str, dict[str, Option]]:
    grouped: dict[str, dict[str, Option]] = {}
    for option in OPTIONS:
        grouped.setdefault(option.section, {})[option.key] = option
    return grouped


def table_names() -> set[str]:
    """Every dotted name that is a TOML table: the sections and their parents."""
    names: set[str] = set()
    for section in SECTIONS:
        parts = section.split(".")
        names.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return names


def available_backends() -> tuple[str, ...]:
    return tuple(k for k in BACKEND_KINDS if f"backend.{k}" in SECTIONS)
