"""``rmdaemon status``: each pair's state, next session, sessions held and last log — from a
read-only view of the store, safe while the daemon runs."""

from __future__ import annotations

from datetime import datetime

from rmdaemon import phrases, planning
from rmdaemon.programme import health
from rmdaemon.config import Settings
from rmdaemon.records import ACTIVE, INBOX, PAIRS, SESSIONS, index, InboxOutcome, InboxRow, PairRecord, logs, pair_records
from rmdaemon.programme.series import next_session, taken_slots
from rmdaemon.programme.pruning import pruned_count
from rmdaemon.programme.sessions import NOT_SENT
from rmdaemon.model import WEEKDAYS, Pair, RosterStatus
from rmdaemon.store import Store

def pair_rows(store: Store, pairs: list[Pair], settings: Settings, now: datetime) -> list[dict]:
    state = pair_records(store)
    records = health.gather(logs(store))
    agendas = {d["token"]: d for d in store.rows(SESSIONS).values() if d.get("kind") == "session"}
    rows = []
    for pair in pairs:
        doc = state.get(pair.pair_id)
        listed = health.pair_sessions(pair, doc, records.get(pair.pair_id), now, settings.nudges)
        h = health.pair_health(pair, doc, records.get(pair.pair_id), now, settings.nudges, listed)
        live = doc is not None and doc.state == ACTIVE and pair.status == RosterStatus.ACTIVE
        found = next_session(doc.series, pair.pair_id, now) if live else None
        nxt = found[1] if found else None  # when it happens: a moved session shows its new time
        rows.append({
            "pair_id": pair.pair_id, "mentor": pair.mentor.email, "mentee": pair.mentee.email,
            "mentor_name": pair.mentor.name, "mentee_name": pair.mentee.name,
            "state": _label(h.state, doc),
            "next_session": nxt.isoformat() if nxt else None,
            "next_session_local": phrases.local_time(nxt, pair.mentee.timezone) if nxt else None,
            "sessions_held": h.held, "missed_in_a_row": h.missed_in_a_row,
            "last_log": h.last_log,
            "problems": [*doc.errors, *(doc.send_errors or []), *_calendar_problems(pair, doc)] if doc else [],
            "sessions": [dict(s.as_json(), agenda=_agenda(agendas.get(s.token))) for s in listed],
        })
    return rows


def _agenda(record: dict | None) -> str | None:
    """"sent" (or on its way), "not sent" (the session had started when the daemon came back), or None."""
    if record is None:
        return None
    return "not sent" if record.get("agenda") == NOT_SENT else "sent" if record.get("starter") else None


def _label(state: str, doc: PairRecord | None) -> str:
    """An active pair that booking could not place says so instead of looking fine."""
    if state == ACTIVE and doc is not None and doc.errors and doc.live_series is None:
        return "not bookable"
    return state


def _calendar_problems(pair: Pair, doc: PairRecord) -> list[str]:
    """What people said in their calendars that needs a person, not the daemon, to act."""
    return [f"{p.name} <{p.email}> declined the whole series in their calendar; ask which time works and set "
            f"preferred_slot (or {'mentor' if p is pair.mentor else 'mentee'}_working_hours) for {pair.pair_id} in the roster"
            for p in pair.people if doc.answer(p.address, "series") == "DECLINED"] + _outsiders(pair, doc)


def _outsiders(pair: Pair, doc: PairRecord) -> list[str]:
    """People outside the pair the invitation reached (a forward, a delegate): never added, shown here."""
    found = []
    for o in (doc.series or {}).get("outsiders", []):
        by = pair.member(o["by"]) if o.get("by") else None
        found.append(f"the invitation was {o['kind']}{f' by {by.name}' if by else ''} to {o['address']}, who is not "
                     f"part of the pair; they were not added and both were told")
    return found


def summary(store: Store, job_names: list[str]) -> dict:
    inbox = [InboxRow.from_doc(doc) for doc in store.rows(INBOX).values()]
    return {"quarantined": sum(1 for row in inbox if row.outcome == InboxOutcome.QUARANTINE),
            "messages_processed": len(inbox) + pruned_count(store, INBOX),
            "clock": {"latest_run": store.meta("clock:latest"), "went_back": store.meta("clock:went_back")},
            "jobs": {name: store.meta(f"job:{name}") or {} for name in job_names},
            "spread": _spread(store)}


def _spread(store: Store) -> dict:
    """Live series per weekday and per hour of their own zone: whether pairs crowd one morning."""
    taken = taken_slots(index(store, PAIRS, "pair_id"))
    days, hours = planning.day_hour_counts(taken)
    return {"by_weekday": {WEEKDAYS[d]: n for d, n in sorted(days.items())},
            "by_hour": {f"{h:02d}": n for h, n in sorted(hours.items())}, "text": planning.describe_spread(taken)}


def render_table(rows: list[dict]) -> str:
    head = ("PAIR", "MENTOR", "MENTEE", "STATE", "NEXT SESSION (mentee's time)", "HELD", "LAST LOG")
    body = [(r["pair_id"], r["mentor_name"], r["mentee_name"], r["state"], r["next_session_local"] or "-",
             str(r["sessions_held"]), (r["last_log"] or "-")[:10]) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in (head, *body)]
    for r in rows:
        lines += [f"  {r['pair_id']}: {p}" for p in r["problems"]]
    return "\n".join(lines)


def render_jobs(extra: dict, zone: str) -> str:
    """The jobs' last runs in the programme's zone, to the minute, as an admin reads a clock."""
    def local(stamp: str | None) -> str:
        return phrases.local_time(datetime.fromisoformat(stamp), zone) if stamp else "never"

    lines = [f"quarantined messages: {extra['quarantined']}", f"sessions spread: {extra['spread']['text']}"]
    back = (extra.get("clock") or {}).get("went_back")
    if back:
        lines.append(f"clock went back: it read {local(back['now'])}, before the latest run at {local(back['latest'])}; "
                     "nothing ran then (jobs run again once the clock is later)")
    for name, job in extra["jobs"].items():
        error = f"; last error {job['last_error']} at {local(job['error_at'])}" if job.get("failures") else ""
        lines.append(f"job {name}: last ok {local(job.get('last_ok'))}{error}")
        lines += [f"  could not handle {problem}" for problem in job.get("pair_errors", [])]  # ran, not for these pairs
        lines += [f"  waiting: {what}" for what in job.get("waiting", [])]  # kept until the installation is fixed
    return "\n".join(lines)
