"""``rmdaemon check``: every problem in config, roster and templates at once, then (``--online``)
one real request to the backend. Returns problems instead of raising so nothing hides another.

Pairs that cannot be booked inside both people's working hours are *warnings*: the files are
valid and every other pair runs (exit 0), but the lines are printed under the OK so the admin
sees what to change; ``status`` shows the same reason once the daemon tried to book the pair.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rmdaemon import compose, planning, roster
from rmdaemon.backends.factory import open_backend
from rmdaemon.clock import system_clock
from rmdaemon.config import ProgramSettings, Settings, find_config, load_settings
from rmdaemon.errors import UserError
from rmdaemon.model import Pair, RosterStatus
from rmdaemon.programme.series import place
from rmdaemon.secret import installation_secret, secret_path
from rmdaemon.store import Store


def check_all(config_arg: str | None, *, online: bool = False) -> tuple[list[str], list[str], str]:
    """(problems, warnings, summary): problems make check fail; warnings only need a look."""
    try:
        settings = load_settings(find_config(config_arg))
    except UserError as e:
        return (e.problems or [e.message]), [], ""
    problems: list[str] = []
    pairs, roster_problems = roster.read_roster(settings.roster_path, settings.program)
    problems += roster_problems
    problems += compose.check_templates(settings.templates_dir)
    problems += place_problems(pairs, settings.program)
    secrets, waiting = secret_problems(settings)
    problems += secrets
    own, where = installation_secret_check(settings)
    problems += own
    if online and not problems:
        try:
            backend = open_backend(settings, system_clock)
        except UserError as e:
            problems.append(str(e))
        else:
            try:
                problems += backend.check_online()
            finally:
                backend.close()
    active = sum(1 for p in pairs if p.status == RosterStatus.ACTIVE)
    taken: Counter = Counter()
    booking = booking_warnings(pairs, settings.program, taken)
    summary = (f"{settings.config_path}: OK — {len(pairs)} pairs ({active} active), backend {settings.backend.kind}"
               + (", online check passed" if online else "")
               + (f"\n  planned spread: {planning.describe_spread(taken)}" if taken else "")
               + f"\n{where}")
    languages = {settings.program.language, *(p.language for pair in pairs for p in pair.people)}
    translations = compose.missing_translations(settings.templates_dir, languages, settings.program.language)
    return problems, waiting + roster.notes(settings.roster_path) + booking + translations, summary


GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
CREDENTIALS = "/run/credentials/"  # systemd's LoadCredential=: exists inside the service only


def secret_problems(settings: Settings) -> tuple[list[str], list[str]]:
    """(problems, warnings) of the chosen backend's secrets and ids, offline: every environment
    variable named is set and every file named is readable (their contents are never shown), and
    Microsoft ids have their form. A systemd credential is only a warning: it exists in the service."""
    kind = settings.backend.kind
    section = getattr(settings.backend, kind, None)
    if not dataclasses.is_dataclass(section):
        return [], []
    where = f"{settings.config_path}: [backend.{kind}]"
    problems, warnings = [], []
    for key, value in ((f.name, getattr(section, f.name)) for f in dataclasses.fields(section)):
        if key.endswith("_env") and value and value not in os.environ:
            problems.append(f"{where} {key}: environment variable {value} is not set; set it for the daemon "
                            "(systemd: Environment= or a credential file instead)")
        elif isinstance(value, Path) and (key.endswith("_file") or key.endswith("_path")) and key != "state_path":
            if not os.access(value, os.R_OK) or not value.is_file():
                missing = f"{where} {key}: {value} is not a readable file"
                (warnings if str(value).startswith(CREDENTIALS) else problems).append(
                    missing + ("; it exists inside the service only (LoadCredential=)" if str(value).startswith(CREDENTIALS)
                               else "; check the path and that the daemon's user may read it"))
        elif key in ("tenant_id", "client_id") and value and not _microsoft_id(key, value):
            problems.append(f"{where} {key}: {value!r} is not a {'tenant' if key == 'tenant_id' else 'client'} id; "
                            "copy the GUID (00000000-0000-0000-0000-000000000000) from the app registration's Overview")
    return problems, warnings


def installation_secret_check(settings: Settings) -> tuple[list[str], str]:
    """(problems, where it lives): the installation's secret as the daemon will read it (present
    once the state knows one, private, well formed, the state's own). It must go with every backup."""
    path = secret_path(settings.storage_path)
    try:
        with Store.open(settings.storage_path, writer=False) as store:
            installation_secret(store)
    except UserError as e:
        return [str(e)], ""
    made = "" if os.path.lexists(path) else "made on the first run; "
    return [], f"installation secret: {path} ({made}keep it with the state in every backup, see docs/security.md)"


def _microsoft_id(key: str, value: str) -> bool:
    """A GUID; a tenant may also be named by its domain (contoso.onmicrosoft.com)."""
    return bool(GUID.fullmatch(value)) or (key == "tenant_id" and "." in value and " " not in value)


def place_problems(pairs: list[Pair], program: ProgramSettings) -> list[str]:
    """A location template that cannot be filled in for some pair, found now rather than when its
    invitation is built (once per source: the config's, or the roster row's)."""
    found: list[str] = []
    for pair in pairs:
        try:
            place(program, pair)
        except UserError as e:
            if e.message not in found:
                found.append(e.message)
    return found


def booking_warnings(pairs: list[Pair], program: ProgramSettings, taken: Counter | None = None) -> list[str]:
    """Active pairs whose series would not lie inside both people's working hours, with the fix.

    Planned the way the booking job plans them (from the programme's start date, without
    free/busy, each pair spread against the ones before it), so what ``check`` warns about is
    what would happen; ``taken`` collects the planned (weekday, time) slots for the spread line.
    """
    taken = Counter() if taken is None else taken
    warnings = []
    for pair in (p for p in pairs if p.status == RosterStatus.ACTIVE):
        zone = ZoneInfo(pair.mentee.timezone)
        not_before = datetime.combine(program.start_date, time(0), zone) - timedelta(seconds=1)
        try:
            plan = planning.plan_series(pair, start_date=program.start_date, sessions=program.sessions,
                                        end_date=program.end_date, not_before=not_before, taken=taken)
            plan, _ = planning.skip_blocked(plan, pair, program.blackout_dates)
            taken[(plan.first_start.weekday(), plan.first_start.time())] += 1
        except UserError as e:
            warnings.append(f"{e.message}, so it will not be booked: " + "; ".join(e.problems))
            continue
        outside = planning.outside_hours(pair, plan)
        if outside:
            days = ", ".join(f"{s:%d %b}" for s in outside[:3]) + (" ..." if len(outside) > 3 else "")
            warnings.append(
                f"pair {pair.pair_id} (roster row {pair.row}): {len(outside)} session(s) fall outside someone's working "
                f"hours when the clocks change ({days}): mentor {pair.mentor.working_hours} {pair.mentor.timezone}, "
                f"mentee {pair.mentee.working_hours} {pair.mentee.timezone}; widen mentor_working_hours or "
                "mentee_working_hours for this pair in the roster")
    return warnings
