"""How big the state file gets: two years of a 1,000-pair programme, with and without pruning.

    python bench/growth.py [--pairs 1000] [--years 2] [--windows 0,180]

Real ticks (every job, in this process) on the local backend against an injected clock. To keep
it to minutes, not an hour, the series are monthly (24 sessions a pair until ``end_date``, two
years on) and the daemon runs every four weeks instead of every minute, with
``agenda_lead_hours`` five weeks so each tick sends every pair's next agendas. After each tick a
relay takes the outbox away, and the mentor of four pairs in five logs the session by replying
to their agenda (so the others get nudges and the champion alerts). Prints the state file's size and rows per table at the end of each year,
as it is and as each ``[storage] prune_after_days`` would leave it (one simulation: pruning is a
function of the state and the clock); the figures go into bench/results.json under "growth".
"""

from __future__ import annotations

import argparse
import email
import gc
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from run import roster  # noqa: E402 - the bench's own synthetic roster

from rmdaemon import daemon  # noqa: E402
from rmdaemon.backends.local import LocalBackend  # noqa: E402
from rmdaemon.clock import fixed_clock  # noqa: E402
from rmdaemon.config import load_settings  # noqa: E402
from rmdaemon.programme.pruning import prune  # noqa: E402
from rmdaemon.store import Store  # noqa: E402

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
STEP = timedelta(days=28)  # one tick every four weeks


def config_text(years: int, prune_days: int) -> str:
    """The example config: no opt-in step, monthly series until ``end_date``, agendas five weeks ahead."""
    text = (REPO / "config.example.toml").read_text()
    end = T0.date().replace(year=T0.year + years)
    replaced = {"require_opt_in = true": "require_opt_in = false", "agenda_lead_hours = 24": "agenda_lead_hours = 840",
                'cadence = "biweekly"': 'cadence = "monthly"',
                "sessions = 6": f"end_date = {end.isoformat()}", "prune_after_days = 180": f"prune_after_days = {prune_days}"}
    for old, new in replaced.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def answer_agendas(root: Path, now: datetime, start: int) -> int:
    """Four mentors in five answer the agenda they got with a log; then the relay empties the
    outbox (and the handled inbox mail is cleared away). Returns the agendas to mentors counted."""
    inbox = root / "var" / "inbox"
    (inbox / "new").mkdir(parents=True, exist_ok=True)
    n = start
    for path in sorted((root / "var" / "outbox" / "new").iterdir()):
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        path.unlink()
        if not msg["Message-ID"].startswith("<rm.agenda.") or not str(msg["To"]).startswith("Mentor"):
            continue
        n += 1
        if n % 5 == 0:
            continue
        reply = EmailMessage()
        reply["From"], reply["To"] = msg["To"], msg["From"]
        reply["Subject"] = f"Re: {msg['Subject']}"
        reply["Date"] = format_datetime(now)
        reply["Message-ID"] = f"<growth-{n}@example.com>"
        reply["In-Reply-To"] = msg["Message-ID"]
        reply.set_content("Attended: yes\nTopics: shared docs, async updates\nNext steps: try threads\nRating: 4\n")
        (inbox / "new" / f"growth-{n}.eml").write_bytes(reply.as_bytes())
    for path in (inbox / "cur").glob("*"):
        path.unlink()
    return n


def table_rows(path: Path) -> dict[str, int]:
    data = json.loads(path.read_bytes())
    return {name: len(rows) for name, rows in data.items() if not name.startswith("_")}


def pruned_copy(state: Path, now: datetime, days: int) -> Path:
    """The state as a daemon with ``prune_after_days = days`` would have it at ``now``. Pruning is a
    function of the state and the clock, and the mail a pruned state leads to is the same mail
    (tests/test_pruning.py), so one simulation gives both figures."""
    copy = state.with_name(f"pruned-{days}.json")
    shutil.copyfile(state, copy)
    with Store.open(copy) as store:
        prune(store, now, days)
    return copy


def simulate(pairs: int, years: int, windows: tuple[int, ...]) -> dict:
    """Ticks every four weeks from the kickoffs to past the end; at each year's end, the file's size
    and rows as it is (nothing pruned) and as each pruning window would leave it."""
    root = Path(tempfile.mkdtemp(prefix="rm-growth-"))
    try:
        (root / "examples").mkdir()
        (root / "examples" / "roster.csv").write_text(roster(pairs))
        config = root / "rmdaemon.toml"
        config.write_text(config_text(years, 0))
        settings = load_settings(config)
        ticks = years * 13 + 1
        marks, agendas, started = [], 0, time.perf_counter()
        for tick in range(ticks):
            now = T0 + tick * STEP
            backend = LocalBackend(settings.backend.local.outbox, settings.backend.local.inbox, fixed_clock(now))
            with Store.open(settings.storage_path) as store:
                daemon.tick(store, backend, settings, now, only_due=False)
            agendas = answer_agendas(root, now + STEP - timedelta(hours=1), agendas)
            gc.collect()
            if (tick + 1) % 13 == 0 or tick == ticks - 1:
                files = {days: pruned_copy(settings.storage_path, now, days) if days else settings.storage_path
                         for days in windows}
                marks.append({"days": (now - T0).days, "seconds": round(time.perf_counter() - started, 1),
                              "by_window": {str(days): {"bytes": path.stat().st_size, "rows": table_rows(path)}
                                            for days, path in files.items()}})
                print(json.dumps(marks[-1]), flush=True)
        return {"pairs": pairs, "ticks": ticks, "mentor_agendas": agendas, "marks": marks}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measure(pairs: int = 1000, years: int = 2, windows: tuple[int, ...] = (0, 180)) -> dict:
    return {"what": f"{pairs} pairs, monthly sessions for {years} years, a tick every four weeks (agenda lead five "
                    "weeks); prune_after_days 0 = nothing pruned",
            **simulate(pairs, years, windows)}


def table(growth: dict) -> str:
    lines = [f"state file growth: {growth['what']}"]
    for mark in growth["marks"]:
        for days, figures in mark["by_window"].items():
            rows = ", ".join(f"{name} {count:,}" for name, count in sorted(figures["rows"].items()))
            lines.append(f"day {mark['days']}, prune_after_days = {days}: {figures['bytes'] / 1e6:.1f} MB ({rows})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--years", type=int, default=2)
    parser.add_argument("--windows", default="0,180")
    args = parser.parse_args()
    growth = measure(args.pairs, args.years, tuple(int(w) for w in args.windows.split(",")))
    results_path = REPO / "bench" / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["growth"] = growth
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    print(table(growth))


if __name__ == "__main__":
    main()
