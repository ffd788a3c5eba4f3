"""``rmdaemon report``: the programme's outcomes as Markdown, CSV or one self-contained HTML file.

The figures come from ``rmdaemon.programme.metrics`` (which also feeds the champion's digest, and owns the
privacy rules); this package only reads the inputs once (``data.gather``) and lays them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from rmdaemon.atomic import atomic_write
from rmdaemon import compose
from rmdaemon.config import Settings
from rmdaemon.errors import UserError
from rmdaemon.report import csvfile, html, markdown
from rmdaemon.model import Pair
from rmdaemon.programme.metrics import Snapshot
from rmdaemon.report.data import ReportData, assemble, gather

FORMATS = ("md", "html", "csv")
TABLES = ("pairs", "figures")  # --table: the CSV's one row per pair, or the programme's figures


def parse_day(text: str, flag: str, zone: str) -> datetime:
    """``2027-03-01`` → the start of that day in the programme's time zone."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{flag} {text!r} is not a date; use YYYY-MM-DD, e.g. {flag} 2027-03-01") from None
    return datetime.combine(day, time(0), ZoneInfo(zone))


def period(since: str | None, until: str | None, zone: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """``--since`` is the first day in, ``--until`` the first day out; both in the programme's zone."""
    start = parse_day(since, "--since", zone) if since else None
    end = parse_day(until, "--until", zone) if until else None
    if start is not None and start >= (end or now):
        bound = f"--until {until}" if until else f"today ({now.astimezone(ZoneInfo(zone)):%Y-%m-%d})"
        raise UserError(f"--since {since} is not before {bound}; the period runs from --since up to, "
                        "not including, --until")
    return start, end


def render(report: ReportData, fmt: str, templates: compose.Templates, table: str = "pairs") -> str:
    if fmt == "md":
        return markdown.render(report)
    if fmt == "csv":
        return csvfile.figures(report) if table == "figures" else csvfile.render(report)
    return html.render(report, templates.env)


def build(settings: Settings, fmt: str, now: datetime, since: str | None = None, until: str | None = None,
          track: str | None = None, cohort: str | None = None, table: str = "pairs") -> str:
    """The whole report as text. Templates give report.html and the survey questions' order and wording."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not a report format; use one of {', '.join(FORMATS)}")
    if table != "pairs" and fmt != "csv":
        raise UserError(f"--table {table} is for --format csv; Markdown and HTML carry every table already")
    start, end = period(since, until, settings.program.timezone, now)
    templates = compose.load_templates(settings.templates_dir)
    found = gather(settings, now, start, end, templates.questions, track=track, cohort=cohort)
    return render(found, fmt, templates, table)


def html_for(snap: Snapshot, pairs: Sequence[Pair], settings: Settings, templates: compose.Templates,
             now: datetime) -> str:
    """The whole programme's HTML report from a snapshot the caller holds (the digest attaches it)."""
    return html.render(assemble(snap, pairs, settings, now, None, None, templates.questions), templates.env)


def write(text: str, out: str) -> None:
    """Write the whole report or nothing (atomic_write: a temp file beside the target, then a rename)."""
    try:
        atomic_write(Path(out), text.encode("utf-8"), mode=None)
    except OSError as e:
        raise UserError(f"--out {out}: cannot write the report ({e.strerror}); "
                        "check that the folder exists and is writable") from None
