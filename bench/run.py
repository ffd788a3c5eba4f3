"""``make bench``: what a tick costs as the programme grows, next to the floor of the same work.

Prints a table and writes bench/results.json. Figures, not assertions: tests stay deterministic.

    python bench/run.py [--sizes 100,1000,10000] [--skip-exchange] [--skip-growth]

``--skip-growth`` keeps the state-file growth figures (bench/growth.py, minutes) from the last run.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)  # first tick: welcome + booking
T_AGENDA = T0 + timedelta(days=1)  # with a week's lead every pair's first session is due
T_INBOX = T_AGENDA + timedelta(hours=1)  # one reply per pair waiting
ZONES = ("Europe/London", "America/New_York", "Asia/Kolkata", "Europe/Berlin")


def config_text(lead_hours: int) -> str:
    text = (REPO / "config.example.toml").read_text()
    text = text.replace("require_opt_in = true", "require_opt_in = false")
    text = text.replace('cadence = "biweekly"', 'cadence = "weekly"')
    text = text.replace("agenda_lead_hours = 24", f"agenda_lead_hours = {lead_hours}")
    return text.replace("max_pairs_per_mentor = 1", "max_pairs_per_mentor = 1")


def roster(n: int) -> str:
    rows = ["pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,mentor_timezone,mentee_timezone,"
            "mentor_working_hours,track"]
    for i in range(n):
        zone = ZONES[i % 2 * 3]  # London and Berlin pairs: working hours overlap every week
        rows.append(f"P{i:05d},Mentor {i},mentor{i}@example.com,Mentee {i},mentee{i}@example.com,"
                    f"Goal number {i},{zone},Europe/London,08:00-18:00,technology")
    return "\n".join(rows) + "\n"


def setup(root: Path, n: int) -> tuple[Path, Path]:
    (root / "examples").mkdir(parents=True)
    (root / "examples" / "roster.csv").write_text(roster(n))
    first, agenda = root / "first.toml", root / "agenda.toml"
    first.write_text(config_text(24))
    agenda.write_text(config_text(24 * 7))
    return first, agenda


def tick(config: Path, now: datetime) -> dict:
    out = subprocess.run([sys.executable, str(REPO / "bench" / "tick.py"), str(config), now.isoformat()],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), check=False)
    if out.returncode:
        raise SystemExit(f"tick failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def drop_replies(root: Path) -> int:
    """One reply per pair, from its mentor, to the agenda they received (as a mail client writes it)."""
    inbox = root / "var" / "inbox" / "new"
    inbox.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in (root / "var" / "outbox" / "new").iterdir():
        with path.open("rb") as f:  # the headers are enough: parsing 40,000 whole messages took minutes
            head = b"".join(iter(f.readline, b"\r\n"))
        msg = email.message_from_bytes(head + b"\r\n", policy=policy.default)
        if not msg["Message-ID"].startswith("<rm.agenda.") or not str(msg["To"]).startswith("Mentor"):
            continue
        reply = EmailMessage()
        reply["From"], reply["To"] = msg["To"], msg["From"]
        reply["Subject"] = f"Re: {msg['Subject']}"
        reply["Message-ID"] = f"<bench-{n}@example.com>"
        reply["In-Reply-To"] = msg["Message-ID"]
        reply.set_content("Attended: yes\nTopics: shared docs, async updates\nNext steps: try threads\nRating: 4\n\n"
                          f"On Monday, Programme wrote:\n> {msg['Subject']}\n")
        (inbox / f"bench-{n}.eml").write_bytes(reply.as_bytes())
        n += 1
    return n


def floor_agendas(root: Path, n_messages: int, runs: int = 3) -> float:
    """The irreducible agenda work: render N agendas, build N MIME messages with the standard
    library (the same email.mime construction the daemon uses, its fastest form), write N files.
    The best of ``runs``, templates compiled beforehand: the floor is what the work costs at
    the least, so the tick is compared with its most favourable figure."""
    return min(_floor_once(root / f"floor-{run}", root / "agenda.toml", n_messages) for run in range(runs))


def _floor_once(out: Path, config: Path, n_messages: int) -> float:
    from rmdaemon.compose import Envelope, build_email, load_templates, render
    from rmdaemon.config import load_settings
    from rmdaemon.model import Pair, Person

    settings = load_settings(config)
    templates = load_templates()
    hours = settings.program.working_hours
    out.mkdir()
    for name in ("agenda.txt", "agenda.html"):
        templates.env.get_template(name)  # compiled before the clock starts
    started = time.perf_counter()
    for i in range(n_messages):
        person = Person(f"Mentor {i}", f"mentor{i}@example.com", "Europe/London", hours)
        pair = Pair(f"P{i}", person, person, f"Goal number {i}", "technology", "weekly", 45, None, "active")
        content = render(templates, "agenda", {
            "program": settings.program, "pair": pair, "person": person, "other": person, "token": "RM-AAAAAA",
            "number": 1, "total": 6, "when_local": "Mon 11 Jan 2027, 09:00 GMT", "when_other": "same",
            "goal": pair.goal, "starter": "A starter", "next_steps": [], "ask_progress": False})
        envelope = Envelope(key=f"floor:{i}", sender=settings.program.organizer, sender_name="Programme",
                            to=(person,), date=T_AGENDA, message_id=f"<floor.{i}@example.com>")
        (out / f"{i}.eml").write_bytes(build_email(envelope, content))
    return time.perf_counter() - started


def programme_ticks(n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"rm-bench-{n}-") as tmp:
        root = Path(tmp)
        first, agenda = setup(root, n)
        a = tick(first, T0)
        b = tick(agenda, T_AGENDA)
        agendas = b["counts"].get("agendas", {}).get("agenda sent", 0)
        replies = drop_replies(root)
        c = tick(agenda, T_INBOX)
        floor = floor_agendas(root, agendas)
    return {"pairs": n, "first": a, "agenda": b, "ingest": c, "agendas_sent": agendas, "replies": replies,
            "agenda_floor": floor}


def parse_rate(count: int = 10_000) -> dict:
    from rmdaemon.replies import parse_reply

    raws = [p.read_bytes() for p in sorted((REPO / "tests" / "fixtures" / "replies").glob("*.eml"))]
    batch = [raws[i % len(raws)] for i in range(count)]
    started, cpu = time.perf_counter(), time.process_time()
    for raw in batch:
        parse_reply(raw)
    ours, ours_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    for raw in batch:
        msg = email.message_from_bytes(raw, policy=policy.default)
        body = msg.get_body(("plain", "html"))
        if body is not None:
            try:
                body.get_content()
            except (LookupError, ValueError):
                pass
    bare, bare_cpu = time.perf_counter() - started, time.process_time() - cpu
    # CPU seconds as well as wall: on the shared 2-core machine wall time mostly measures the others' load
    return {"messages": count, "per_second": count / ours, "bare_per_second": count / bare, "ratio": ours / bare,
            "cpu_per_second": count / ours_cpu, "bare_cpu_per_second": count / bare_cpu}


def table(results: dict) -> str:
    lines = ["tick cost (local backend)", f"{'pairs':>7} {'tick':<8} {'wall s':>8} {'ms/pair':>8} {'RSS MB':>7} "
             f"{'written/size':>12}"]
    runs = results["ticks"]
    for run in runs:
        for name in ("first", "agenda", "ingest"):
            t = run[name]
            ratio = t["bytes_written"] / t["file_size"] if t["file_size"] else 0
            lines.append(f"{run['pairs']:>7} {name:<8} {t['wall']:>8.2f} {1000 * t['wall'] / run['pairs']:>8.2f} "
                         f"{t['rss_mb']:>7.0f} {ratio:>12.2f}")
    by_size = {r["pairs"]: r for r in runs}
    if 1000 in by_size and 10000 in by_size:
        for name in ("first", "agenda", "ingest"):
            lines.append(f"t(10,000)/t(1,000) {name}: {by_size[10000][name]['wall'] / by_size[1000][name]['wall']:.1f}")
    for run in runs:
        lines.append(f"agenda tick / floor at {run['pairs']} pairs: {run['agenda']['wall'] / run['agenda_floor']:.2f} "
                     f"({run['agendas_sent']} agendas, floor {run['agenda_floor']:.2f} s)")
    p = results["parse"]
    lines.append(f"parse-reply: {p['per_second']:.0f} msg/s; bare stdlib {p['bare_per_second']:.0f} msg/s; "
                 f"ratio {p['ratio']:.1f}; per CPU second {p['cpu_per_second']:.0f} (stdlib {p['bare_cpu_per_second']:.0f})")
    if results.get("growth"):
        from growth import table as growth_table  # noqa: PLC0415

        lines.append(growth_table(results["growth"]))
    for backend in ("exchange", "google"):
        for key, value in (results.get(backend) or {}).items():
            lines.append(f"{backend}: {key}: {value}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--skip-exchange", action="store_true")
    parser.add_argument("--skip-growth", action="store_true")
    args = parser.parse_args()
    results: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
                     "date": datetime.now(timezone.utc).isoformat()}
    sys.path.insert(0, str(REPO / "bench"))
    results["ticks"] = [programme_ticks(int(n)) for n in args.sizes.split(",")]
    results["parse"] = parse_rate()
    if not args.skip_exchange:
        from exchange_rounds import measure  # noqa: PLC0415 - runs the EWS test server from tests/

        results["exchange"] = measure()
        from google_rounds import measure as google_measure  # noqa: PLC0415 - the fake Google Workspace from tests/

        results["google"] = google_measure()
    results_path = REPO / "bench" / "results.json"
    if args.skip_growth:
        results["growth"] = json.loads(results_path.read_text()).get("growth") if results_path.exists() else None
    else:
        from growth import measure as growth  # noqa: PLC0415 - imports this module's roster()

        results["growth"] = growth()
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
