"""A pair's sessions as occurrences of its series, never as a count of logs or of agendas sent.

Pure: from the pair's stored doc (its series, earlier series, calendar answers), its logs and
the clock. Whatever runs happened in between — every minute, once a week, once after a year —
the same inputs give the same list, so a daemon that was down loses no session and invents none.

- **Identity**: (series UID, planned start) — the token, the RECURRENCE-ID.
- **Number**: the place in the pair's programme: every occurrence the pair was invited to, in
  order, skipped and declined ones included (so a SKIP never renumbers the sessions after it);
  blackout days are not sessions (the invitation never offered them). A series replaced by a
  re-plan or a resume keeps its occurrences before the replacement (or its cancellation), and
  the new series numbers on from there.
- **Status**: see ``records.SessionStatus`` and ``status_of``.
- **Logs**: a log belongs to the session its reply names (the agenda's token or thread), else to
  the session whose date its text names, else to the latest session that had started when it was
  written and has no log yet (``attribute``). A late log lands where it belongs.

``docs/sessions.md`` has the decisions and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from rmdaemon import compose, planning
from rmdaemon.programme.series import moves, plan_from_doc, utc_key
from rmdaemon.records import Log, PairRecord, Session, SessionStatus

NOT_SENT = "not sent: the session had started"  # a session record's ``agenda`` when the daemon was down through its lead time
Row = dict  # a session as health and metrics read it: token, pair_id, kind, uid, planned, start, number


def planned_rows(pair: PairRecord) -> list[Row]:
    """Every occurrence the pair was invited to, in order, numbered; independent of the clock.

    ``skipped`` is ``"skip"`` (SKIP) or ``"declined"`` (a declined session nobody moved);
    ``cancelled_at`` is set on the occurrences a cancelled series dropped.
    """
    spans = [*(pair.earlier_series or []), *([pair.series] if pair.series else [])]
    rows: list[Row] = []
    for series in spans:
        if series.get("plan"):
            rows += _series_rows(pair.pair_id, series, start_number=len(rows) + 1)
    return rows


def series_zone(pair: PairRecord) -> str:
    """The zone the pair's series lives in (the mentee's): a date in a log is read in it."""
    series = pair.series or (pair.earlier_series or [{}])[-1]
    return (series.get("plan") or {}).get("tzid", "UTC")


EARLIER_KEYS = ("uid", "token_key", "plan", "exdates", "blackouts", "moved", "repairs", "cancelled", "cancelled_at")


def earlier(series: dict, now: datetime) -> dict:
    """What this module needs of a series replaced at ``now`` (re-planned, or booked
    anew after a pause): its sessions before then remain the pair's sessions."""
    return {**{k: series[k] for k in EARLIER_KEYS if k in series}, "replaced": utc_key(now)}


def _series_rows(pair_id: str, series: dict, start_number: int) -> list[Row]:
    keys = _planned_keys(pair_id, series["plan"])
    tokens = _session_tokens(series["uid"], series.get("token_key"), keys)
    blackouts = set(series.get("blackouts") or ())
    skipped = set(series.get("exdates") or ()) - blackouts
    repairs = series.get("repairs") or {}
    cancelled = series.get("cancelled_at", "") if series.get("cancelled") else None  # "": before cancellations were dated
    cut = min(filter(None, (series.get("replaced"), cancelled)), default=None) if series.get("replaced") else None
    moved: dict[str, str] = {}
    for old, new in moves(series):  # the first move of a start counts (as in ``actual_start``)
        moved.setdefault(utc_key(old), utc_key(new))
    rows: list[Row] = []
    for key, token in zip(keys, tokens):
        if key in blackouts:
            continue
        if cut is not None and key >= cut:
            break
        row: Row = {"token": token, "pair_id": pair_id, "kind": "session",
                    "uid": series["uid"], "planned": key, "start": moved.get(key, key),
                    "number": start_number + len(rows)}
        if key in skipped:
            row["skipped"] = "declined" if (repairs.get(key) or {}).get("state") == "skipped" else "skip"
        if cancelled is not None and (not cancelled or row["start"] > cancelled):
            row["cancelled_at"] = cancelled
        rows.append(row)
    return rows


def _planned_keys(pair_id: str, plan: dict) -> tuple[str, ...]:
    """The store keys (``utc_key``) of every start a stored plan gives. Every job lists every
    pair's sessions, several times a tick: building the plan and formatting its starts each
    time was a tenth of an agenda tick at 10,000 pairs, so they are remembered by what decides them."""
    if plan["count"] is None and not plan["until"]:
        planning.occurrences(plan_from_doc(pair_id, plan))  # refused, naming the pair
    return _keys_of(plan["tzid"], plan["first_start"], plan["rrule"], plan["count"], plan["until"],
                    plan["duration_minutes"], plan["cadence"])


@lru_cache(maxsize=4096)
def _keys_of(tzid: str, first_start: str, rrule: str, count: int | None, until: str | None, duration: int,
             cadence: str) -> tuple[str, ...]:
    plan = plan_from_doc("", {"tzid": tzid, "first_start": first_start, "rrule": rrule, "count": count, "until": until,
                              "duration_minutes": duration, "cadence": cadence})
    return tuple(utc_key(start) for start in planning.occurrences(plan))


@lru_cache(maxsize=1 << 15)
def _session_tokens(uid: str, token_key: str | None, keys: tuple[str, ...]) -> tuple[str, ...]:
    """``compose.session_token`` of each planned start (``keys``) of a series, remembered per series
    (one entry a series instead of one a session in ``compose.token``'s memory, which they bypass)."""
    return compose.tokens([f"{uid}|{key}" for key in keys], token_key)


def total(rows: Sequence[Row]) -> int:
    """How many sessions the programme gives the pair: the number of its last one not cancelled."""
    return max((r["number"] for r in rows if "cancelled_at" not in r), default=0)


# --------------------------------------------------------------------------------------------
# Which session a log is about


_ISO_DATE = re.compile(r"\b(20\d\d)-(\d\d)-(\d\d)\b")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_MONTH = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?\.?\s+(" + "|".join(_MONTHS) + r")[a-z]*\b"
                        r"|\b(" + "|".join(_MONTHS) + r")[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b", re.IGNORECASE)


def named_dates(text: str, year: int) -> set[date]:
    """Dates a log's text names: ``2027-01-25``, ``25 Jan``, ``January 25th`` (the year of the log)."""
    found: set[date] = set()
    for y, m, d in _ISO_DATE.findall(text or ""):
        found |= _date(int(y), int(m), int(d))
    for match in _DAY_MONTH.finditer(text or ""):
        day, month = (match[1], match[2]) if match[1] else (match[4], match[3])
        found |= _date(year, _MONTHS.index(month[:3].lower()) + 1, int(day))
    return found


def _date(y: int, m: int, d: int) -> set[date]:
    try:
        return {date(y, m, d)}
    except ValueError:
        return set()


def attribute(rows: Sequence[Row], taken: set[str], at: datetime, token: str | None, text: str, tzid: str) -> Row | None:
    """The session a log written at ``at`` is about: the one its token names, else the one whose
    date (in ``tzid``) its text names, else the latest that had started by ``at`` and has no log
    yet (``taken``: tokens already logged), else the latest that had started. None before any."""
    by_token = {r["token"]: r for r in rows}
    if token in by_token:
        return by_token[token]
    started = [r for r in rows if r["start"] <= utc_key(at) and not r.get("skipped") and "cancelled_at" not in r]
    zone = ZoneInfo(tzid)
    dates = named_dates(text, at.astimezone(zone).year)
    named = [r for r in started if datetime.fromisoformat(r["start"]).astimezone(zone).date() in dates]
    if named:
        return named[-1]
    free = [r for r in started if r["token"] not in taken]
    return (free or started or [None])[-1]


def logs_by_session(rows: Sequence[Row], logs: Iterable[Log], tzid: str) -> dict[str, list[Log]]:
    """Each session's logs (by token), attributing in the order they were written."""
    found: dict[str, list[Log]] = {}
    for log in sorted(logs, key=written):
        row = attribute(rows, set(found), datetime.fromisoformat(written(log)), log.token, log.body or "", tzid)
        if row is not None:
            found.setdefault(row["token"], []).append(log)
    return found


def written(log: Log) -> str:
    """When a log was written: its Date header where it was kept (and not in the future of its
    arrival), else when it was read."""
    return min(filter(None, (log.written, log.received)))


# --------------------------------------------------------------------------------------------
# What became of each session


def status_of(row: Row, logs: Sequence[Log], declined_by: Sequence[str], now: datetime,
              window: timedelta) -> SessionStatus:
    """One session's status at ``now``. In order: a cancelled series' session is cancelled, a
    SKIP skipped, a declined one nobody moved declined; a log saying it happened makes it held;
    the log window closing without one, missed; otherwise moved or planned."""
    start = datetime.fromisoformat(row["start"])
    if "cancelled_at" in row and (row["cancelled_at"] or start > now):
        return SessionStatus.CANCELLED
    if row.get("skipped") == "skip":
        return SessionStatus.SKIPPED
    if row.get("skipped") == "declined":
        return SessionStatus.DECLINED
    if start <= now and any(log.attended for log in logs):
        return SessionStatus.HELD
    moved = row["start"] != row.get("planned", row["start"])
    if declined_by and not moved:
        return SessionStatus.DECLINED
    if start + window <= now:  # "we didn't meet" from one of them waits too: the other may say they did
        return SessionStatus.MISSED
    return SessionStatus.MOVED if moved else SessionStatus.PLANNED


def pair_sessions(pair: PairRecord, people: Sequence[str], logs: Iterable[Log], now: datetime,
                  window: timedelta) -> list[Session]:
    """Every session of the pair with its status at ``now``."""
    return statuses(planned_rows(pair), pair, people, logs, now, window)


def statuses(rows: Sequence[Row], pair: PairRecord, people: Sequence[str], logs: Iterable[Log], now: datetime,
             window: timedelta) -> list[Session]:
    """``rows`` (one pair's, from ``planned_rows``) with their status at ``now``; logs not yet
    read at ``now`` do not count."""
    stamp = utc_key(now)
    by_token = logs_by_session(rows, [log for log in logs if log.received <= stamp], series_zone(pair))
    out = []
    for row in rows:
        mine = by_token.get(row["token"], [])
        planned = row.get("planned") or row["start"]
        declined = [p for p in people if pair.answer(p, planned) == "DECLINED"]
        out.append(Session(pair_id=row["pair_id"], uid=row.get("uid", ""), token=row["token"],
                           planned=datetime.fromisoformat(planned), start=datetime.fromisoformat(row["start"]),
                           number=row["number"], status=status_of(row, mine, declined, now, window),
                           logged_by=tuple(dict.fromkeys(log.sender for log in mine))))
    return out
