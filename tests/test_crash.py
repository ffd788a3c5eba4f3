"""Kill a run at every point and rerun: no message twice, no booking twice, a loadable state."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from programme import Programme, sent_keys
from rmdaemon import daemon
from rmdaemon.backends.local import LocalBackend
from rmdaemon.clock import fixed_clock
from rmdaemon.config import load_settings
from rmdaemon.store import Store

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(days=6, hours=12)  # Sunday evening: agendas for Monday's sessions


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so no job wrapper catches it."""


class CrashingBackend(LocalBackend):
    """The real local backend that dies after ``budget`` deliveries (every file it writes to the
    outbox passes ``_write``: e-mails and each attendee's invitation)."""

    def __init__(self, outbox: Path, inbox: Path, clock, budget: int) -> None:
        super().__init__(outbox, inbox, clock)
        self.budget = budget

    def _write(self, name: str, raw: bytes) -> None:
        if self.budget == 0:
            raise Crash()
        self.budget -= 1
        super()._write(name, raw)

    def mark_processed(self, ref: str) -> None:
        if self.budget == 0:
            raise Crash()
        self.budget -= 1
        super().mark_processed(ref)


def answer_kickoffs(prog: Programme) -> None:
    for n, kickoff in enumerate(prog.outbox("kickoff")):
        prog.reply(kickoff, "YES", T0, message_id=f"<optin-{n}@client.example>")


def prepared(tmp_path: Path) -> Programme:
    prog = Programme.create(tmp_path / "base")
    prog.run(T0)
    answer_kickoffs(prog)
    return prog


def copy_of(prog: Programme, target: Path) -> Programme:
    shutil.copytree(prog.root, target)
    return Programme(target)


def run_with_crash(prog: Programme, now: datetime, budget: int) -> bool:
    settings = load_settings(prog.config)
    local = settings.backend.local
    backend = CrashingBackend(local.outbox, local.inbox, fixed_clock(now), budget)
    try:
        with Store.open(settings.storage_path) as store:
            daemon.tick(store, backend, settings, now, only_due=False)
    except Crash:
        return True
    return False


def finish(prog: Programme) -> list[str]:
    for now in (T1, T2):
        assert prog.run(now) == 0
    return sent_keys(prog)


def test_crash_after_every_delivery_then_rerun_sends_each_message_once(tmp_path):
    base = prepared(tmp_path)
    reference = finish(copy_of(base, tmp_path / "reference"))
    assert len(reference) == len(set(reference)) >= 40
    budget, crashed = 0, True
    while crashed:
        prog = copy_of(base, tmp_path / f"crash-{budget}")
        crashed = run_with_crash(prog, T1, budget)
        assert finish(prog) == reference, f"crash after {budget} deliveries"
        with Store.open(prog.state, writer=False) as store:
            inbox = store.table("inbox").all()
        assert sorted(d["outcome"] for d in inbox) == ["consent"] * 14
        assert not list((prog.root / "var" / "inbox" / "new").iterdir())
        budget += 3
    assert budget > 20  # the loop really crashed at many points before a run completed


@pytest.mark.parametrize("seed", [1, 2])
def test_kill_9_at_random_moments_then_rerun(tmp_path, seed):
    base = prepared(tmp_path)
    reference = finish(copy_of(base, tmp_path / "reference"))
    prog = copy_of(base, tmp_path / "killed")
    rng = random.Random(seed)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    for now in (T1, T2):
        for _ in range(4):
            proc = subprocess.Popen([sys.executable, "-m", "rmdaemon", "--config", str(prog.config), "run",
                                     "--now", now.isoformat()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env=env)
            try:
                proc.wait(timeout=rng.uniform(0.2, 0.9))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        assert prog.run(now) == 0  # the step completes before the clock moves on, as in production
    assert finish(prog) == reference
    with Store.open(prog.state, writer=False) as store:
        assert len(store.table("pairs").all()) == 7
