"""Pruning (programme/pruning.py): outbox keys and inbox ids older than [storage] prune_after_days
go, and still nothing is sent twice or read twice — with the mail already gone from the outbox, so
only the state file could stop a second sending."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from programme import Programme, _set_key
from rmdaemon import daemon
from rmdaemon.atomic import atomic_write
from rmdaemon.clock import fixed_clock
from rmdaemon.config import load_settings
from rmdaemon.errors import UserError
from rmdaemon.programme.pruning import prune
from rmdaemon.secret import SIZE, secret_path
from rmdaemon.store import Store
from test_crash import Crash, CrashingBackend
from timeline import Reply, Timeline

UTC = timezone.utc
T0 = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # Mon: kickoffs
FIRST = datetime(2027, 1, 11, 9, 0, tzinfo=UTC)  # P01's sessions: Mondays 09:00 London
DAY, WEEK = timedelta(days=1), timedelta(days=7)
END = FIRST + 5 * WEEK  # P01's sixth and last session
ROSTER = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,track,status\n"
          "P01,Aisha Khan,aisha.khan@example.com,Richard Hale,richard.hale@example.com,Learn TikTok,social media,active\n"
          "P02,Tom Becker,tom.becker@example.com,Linda Morales,linda.morales@example.com,Ship weekly,technology,active\n")


def lived(tmp_path, name: str, days: int) -> Timeline:
    """Both pairs say yes; Aisha logs every session on the kickoff thread (P02 never does: nudges,
    alerts); Richard sends SKIP before the fourth. Runs every evening until a week after the end,
    then every ten days for three months."""
    prog = Programme.create(tmp_path / name, roster=ROSTER, cadence='"weekly"', prune_after_days=str(days))
    # Both lives share one installation secret: it keys every UID, token and Message-ID, so two
    # secrets would make every key differ and hide what the comparison is about.
    prog.state.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(secret_path(prog.state), b"5e" * SIZE + b"\n", mode=0o600)
    replies = [Reply(T0 + timedelta(minutes=30), who, "YES", name=f"yes-{who}")
               for who in ("aisha", "richard", "tom", "linda")]
    replies += [Reply(FIRST + n * WEEK + timedelta(hours=2), "aisha", "Attended: yes\nRating: 5", name=f"log-{n}")
                for n in range(6) if n != 3]
    replies.append(Reply(FIRST + 2 * WEEK + 3 * DAY, "richard", "SKIP", name="skip"))
    line = Timeline(prog, replies)
    line.live([T0, T0 + timedelta(hours=1)])
    line.live(T0 + timedelta(days=d, hours=13) for d in range(1, (END - T0).days + 8))
    line.live(END + timedelta(days=10 * d, hours=5) for d in range(1, 10))
    return line


def outbox_rows(prog: Programme) -> list[dict]:
    with Store.open(prog.state, writer=False) as store:
        return [dict(d) for d in store.table("outbox").all()]


@pytest.fixture(scope="module")
def kept(tmp_path_factory) -> Timeline:
    return lived(tmp_path_factory.mktemp("kept"), "kept", 0)


@pytest.fixture(scope="module")
def pruned(tmp_path_factory) -> Timeline:
    return lived(tmp_path_factory.mktemp("pruned"), "pruned", 30)


def test_a_pruned_state_sends_exactly_what_an_unpruned_one_does_and_never_twice(kept, pruned, capsys):
    assert sorted(pruned.keys()) == sorted(kept.keys())
    assert [k for k, n in Counter(pruned.keys()).items() if n > 1] == []
    kinds = Counter(k.split(":")[0] for k in kept.keys())
    assert kinds["agenda"] >= 18 and kinds["nudge"] >= 2 and kinds["alert"] >= 1 and kinds["certificate"] == 4
    left = outbox_rows(pruned.prog)
    assert len(left) < len(outbox_rows(kept.prog)) / 4  # most of it forgotten ...
    digests = sorted(k for k in kept.keys() if k.startswith("digest:"))
    assert digests[0] not in {r["key"] for r in left} and digests[-1] in {r["key"] for r in left}
    # ... and a year of runs on the pruned state (every job, every time) sends nothing more
    pruned.live(END + timedelta(days=100 + 30 * n) for n in range(12))
    later = pruned.keys()[len(kept.keys()):]
    assert later == []  # every pair ended and nothing new came in: not even a digest (jobs/digest.py)
    capsys.readouterr()
    assert pruned.prog.cli("status", "--json", "--now", (END + 200 * DAY).isoformat()) == 0


def test_a_reply_delivered_again_after_pruning_is_not_read_twice(pruned):
    line = pruned
    with Store.open(line.prog.state, writer=False) as store:
        logs, commands = len(store.table("logs")), len(store.table("commands"))
        assert not store.table("inbox").search(lambda d: d["message_key"] == "<log-0@client.example>")
    for name in ("log-0", "skip", "yes-tom"):  # a log, a command, a consent: all forgotten by now
        line.redeliver(name)
    line.run(END + 500 * DAY)
    with Store.open(line.prog.state, writer=False) as store:
        assert (len(store.table("logs")), len(store.table("commands"))) == (logs, commands)
        rows = {d["message_key"]: d for d in store.table("inbox").all()}
    assert "<log-0@client.example>" not in rows  # its log knows the message: only marked as read
    for key in ("<skip@client.example>", "<yes-tom@client.example>"):
        assert rows[key]["outcome"] == "quarantine" and "may be a copy" in rows[key]["reason"]
    assert not list((line.prog.root / "var" / "inbox" / "new").iterdir())


def test_a_window_too_short_to_be_safe_is_refused_naming_the_key_and_the_fix(tmp_path):
    prog = Programme.create(tmp_path, roster=ROSTER)
    prog.config.write_text(_set_key(prog.config.read_text(), "prune_after_days", "10"))
    with pytest.raises(UserError) as caught:
        load_settings(prog.config)
    problem = caught.value.problems[0]
    assert "rmdaemon.toml: line" in problem and "[storage] prune_after_days: 10 days is shorter than the 30 days" in problem
    assert "prune_after_days = 30 or more, or 0 to never prune" in problem
    prog.config.write_text(_set_key(prog.config.read_text(), "prune_after_days", "0"))
    assert load_settings(prog.config).prune_after_days == 0


def test_a_crash_in_the_tick_that_prunes_leaves_all_of_it_or_none_and_sends_nothing_twice(kept, tmp_path):
    """Retention prunes, then the digest's send dies with the process: the file holds the whole
    prune or none of it (one atomic write), and the rerun sends the digest once."""
    root = tmp_path / "crash"
    shutil.copytree(kept.prog.root, root)
    line = Timeline(Programme(root), [], sorted((root / "delivered").iterdir()))
    now = END + 95 * DAY  # Fri 21 May, after the digest moment of Mon 17 May
    # a late survey answer, read with nothing pruned yet, makes a digest due (all pairs have ended)
    late = now - 4 * DAY - 3 * timedelta(hours=1)  # Mon 17 May 06:00: after the last run, before the digest's moment
    line.replies.append(Reply(late, "richard", "1: 4\n2: 5", kind="survey", name="late-survey"))
    line.run(late)
    line.prog.config.write_text(_set_key(line.prog.config.read_text(), "prune_after_days", "30"))
    before = len(outbox_rows(line.prog))
    settings = load_settings(line.prog.config)
    backend = CrashingBackend(settings.backend.local.outbox, settings.backend.local.inbox, fixed_clock(now), 0)
    with pytest.raises(Crash), Store.open(settings.storage_path) as store:
        daemon.tick(store, backend, settings, now, only_due=False)
    with Store.open(line.prog.state) as store:
        pruned = store.meta("prune") or {}
        assert pruned.get("outbox", 0) > 50
        assert len(store.table("outbox")) == before - pruned.get("outbox", 0) + 1  # + the digest, pending
        assert prune(store, now, 30) == {"outbox": 0, "inbox": 0}  # nothing left half done
    sent = len(line.keys())
    line.run(now)
    assert [k.split(":")[0] for k in line.keys()[sent:]] == ["digest"]
