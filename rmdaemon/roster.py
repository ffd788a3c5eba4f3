"""roster.csv → Pair records, with every problem named by row and column as a spreadsheet shows it.

The admin edits the roster in Excel or Google Sheets, so messages count rows the way those do
(the header is row 1) and point at the column to fix. ``read_roster`` returns what it could read
*and* every problem, so ``check`` can print them all; ``load_roster`` is the strict form the
daemon uses.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from rmdaemon.config.parse import (
    FileTooLarge,
    Invalid,
    check_email,
    check_language,
    check_timezone,
    did_you_mean,
    display_path,
    parse_date_ranges,
    parse_hours_range,
    parse_slot,
    read_bounded,
)
from rmdaemon.config.values import ProgramSettings
from rmdaemon.errors import UserError
from rmdaemon.model import CADENCES, PAIR_STATUSES, Pair, Person, RosterStatus, Slot, WorkingHours

REQUIRED_COLUMNS = ("pair_id", "mentor_name", "mentor_email", "mentee_name", "mentee_email", "goal")
OPTIONAL_COLUMNS = (
    "mentor_timezone", "mentee_timezone", "mentor_working_hours", "mentee_working_hours",
    "track", "cadence", "duration_minutes", "preferred_slot", "status",
    "mentor_out_of_office", "mentee_out_of_office", "cohort", "location",
    "mentor_preferred_name", "mentee_preferred_name", "mentor_language", "mentee_language",
)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
DEFAULT_TRACK = "general"
DURATION_RANGE = (10, 240)
MAX_ROSTER_BYTES = 10 * 1024 * 1024  # ~50,000 pairs; a bigger file is the wrong file (or an attack on memory)

T = TypeVar("T")


class _Unreadable(Exception):
    """The file cannot be read as a table at all; carries the one problem to report."""


@dataclass
class _Row:
    """One data row: its cells by column name, and the problems found in it."""

    name: str  # the file, as shown in messages
    number: int  # spreadsheet row, header = 1
    cells: dict[str, str]
    problems: list[str] = field(default_factory=list)

    def problem(self, column: str, message: str) -> None:
        self.problems.append(f"{self.name}: row {self.number}, column {column}: {message}")

    def text(self, column: str) -> str:
        return self.cells.get(column, "")

    def required(self, column: str) -> str:
        value = self.text(column)
        if not value:
            self.problem(column, "is empty; fill it in")
        return value

    def parse(self, column: str, parser: Callable[[str], T], default: T) -> T | None:
        """``parser(cell)`` for a filled cell, ``default`` for an empty one, None (and a problem) if invalid."""
        value = self.text(column)
        if not value:
            return default
        try:
            return parser(value)
        except Invalid as exc:
            self.problem(column, exc.render(repr))
            return None


def read_roster(path: Path, program: ProgramSettings) -> tuple[list[Pair], list[str]]:
    """All pairs that are valid, and every problem in the file (empty when clean)."""
    name = display_path(path)
    try:
        records = _records(path, name)
    except _Unreadable as exc:
        return [], [str(exc)]
    if not records:
        return [], [f"{name}: the file is empty; the first row must be the header: {','.join(REQUIRED_COLUMNS)}"]
    header, body = records[0], records[1:]
    columns, problems = _read_header(name, header)
    if any(column not in columns for column in REQUIRED_COLUMNS):
        return [], problems
    rows = [_Row(name, number, _cells(columns, values, name, number, problems))
            for number, values in enumerate(body, start=2) if any(v.strip() for v in values)]
    _mark_duplicate_ids(rows)
    pairs = [_pair(row, program) for row in rows]
    problems += [p for row in rows for p in row.problems]
    problems += _busy_mentors(name, rows, program.max_pairs_per_mentor)
    return [p for p in pairs if p is not None], problems


def load_roster(path: Path, program: ProgramSettings) -> list[Pair]:
    """The roster's pairs, or a UserError listing every problem."""
    pairs, problems = read_roster(path, program)
    if problems:
        plural = "" if len(problems) == 1 else "s"
        raise UserError(f"{display_path(path)} has {len(problems)} problem{plural}", problems)
    return pairs


def _records(path: Path, name: str) -> list[list[str]]:
    """The CSV records, decoded as UTF-8 (a BOM from Excel's "CSV UTF-8" is fine)."""
    try:
        data = read_bounded(path, MAX_ROSTER_BYTES)
    except FileTooLarge as exc:
        raise _Unreadable(f"{name}: {exc}; check [roster] path points at the roster CSV") from None
    except FileNotFoundError:
        raise _Unreadable(f"{name}: file not found; create it or fix [roster] path in the config") from None
    except OSError as exc:
        raise _Unreadable(f"{name}: cannot read it ({exc.strerror}); check the path and its permissions") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        raise _Unreadable(
            f"{name}: row {row}: byte {exc.start} (0x{data[exc.start]:02X}) is not UTF-8; "
            "save the file as \"CSV UTF-8\" (Excel) or with UTF-8 encoding"
        ) from None
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=separator(text)))
    except csv.Error as exc:
        raise _Unreadable(f"{name}: not a readable CSV file ({exc}); save it as CSV with a header row") from None


SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}


def separator(text: str) -> str:
    """The header row's separator: a comma, or the semicolon that European Excel writes, or a tab
    (a sheet saved as text). Column names contain none of them, so the most frequent one wins."""
    first = text.partition("\n")[0]
    counts = {sep: first.count(sep) for sep in SEPARATORS}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


def column_name(cell: str) -> str:
    """A header cell as people type it, as the column it means: 'Mentor E-mail' → mentor_email."""
    words = re.sub(r"e-mail", "email", cell.strip().lower())
    return re.sub(r"[^a-z0-9]+", "_", words).strip("_")


def notes(path: Path) -> list[str]:
    """What was read differently from the documented form (a separator, header names): worth a
    look, not an error. Empty when the file cannot be read (read_roster says why)."""
    try:
        text = read_bounded(path, MAX_ROSTER_BYTES).decode("utf-8-sig")
    except (OSError, FileTooLarge, UnicodeDecodeError):
        return []
    name, sep = display_path(path), separator(text)
    found = [f"{name}: read as {SEPARATORS[sep]}-separated"] if sep != "," else []
    header = next(csv.reader([text.partition("\n")[0]], delimiter=sep), [])
    renamed = [f"'{cell}' as {column_name(cell)}" for cell in header if cell.strip() and cell.strip().lower() != column_name(cell)]
    if renamed:
        found.append(f"{name}: row 1: read the columns {', '.join(renamed)}")
    return found


def _read_header(name: str, header: list[str]) -> tuple[list[str], list[str]]:
    """Normalised column names and the header's problems (missing, unknown, repeated columns)."""
    columns = [column_name(cell) for cell in header]
    unknown = [c for c in columns if c and c not in COLUMNS]
    problems: list[str] = []
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            guess = did_you_mean(column, unknown).replace("; did you mean", "; is it the column")
            problems.append(f"{name}: row 1: missing required column {column}{guess} (rename it to {column})"
                            if guess else f"{name}: row 1: missing required column {column}; add it to the header")
    for column in unknown:
        if not any(did_you_mean(required, [column]) for required in REQUIRED_COLUMNS if required not in columns):
            hint = did_you_mean(column, COLUMNS) or f"; known columns: {', '.join(COLUMNS)}"
            problems.append(f"{name}: row 1, column {column}: unknown column{hint}")
    for column in sorted({c for c in columns if c and columns.count(c) > 1}):
        problems.append(f"{name}: row 1, column {column}: appears more than once; keep one")
    return columns, problems


def _cells(columns: list[str], values: list[str], name: str, number: int, problems: list[str]) -> dict[str, str]:
    """Cells by column name; extra non-empty cells beyond the header are a problem."""
    extra = [v for v in values[len(columns):] if v.strip()]
    if extra:
        problems.append(f"{name}: row {number}: {len(values)} cells but the header has {len(columns)} columns; "
                        "remove the extra cells or quote values that contain commas")
    return {column: value.strip() for column, value in zip(columns, values) if column}


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.lower() not in choices:
            raise Invalid(f"expected {'|'.join(choices)}, got {{value}}", value)
        return value.lower()

    return parse


def _duration(value: str) -> int:
    low, high = DURATION_RANGE
    if not value.isdigit() or not low <= int(value) <= high:
        raise Invalid(f"expected a whole number of minutes between {low} and {high}, got {{value}}", value)
    return int(value)


def _person(row: _Row, role: str, program: ProgramSettings) -> Person | None:
    """The mentor or mentee of a row; zone and hours default to the programme's."""
    name = row.required(f"{role}_name") and row.parse(f"{role}_name", _name, "")
    email = row.parse(f"{role}_email", check_email, "")
    if email == "":
        row.problem(f"{role}_email", "is empty; fill in the address")
    zone = row.parse(f"{role}_timezone", check_timezone, program.timezone)
    hours = row.parse(f"{role}_working_hours", lambda v: parse_hours_range(v, program.working_hours.days),
                      program.working_hours)
    away = row.parse(f"{role}_out_of_office", parse_date_ranges, ())
    preferred = row.parse(f"{role}_preferred_name", _name, "")
    language = row.parse(f"{role}_language", check_language, "")
    if not (name and email and zone and hours) or away is None or preferred is None or language is None:
        return None
    return Person(name=name, email=email, timezone=zone, working_hours=hours, out_of_office=away,
                  hours_defaulted=not row.text(f"{role}_working_hours"), preferred_name=preferred,
                  language=language or program.language)


def _pair(row: _Row, program: ProgramSettings) -> Pair | None:
    """One Pair, or None when the row has any problem (all of them recorded on the row)."""
    pair_id = row.parse("pair_id", _pair_id, "")
    if pair_id == "":
        row.problem("pair_id", "is empty; give every pair a short unique id like P01")
    mentor, mentee = _person(row, "mentor", program), _person(row, "mentee", program)
    goal = row.required("goal")
    cadence = row.parse("cadence", _choice(CADENCES), program.cadence)
    duration = row.parse("duration_minutes", _duration, program.duration_minutes)
    status = row.parse("status", _choice(PAIR_STATUSES), RosterStatus.ACTIVE)
    slot = row.parse("preferred_slot", parse_slot, None)
    if mentor and mentee and mentor.address == mentee.address:
        row.problem("mentee_email", f"{mentee.email!r} is also the mentor; a pair needs two different people")
    if slot and mentee and duration:
        _check_slot(row, slot, mentee.working_hours, duration)
    if row.problems or not (pair_id and mentor and mentee and cadence and duration and status):
        return None
    track = row.text("track") or DEFAULT_TRACK
    return Pair(pair_id, mentor, mentee, goal, track, cadence, duration, slot, status, row=row.number,
                cohort=row.text("cohort"), location=row.text("location"))


# Unicode's control characters (Cc) and line and paragraph separators (Zl, Zp), as one search
# instead of a category look-up per character of 20,000 names a tick (tests/test_roster.py).
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _name(value: str) -> str:
    """A display name goes into To: headers: a line break there would add headers of its own."""
    if _BREAKS.search(value):
        raise Invalid("{value} contains a line break or control character; names go into email headers, "
                      "so write the name on one line", value)
    return value


def _pair_id(value: str) -> str:
    """Ids end up in commands, file names and mail tokens, so keep them plain."""
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
        raise Invalid("pair_id {value} may only use letters, digits, - and _", value)
    return value


def _check_slot(row: _Row, slot: Slot, hours: WorkingHours, duration: int) -> None:
    """A preferred slot must fit the mentee's own working hours (it is in the mentee's zone)."""
    start = slot.start.hour * 60 + slot.start.minute
    fits = hours.start.hour * 60 + hours.start.minute <= start
    fits = fits and start + duration <= hours.end.hour * 60 + hours.end.minute
    if slot.weekday not in hours.days or not fits:
        row.problem("preferred_slot", f"'{slot}' for {duration} minutes is outside the mentee's working hours "
                                      f"({hours}); pick a slot inside them or change mentee_working_hours")


def _mark_duplicate_ids(rows: list[_Row]) -> None:
    """A repeated pair_id is a problem of the later row (which is then left out); ids differ only in case count."""
    first: dict[str, int] = {}
    for row in rows:
        pair_id = row.text("pair_id").casefold()
        if pair_id in first:
            row.problem("pair_id", f"{row.text('pair_id')!r} is already used on row {first[pair_id]}; "
                                   "every pair needs its own id")
        elif pair_id:
            first[pair_id] = row.number


def _busy_mentors(name: str, rows: list[_Row], limit: int) -> list[str]:
    """Mentors with more active pairs than ``[program] max_pairs_per_mentor`` allows."""
    active: dict[str, list[_Row]] = {}
    for row in rows:
        if row.text("status").lower() in ("", RosterStatus.ACTIVE) and row.text("mentor_email"):
            active.setdefault(row.text("mentor_email").casefold(), []).append(row)
    problems = []
    for mentor_rows in active.values():
        if len(mentor_rows) > limit:
            numbers = ", ".join(str(r.number) for r in mentor_rows)
            ids = ", ".join(r.text("pair_id") for r in mentor_rows)
            problems.append(
                f"{name}: rows {numbers}, column mentor_email: {mentor_rows[0].text('mentor_email')!r} mentors "
                f"{len(mentor_rows)} active pairs ({ids}) but [program] max_pairs_per_mentor is {limit}; "
                "pause or end one of them, or raise max_pairs_per_mentor"
            )
    return problems
