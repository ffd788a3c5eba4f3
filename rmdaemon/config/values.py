"""The frozen, typed settings the rest of the code reads; ``load.load_settings`` builds them.

Every section's values arrive converted and checked, so nothing downstream touches a raw dict or
re-validates. The backend sections' dataclasses live in ``backend_sections`` (their fields are
also their keys' declarations).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path

from rmdaemon.config.backend_sections import (
    ExchangeBackendSettings,
    GoogleBackendSettings,
    GraphBackendSettings,
    LocalBackendSettings,
    SmtpBackendSettings,
)
from rmdaemon.model import WorkingHours


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
    # Where every session happens: a room or a URL, maybe a template ({{ pair.mentor.email }}); "" for none.
    location: str = ""
    champion_name: str = ""  # how mail to the champion greets them; empty: by their role
    language: str = "en"  # BCP 47: the e-mails' language for people without one in the roster


@dataclass(frozen=True)
class BackendSettings:
    kind: str  # local | exchange | smtp | graph | google
    local: LocalBackendSettings
    exchange: ExchangeBackendSettings | None = None
    smtp: SmtpBackendSettings | None = None
    graph: GraphBackendSettings | None = None
    google: GoogleBackendSettings | None = None


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
    attach_report: bool = False  # the HTML report rides along with the digest


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
    prune_after_days: int = 180  # [storage]: idempotency rows older than this are pruned (0: never)
