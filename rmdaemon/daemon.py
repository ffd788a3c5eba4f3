"""The loop: read the roster, run each job that is due, record how it went; forever or once.

``schedule`` is only a ticker here (it runs on naive local time, forgets everything on restart
and stops rescheduling a job that raises): what is due lives in the store as aware UTC times,
and every job is wrapped so one failure is recorded and retried with back-off, never fatal.
Signals only set an event the loop waits on, so the job in hand always finishes.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import schedule

from rmdaemon import compose, roster
from rmdaemon.backends.base import Backend
from rmdaemon.backends.dryrun import DryRunBackend
from rmdaemon.backends.factory import open_backend
from rmdaemon.clock import Clock
from rmdaemon.config import Settings
from rmdaemon.errors import BackendError, UserError
from rmdaemon.jobs import agendas, booking, consent, digest, inbox, nudges, outreach, retention, surveys
from rmdaemon.programme.context import Context
from rmdaemon.model import Incoming, JobResult
from rmdaemon.records import pair_records
from rmdaemon.secret import installation_secret, secret_path
from rmdaemon.store import Store

log = logging.getLogger("rmdaemon")

# Order matters within a tick: replies first (consents, commands), then kickoffs, calendars, agendas.
CLOCK, CLOCK_BACK = "clock:latest", "clock:went_back"  # _meta: the latest tick's time; the last time it read earlier
JOBS: tuple[tuple[str, Callable[[Context], JobResult]], ...] = (
    ("inbox", inbox.run), ("consent", consent.run), ("booking", booking.run), ("agendas", agendas.run),
    ("nudges", nudges.run), ("surveys", surveys.run), ("outreach", outreach.run), ("retention", retention.run),
    ("digest", digest.run),
)
MAX_BACKOFF = timedelta(hours=1)
CHECKED_FILE = "templates.checked"


def job_state(store: Store, name: str) -> dict:
    return dict(store.meta(f"job:{name}", {}) or {})


def is_due(store: Store, name: str, now: datetime) -> bool:
    due = job_state(store, name).get("next_due")
    return due is None or datetime.fromisoformat(due) <= now


def run_job(name: str, job: Callable[[Context], JobResult], ctx: Context) -> JobResult:
    """Run one job; record success or the error with back-off. Never raises for the job's failure."""
    state = job_state(ctx.store, name)
    interval = timedelta(minutes=ctx.settings.schedule.jobs.get(name, 5))
    try:
        result = job(ctx)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 — isolation is the point: record, back off, carry on
        if isinstance(e, BackendError):  # the backend's own words say what is wrong: no traceback for it
            log.error("job %s failed: %s", name, e)
        else:
            log.exception("job %s failed", name)
        failures = state.get("failures", 0) + 1
        backoff = min(interval * (2 ** (failures - 1)), MAX_BACKOFF)
        state.update(last_error=f"{type(e).__name__}: {e}", error_at=ctx.now.isoformat(), failures=failures,
                     next_due=(ctx.now + backoff).isoformat())
        _save_job_state(ctx.store, name, state)
        return JobResult(name, {"errors": 1}, [f"job {name} failed: {type(e).__name__}: {e} (retry in {backoff})"])
    state.update(last_ok=ctx.now.isoformat(), failures=0, next_due=(ctx.now + interval).isoformat())
    state.pop("pair_errors", None)
    state.pop("waiting", None)
    if result.waiting:  # it ran, but some of its work waits for the admin: status shows what
        state.update(waiting=result.waiting[:5])
    if result.problems:  # the job ran for every other pair; status names the ones it could not handle
        state.update(pair_errors=result.problems[:20], last_error=result.problems[0], error_at=ctx.now.isoformat())
        result.lines += [f"could not handle {p}" for p in result.problems]
    _save_job_state(ctx.store, name, state)
    return result


def _save_job_state(store: Store, name: str, state: dict) -> None:
    store.set_meta_later(f"job:{name}", state)  # written with the job's next intent, or by the tick's final flush


def tick(store: Store, backend: Backend, settings: Settings, now: datetime, *, only_due: bool,
         secret: bytes | None = None) -> list[JobResult]:
    """One pass over the jobs. The roster and templates are re-read every tick: admins edit them live;
    the secret too, so a key removed or opened up meanwhile stops the tick with the fix."""
    pairs = roster.load_roster(settings.roster_path, settings.program)
    templates = compose.load_templates(settings.templates_dir, templates_checked(settings.storage_path))
    ctx = Context(store=store, backend=backend, settings=settings, pairs=pairs, templates=templates, now=now,
                  secret=installation_secret(store) if secret is None else secret)
    latest = store.meta(CLOCK)
    back = latest is not None and now < datetime.fromisoformat(latest)
    try:
        if back:
            return [_clock_went_back(store, latest, now)]
        # With the tick's first write (an intent or a record), else its final flush: a tick that writes
        # nothing decided nothing to guard. Written apart, it was a whole state write every tick.
        store.set_meta_later(CLOCK, now.isoformat())
        _large_buffers_unmapped()
        with _fewer_collections():
            return [run_job(name, job, ctx) for name, job in JOBS if not only_due or is_due(store, name, now)]
    finally:
        store.flush()  # confirmations and job states: one write for the whole tick


def templates_checked(state: Path) -> Path:
    """Beside the state file: the fingerprint of the templates (and code) that last passed the check."""
    return state.with_name(CHECKED_FILE)


def _clock_went_back(store: Store, latest: str, now: datetime) -> JobResult:
    """The clock reads earlier than a tick that already ran (a wrong ``--now``, a VM restored from
    a snapshot, a clock stepped back): no job runs, so nothing bound to a time is decided or sent
    again, until the clock passes the latest tick. ``status`` shows it."""
    store.set_meta(CLOCK_BACK, {"now": now.isoformat(), "latest": latest})
    log.warning("the clock reads %s, before the latest run at %s: no job runs until it is later", now.isoformat(), latest)
    result = JobResult("clock")
    result.add("clock went back", f"the clock reads {now.isoformat()}, before the latest run at {latest}: "
                                  "nothing runs until it is later")
    return result


def _large_buffers_unmapped(threshold: int = 256 * 1024) -> None:
    """Ask glibc's malloc to give every buffer over ``threshold`` its own mapping, returned to the
    system when freed. By default the threshold follows the largest buffer freed so far, so after
    the first serialised state (27 MB at 10,000 pairs) every later one came from the heap, which
    then kept its high-water mark: 34 MB of an agenda tick's peak RSS (docs/performance.md). A
    no-op where the C library has no ``mallopt``."""
    try:
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, threshold)
    except (OSError, AttributeError):
        pass


_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


@contextmanager
def _fewer_collections(young: int = 20_000) -> Iterator[None]:
    """Run the cyclic garbage collector less often during a tick. The state and the roster are
    millions of small dicts with no reference cycles, and with the default threshold (700) the
    collector's full passes scanned them again and again: 0.6 s of an agenda tick at 10,000 pairs
    against 0.04 s at 1,000, the one cost that grew faster than the programme. With 20,000 it is
    0.15 s and no full pass; peak memory is the same. Put back when the tick ends."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], young), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def run_once(settings: Settings, clock: Clock, *, dry_run: bool = False) -> list[JobResult]:
    """Every job once (they are idempotent, so 'due' is decided by the stored state inside them)."""
    if dry_run:
        return _dry_run(settings, clock)
    with Store.open(settings.storage_path) as store, _backend(settings, clock) as backend:
        return tick(store, backend, settings, clock(), only_due=False)


def handle_again(settings: Settings, store: Store, clock: Clock, message: Incoming, key: str,
                 arrived: datetime) -> tuple[str, str]:
    """One kept message through the inbox job's own Router and record, as the tick it arrived in
    would have handled it (``quarantine release``); its outcome replaces the message's inbox row.
    Call it inside a batch. The Router never talks to the backend; a Context carries one anyway."""
    pairs = roster.load_roster(settings.roster_path, settings.program)
    with _backend(settings, clock) as backend:
        ctx = Context(store=store, backend=backend, settings=settings, pairs=pairs,
                      templates=compose.load_templates(settings.templates_dir), now=arrived,
                      secret=installation_secret(store))
        router = inbox.Router(ctx, pair_records(store))
        outcome = router.route_safely(message, key)
        inbox.record(ctx, router, [(message, key, outcome)])
    return outcome.kind, outcome.reason


def _dry_run(settings: Settings, clock: Clock) -> list[JobResult]:
    """Run against a throw-away copy of the state and a backend that only records: nothing changes."""
    with tempfile.TemporaryDirectory(prefix="rmdaemon-dry-") as tmp:
        copy = Path(tmp) / settings.storage_path.name
        if settings.storage_path.exists():
            shutil.copyfile(settings.storage_path, copy)
        scratch = replace(settings, storage_path=copy)
        with Store.open(copy) as store, _backend(settings, clock) as real:
            dry = DryRunBackend(real)
            secret = installation_secret(store, secret_path(settings.storage_path), create=False)  # never made here
            results = tick(store, dry, scratch, clock(), only_due=False, secret=secret)
        results.append(JobResult("dry run", {"actions": dry.count()}, dry.report()))
        return results


@contextmanager
def _backend(settings: Settings, clock: Clock) -> Iterator[Backend]:
    backend = open_backend(settings, clock)
    try:
        yield backend
    finally:
        backend.close()


def run_forever(settings: Settings, clock: Clock, *, stop: threading.Event | None = None) -> None:
    """Until SIGTERM/SIGINT: wake every ``tick_seconds``, run what is due, ping systemd."""
    stop = stop or threading.Event()
    _install_signals(stop)
    with Store.open(settings.storage_path) as store, _backend(settings, clock) as backend:
        scheduler = schedule.Scheduler()  # our own instance: no module-level default scheduler
        scheduler.every(settings.schedule.tick_seconds).seconds.do(_loop_tick, store, backend, settings, clock)
        sd_notify("READY=1")
        log.info("rmdaemon running: %s, state %s", settings.config_path, settings.storage_path)
        _loop_tick(store, backend, settings, clock)
        while not stop.is_set():
            scheduler.run_pending()
            sd_notify("WATCHDOG=1")
            stop.wait(max(0.0, min(scheduler.idle_seconds or 1.0, settings.schedule.tick_seconds)))
        sd_notify("STOPPING=1")
        log.info("rmdaemon stopped")


def _loop_tick(store: Store, backend: Backend, settings: Settings, clock: Clock) -> None:
    try:
        for result in tick(store, backend, settings, clock(), only_due=True):
            for line in result.lines:
                log.info("%s: %s", result.name, line)
    except UserError as e:  # a broken roster edit must not kill the daemon: say so, retry next tick
        log.error("%s", e)
    except Exception:  # noqa: BLE001 — nor may anything else (a full disk, a bug outside the jobs)
        log.exception("tick failed; trying again at the next one")


def _install_signals(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


def sd_notify(state: str) -> None:
    """systemd Type=notify readiness and watchdog; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError as e:
            log.debug("sd_notify failed: %s", e)
