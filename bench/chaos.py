"""Chaos harness: a simulated programme run by the real daemon, killed with SIGKILL at random.

    python bench/chaos.py --kills 200 --pairs 50 --weeks 8 --seed 1 [--backend local|exchange]

Every simulated step (12 hours by default) is one ``python -m rmdaemon --config … run --now …``
in a subprocess. Before the clean run of a step, some runs of the same step are killed with
``kill -9`` at seeded random moments — at a random time into the run, right after the daemon
wrote a file or the Exchange server answered a request, or while the server holds back the
answer to a write it has carried out — and restarted. Scripted
people (``chaos_world``) then read the mail and answer. With ``--backend exchange`` the daemon
talks to the EWS test server (``tests/servers/ews``), which also fails at random: ErrorServerBusy
with a back-off hint, HTTP 500 and 503, dropped connections and slow answers (exchangelib's
own timeout is fixed at 120 s, so "past the timeout" is played by killing the daemon while
a slow answer is still being worked on: the server finishes what the dead client asked).

At the end, after two clean runs, it checks what users rely on (the README's promises):

- duplicates: an email or a calendar message sent twice (same idempotency key, or the same
  content to the same person), a series booked twice, an inbox message acted on twice;
- lost: a dropped reply without its one inbox record or still unprocessed, an email recorded
  as sent that never left, a series whose latest version never reached the calendars;
- corrupt: the state file does not load, or breaks ``rmdaemon.programme.consistency``.

It prints one line, ``kills=N faults=N duplicates=0 lost=0 corrupt=0``, the details on stderr,
and exits 1 when any count is not 0.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

from chaos_world import (  # noqa: E402  (the path above first)
    CHAMPION, ORGANIZER, PASSWORD_ENV, SERVICE_USER, ExchangeMail, LocalMail, People, config_toml, people_of,
    roster_csv, steps,
)
from rmdaemon import planning  # noqa: E402
from rmdaemon.programme import consistency  # noqa: E402
from rmdaemon.daemon import JOBS  # noqa: E402
from rmdaemon.jobs.inbox import message_key  # noqa: E402
from rmdaemon.programme.series import exdates, plan_from_doc  # noqa: E402

T0 = datetime(2027, 1, 4, 7, 0, tzinfo=timezone.utc)
PASSWORD = "chaos-Passw0rd-not-a-secret"
FAULT_KINDS = ("busy", "http500", "http503", "drop", "slow")
# Writes whose answer the EWS test server can hold back (``EwsServer.hold``) while the client is killed.
HELD_OPERATIONS = ("CreateItem", "UpdateItem", "DeleteItem")


@dataclass
class Tally:
    kills: int = 0
    runs: int = 0
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    seen: str = ""  # what the programme went through, so a clean line means something

    def line(self, faults: int) -> str:
        return (f"kills={self.kills} faults={faults} duplicates={len(self.duplicates)} lost={len(self.lost)} "
                f"corrupt={len(self.corrupt)}")


# --------------------------------------------------------------------------------------------
# Running and killing the daemon


class Daemon:
    """``rmdaemon run --now`` in a subprocess; killed at a random moment or left to finish."""

    def __init__(self, root: Path, rng: random.Random, server=None) -> None:  # type: ignore[no-untyped-def]
        self.root, self.rng, self.server = root, rng, server
        self.env = dict(os.environ, PYTHONPATH=str(REPO), **{PASSWORD_ENV: PASSWORD})
        self.env.pop("RMDAEMON_CONFIG", None)
        self.typical = 1.0  # seconds a clean run takes, learned as the programme grows
        self.log = root / "runs.log"

    def start(self, now: datetime) -> subprocess.Popen:
        with open(self.log, "ab") as log:
            log.write(f"--- run --now {now.isoformat()}\n".encode())
            return subprocess.Popen([sys.executable, "-m", "rmdaemon", "--config", str(self.root / "rmdaemon.toml"),
                                     "run", "--now", now.isoformat()], stdout=log, stderr=log, env=self.env)

    def clean(self, now: datetime) -> None:
        began = time.monotonic()
        code = self.start(now).wait(timeout=600)
        if code != 0:
            raise SystemExit(f"rmdaemon run --now {now.isoformat()} exited {code}; see {self.log}")
        self.typical = 0.7 * self.typical + 0.3 * (time.monotonic() - began)

    def killed(self, now: datetime) -> bool:
        """Start a run and kill -9 it; False when it finished first (then it must have exited 0)."""
        proc = self.start(now)
        trigger, after = self._trigger()
        try:
            deadline = time.monotonic() + 600
            while proc.poll() is None and time.monotonic() < deadline:
                if trigger():
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    return True
                time.sleep(0.001)
        finally:
            after()
        if proc.returncode not in (0, None):
            raise SystemExit(f"rmdaemon run --now {now.isoformat()} exited {proc.returncode}; see {self.log}")
        return False

    def _trigger(self) -> tuple[Callable[[], bool], Callable[[], None]]:
        """When to kill (and what to tidy afterwards): at a random time into the run, right after
        the n-th thing it did, or (Exchange) once the server carried out a write whose answer it holds."""
        began = time.monotonic()
        choice = self.rng.random()
        nothing = lambda: None  # noqa: E731
        if choice < 0.35:
            at = self.rng.uniform(0.15, 1.1) * self.typical
            return (lambda: time.monotonic() - began >= at), nothing
        if self.server is not None and hasattr(self.server, "hold") and choice < 0.55:
            fault = self.server.hold(self.rng.choice(HELD_OPERATIONS))
            return fault.reached.is_set, lambda: (fault.released.set(), self.server.faults.clear())
        wanted = self.rng.randint(1, 12)
        if self.server is not None and choice < 0.8:
            base = sum(self.server.counts.values())
            return (lambda: sum(self.server.counts.values()) - base >= wanted), nothing
        return self._after_writes(wanted), nothing

    def _after_writes(self, wanted: int) -> Callable[[], bool]:
        """Fires once the daemon put down ``wanted`` things: outbox files, inbox moves, state replacements."""
        seen = {"last": self._files(), "changes": 0}

        def fire() -> bool:
            now = self._files()
            seen["changes"] += sum(1 for a, b in zip(now, seen["last"]) if a != b)
            seen["last"] = now
            return seen["changes"] >= wanted

        return fire

    def _files(self) -> tuple[int, int, int]:
        var = self.root / "var"
        outbox, cur = var / "outbox" / "new", var / "inbox" / "cur"
        try:
            state = (var / "state.json").stat().st_mtime_ns
        except FileNotFoundError:
            state = 0
        return (len(os.listdir(outbox)) if outbox.is_dir() else 0, len(os.listdir(cur)) if cur.is_dir() else 0, state)


def inject_faults(server, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    """A few scripted failures for the next requests, of any operation."""
    for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
        kind = rng.choice(FAULT_KINDS)
        options = {"back_off_ms": rng.randint(20, 400)} if kind == "busy" else {}
        if kind == "slow":
            options = {"delay_seconds": rng.uniform(0.05, 0.8)}
        server.add_fault(kind, **options)


# --------------------------------------------------------------------------------------------
# The world


def ews_server(pairs: int, clock: Callable[[], datetime]):  # type: ignore[no-untyped-def]
    from tests.servers.ews import EwsServer, load_schema

    schema = load_schema()  # None in a fresh clone: the server still answers, unchecked
    if schema is None:
        print("chaos: EWS schemas not beside the checkout: requests are answered without validation", file=sys.stderr)
    server = EwsServer(schema, clock)
    server.control.add_mailbox(ORGANIZER, "Reverse Mentoring Team")
    server.control.add_account(SERVICE_USER, PASSWORD, f"{SERVICE_USER}@example.com", delegate_for=[ORGANIZER])
    for mentor, mentee in people_of(pairs).values():
        server.control.add_mailbox(mentor)
        server.control.add_mailbox(mentee)
    server.control.add_mailbox(CHAMPION)
    server.start()
    server._httpd.handle_error = lambda request, address: None  # a killed client resets its connection: expected
    return server


def prepare(root: Path, pairs: int, backend: str, server=None) -> None:  # type: ignore[no-untyped-def]
    (root / "roster.csv").write_text(roster_csv(pairs), encoding="utf-8")
    (root / "rmdaemon.toml").write_text(config_toml(backend, server.url if server else ""), encoding="utf-8")


def state_view(root: Path) -> tuple[dict[str, dict], dict[str, dict]]:
    """Sessions by token, and per series uid its second planned session (for the decliner)."""
    path = root / "var" / "state.json"
    if not path.exists():
        return {}, {}
    tables, _ = consistency.read_tables(path)
    sessions = {s["token"]: s for s in tables["sessions"] if s["kind"] == "session"}
    series = {}
    for doc in tables["pairs"]:
        if doc.get("series") and not doc["series"].get("cancelled"):
            starts = planning.occurrences(plan_from_doc(doc["pair_id"], doc["series"]["plan"]), exdates(doc["series"]))
            series[doc["series"]["uid"]] = {"second": starts[1] if len(starts) > 1 else None}
    return sessions, series


# --------------------------------------------------------------------------------------------
# The checks


def content_hash(raw: bytes) -> str:
    """What a person reads: subject and text parts, without the stamps that differ per build.

    SEQUENCE is left out too: a calendar update that changes nothing a person can see, sent
    again with a higher number, is the same invitation twice."""
    msg = message_from_bytes(raw, policy=policy.default)
    parts = [str(msg.get("Subject", ""))]
    for part in msg.walk():
        if part.get_content_maintype() == "text" and not part.is_attachment():
            text = part.get_payload(decode=True).decode("utf-8", "replace")
            parts.append(re.sub(r"(?m)^(DTSTAMP|SEQUENCE)[:;].*$", "", text.replace("\r\n ", "")))
    return hashlib.sha256(" ".join(" ".join(parts).split()).encode()).hexdigest()


def our_key(raw: bytes) -> str | None:
    key = message_from_bytes(raw, policy=policy.default).get("X-RM-Key")
    return key.strip() if key else None  # a long key is folded onto its own line


def check_mail(mail: LocalMail | ExchangeMail, tables: dict, tally: Tally) -> None:
    """Each idempotency key and each content went to each person once; every 'sent' row left."""
    sent = mail.sent()
    keys = Counter(our_key(m.raw) for m in sent if our_key(m.raw))
    tally.duplicates += [f"email key {k} sent {n} times" for k, n in keys.items() if n > 1]
    contents = Counter((m.to, content_hash(m.raw)) for m in sent)
    subjects = {(m.to, content_hash(m.raw)): m.parsed()["Subject"] for m in sent}
    tally.duplicates += [f"same content sent {n} times to {to}: {subjects[(to, h)]!r}"
                         for (to, h), n in contents.items() if n > 1]
    for row in tables["outbox"]:
        if row["status"] == "sent" and row["key"] not in keys and not row["kind"].startswith("itip"):
            tally.lost.append(f"outbox row {row['key']} says sent, but no such email left")


def check_inbox(mail: LocalMail | ExchangeMail, people: People, tables: dict, tally: Tally) -> None:
    """Every message put in the inbox was recorded once, and acted on at most once."""
    recorded = Counter(row["message_key"] for row in tables["inbox"])
    for key in people.dropped:
        if key not in recorded:
            tally.lost.append(f"inbox message {key} has no inbox record")
    unprocessed = [message_key(raw) for raw in mail.unprocessed()]
    tally.lost += [f"inbox message {k} was never marked processed" for k in unprocessed]
    for table, key in (("logs", "message_id"), ("commands", "message_id"), ("surveys", "message_id"), ("flags", "id")):
        twice = Counter(row.get(key) for row in tables[table] if row.get(key) and row.get("command") != "help")
        tally.duplicates += [f"{table}: message {k} acted on {n} times" for k, n in twice.items() if n > 1]


def check_local_calendar(mail: LocalMail, tables: dict, tally: Tally) -> None:
    """Per series uid and attendee: each version sent once, the latest is the stored one."""
    from chaos_world import calendar_of

    latest: dict[tuple[str, str], tuple[int, str]] = {}
    for m in mail.sent():
        msg = m.parsed()
        if not any(p.get_content_type() == "text/calendar" for p in msg.walk()):
            continue
        cal = calendar_of(msg)
        seq = int(cal.get("SEQUENCE", "0") or 0)
        if "RECURRENCE-ID" not in cal and seq >= latest.get((cal["UID"], m.to), (-1, ""))[0]:
            latest[(cal["UID"], m.to)] = (seq, cal["METHOD"])
    current = {d["series"]["uid"]: d for d in tables["pairs"] if d.get("series")}
    for (uid, to), (seq, method) in latest.items():
        doc = current.get(uid)
        if doc is None:
            if method != "CANCEL":
                tally.duplicates.append(f"series {uid} is still booked for {to} but no pair owns it")
            continue
        series = doc["series"]
        wanted = "CANCEL" if series.get("cancelled") else "REQUEST"
        if (seq, method) != (series["sequence"], wanted):
            tally.lost.append(f"series {uid}: {to} last got {method} {seq}, the state wants {wanted} {series['sequence']}")


def check_exchange_calendar(server, tables: dict, tally: Tally) -> None:  # type: ignore[no-untyped-def]
    """One calendar item per series uid at the stored sequence, and each attendee's copy at the
    organizer's version (each invitation sent once is the content check of ``check_mail``)."""
    control = server.control
    items = [i for folder in ("calendar", "deleteditems") for i in control.items(ORGANIZER, folder, "CalendarItem")]
    by_uid = Counter(i.text("UID") for i in items)
    tally.duplicates += [f"series {uid} booked {n} times" for uid, n in by_uid.items() if n > 1]
    live = {i.text("UID"): i for i in control.calendar(ORGANIZER)}
    for doc in tables["pairs"]:
        series = doc.get("series")
        if not series:
            continue
        item = live.get(series["uid"])
        if series.get("cancelled"):
            if item is not None:
                tally.lost.append(f"series {series['uid']} is cancelled in the state but still on the calendar")
        elif item is None:
            tally.lost.append(f"series {series['uid']} of {doc['pair_id']} is not on the calendar")
        elif control.extended(item, "rmdaemon-sequence") != [str(series["sequence"])]:
            tally.lost.append(f"series {series['uid']}: calendar has sequence {control.extended(item, 'rmdaemon-sequence')}, "
                              f"state {series['sequence']}")
        else:
            tally.lost += _attendee_copies(server, doc, item)


def _attendee_copies(server, doc: dict, item) -> list[str]:  # type: ignore[no-untyped-def]
    """Every attendee's calendar has the series, at the version the organizer's item has."""
    wanted = item.text("AppointmentSequenceNumber", "0")
    problems = []
    for person in (doc.get("pair") or {}).get("people", []):
        copy = server.store.by_uid(person[1].casefold(), item.text("UID"))
        if copy is None:
            problems.append(f"series {item.text('UID')} is missing from {person[1]}'s calendar")
        elif copy.text("AppointmentSequenceNumber", "0") != wanted:
            problems.append(f"series {item.text('UID')}: {person[1]} has version {copy.text('AppointmentSequenceNumber')}, "
                            f"the organizer {wanted}")
    return problems


def seen(tables: dict) -> str:
    """Inbox outcomes, commands and mail kinds the run produced, in one line."""
    if not tables:
        return ""
    parts = [Counter(r["outcome"] for r in tables["inbox"]), Counter(r["command"] for r in tables["commands"]),
             Counter(r["kind"] for r in tables["outbox"]), Counter(p["state"] for p in tables["pairs"])]
    return " | ".join(", ".join(f"{k} {n}" for k, n in sorted(c.items())) for c in parts)


def check_state(root: Path, now: datetime, tally: Tally) -> dict:
    path = root / "var" / "state.json"
    problems = consistency.check_file(path, root / "var" / "quarantine", [name for name, _ in JOBS])
    tally.corrupt += problems
    if problems and not path.exists():
        return {}
    tables, _ = consistency.read_tables(path)
    tally.lost += consistency.settled_problems(tables, now)
    return tables


# --------------------------------------------------------------------------------------------
# The programme


def simulate(args: argparse.Namespace, root: Path) -> tuple[Tally, int]:
    """The whole programme, then the checks; returns the tally and the faults that fired."""
    rng = random.Random(args.seed)
    clock_now = [T0]
    server = ews_server(args.pairs, lambda: clock_now[0]) if args.backend == "exchange" else None
    try:
        prepare(root, args.pairs, args.backend, server)
        mail = ExchangeMail(server) if server else LocalMail(root)
        people = People(mail, rng, args.pairs)
        daemon = Daemon(root, rng, server)
        tally = Tally()
        final = programme(args, daemon, people, clock_now, tally)
        if server:
            server.faults.clear()
        for _ in range(2):  # clean runs: what a crash or a fault left unfinished is finished now
            daemon.clean(final)
        if args.keep and server:
            keep_server_mail(mail, root)
        check_all(root, final, mail, people, server, tally)
        return tally, len(server.faults.fired) if server else 0
    finally:
        if server:
            server.stop()


def programme(args: argparse.Namespace, daemon: Daemon, people: People, clock_now: list[datetime],
              tally: Tally) -> datetime:
    """Every step: its killed runs, its clean run, then the people answer. Returns the end."""
    moments = list(steps(T0, args.weeks, args.step_hours))
    kills_at = Counter(daemon.rng.randrange(len(moments)) for _ in range(args.kills))
    for n, now in enumerate(moments):
        clock_now[0] = now
        done = run_step(daemon, now, kills_at[n], daemon.server, daemon.rng)
        kills_at[n + 1] += kills_at[n] - done  # a step too short to kill in hands its kills on
        tally.kills += done
        people.act(now, *state_view(daemon.root))
        _progress(args, n, len(moments), tally)
    clock_now[0] = moments[-1] + timedelta(hours=args.step_hours)
    return clock_now[0]


def keep_server_mail(mail: ExchangeMail, root: Path) -> None:
    """The EWS test server's mail lives in this process: keep a copy to look at afterwards."""
    dump = root / "sent-by-exchange"
    dump.mkdir(exist_ok=True)
    for m in mail.sent():
        (dump / f"{m.ident}-{m.to}.eml").write_bytes(m.raw)


def check_all(root: Path, final: datetime, mail: LocalMail | ExchangeMail, people: People, server,  # type: ignore[no-untyped-def]
              tally: Tally) -> None:
    tables = check_state(root, final, tally)
    tally.seen = seen(tables)
    if not tables:
        return
    check_mail(mail, tables, tally)
    check_inbox(mail, people, tables, tally)
    if server:
        check_exchange_calendar(server, tables, tally)
    else:
        check_local_calendar(mail, tables, tally)


def run_step(daemon: Daemon, now: datetime, kills: int, server, rng: random.Random) -> int:  # type: ignore[no-untyped-def]
    """``kills`` killed runs of this step (a run that finishes first does not count), then a clean one."""
    done = attempts = 0
    while done < kills and attempts < 4 * kills:
        attempts += 1
        if server:
            inject_faults(server, rng)
        done += daemon.killed(now)
    if server:
        inject_faults(server, rng)
    daemon.clean(now)
    return done


def _progress(args: argparse.Namespace, n: int, total: int, tally: Tally) -> None:
    if args.verbose:
        print(f"step {n + 1}/{total}: kills so far {tally.kills}", file=sys.stderr)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=200, help="kill -9s over the whole run (default 200)")
    p.add_argument("--pairs", type=int, default=50)
    p.add_argument("--weeks", type=int, default=8, help="simulated weeks (default 8)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--backend", choices=("local", "exchange"), default="local")
    p.add_argument("--step-hours", type=float, default=12.0, help="simulated hours between runs (default 12)")
    p.add_argument("--keep", help="run in this folder and keep it (default: a temporary folder)")
    p.add_argument("-v", "--verbose", action="store_true", help="progress and every finding on stderr")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rmdaemon-chaos-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        tally, faults = simulate(args, root)
    print(f"seen: {tally.seen}", file=sys.stderr)
    for kind in ("duplicates", "lost", "corrupt"):
        for finding in getattr(tally, kind):
            print(f"{kind}: {finding}", file=sys.stderr)
    print(f"{tally.line(faults)}  ({args.backend}, {args.pairs} pairs, {args.weeks} weeks, seed {args.seed}, "
          f"{time.monotonic() - began:.0f} s)", file=sys.stderr)
    print(tally.line(faults))
    return 0 if not (tally.duplicates or tally.lost or tally.corrupt) else 1


if __name__ == "__main__":
    raise SystemExit(main())
