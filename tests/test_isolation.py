"""Error isolation: one pair's (or one message's) failure never holds back the others, the job
is retried, ``status`` names what failed, and the long-running loop survives it all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from programme import Programme, REPO, wait_for
from rmdaemon.store import Store

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
ROSTER = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal\n"
          "P01,Aisha Khan,aisha@example.com,Richard Hale,richard@example.com,goal one\n"
          "P02,Cher,cher@example.com,Linda Morales,linda@example.com,goal two\n"
          "P03,Tom Becker,tom@example.com,David Thompson,david@example.com,goal three\n")
# An admin's kickoff that greets by surname: fine for everyone but a mononymous mentor.
KICKOFF = "Subject: {{ program.name }} [{{ token }}]\n\nDear {{ person.name.split()[1] }},\n\nReply YES or NO.\n"


def with_kickoff_override(tmp_path: Path) -> Programme:
    prog = Programme.create(tmp_path, roster=ROSTER)
    (prog.root / "my-templates").mkdir()
    (prog.root / "my-templates" / "kickoff.txt").write_text(KICKOFF)
    prog.config.write_text(prog.config.read_text().replace('# dir = "my-templates"', 'dir = "my-templates"'))
    return prog


def status_json(prog: Programme, capsys) -> dict:
    capsys.readouterr()
    assert prog.cli("status", "--json", "--now", T0.isoformat()) == 0
    return json.loads(capsys.readouterr().out)


def test_a_pair_whose_data_breaks_a_template_does_not_keep_the_other_pairs_mail_back(tmp_path, capsys):
    prog = with_kickoff_override(tmp_path)
    assert prog.run(T0) == 2  # a template failed (the admin's to fix): a script running --once notices
    to = sorted(str(m["To"]).split("<")[1].rstrip(">") for m in prog.outbox("kickoff"))
    assert to == ["aisha@example.com", "david@example.com", "richard@example.com", "tom@example.com"]
    job = status_json(prog, capsys)["jobs"]["consent"]
    assert job["last_ok"] == T0.isoformat()  # the job ran ...
    assert job["pair_errors"] and job["pair_errors"][0].startswith("P02: ")  # ... but not for P02
    assert "my-templates/kickoff.txt: line 3: list object has no element 1" in job["pair_errors"][0]  # file, line, why
    assert prog.cli("status", "--now", T0.isoformat()) == 0
    assert "could not handle P02: " in capsys.readouterr().out
    with Store.open(prog.state, writer=False) as store:
        assert sorted(d["pair_id"] for d in store.table("pairs").all()) == ["P01", "P03"]  # P02 not half-started
    prog.roster.write_text(ROSTER.replace("P02,Cher,", "P02,Cher Sarkisian,"))  # the admin fixes the name
    assert prog.run(T0 + timedelta(hours=1)) == 0
    assert len(prog.outbox("kickoff")) == 6
    assert "pair_errors" not in status_json(prog, capsys)["jobs"]["consent"]


def test_a_message_that_trips_a_bug_is_quarantined_and_the_rest_of_the_inbox_is_processed(tmp_path, capsys):
    prog = Programme.create(tmp_path, roster=ROSTER)
    assert prog.run(T0) == 0
    kickoffs = {str(m["To"]).split("<")[1].rstrip(">"): m for m in prog.outbox("kickoff")}
    with Store.open(prog.state) as store, store.batch():  # a session row as an older version wrote it
        store.table("sessions").insert({"token": "RM-OLD000", "pair_id": "P01", "kind": "survey", "start": None,
                                        "person": "aisha@example.com"})  # no milestone, no role
    odd = kickoffs["aisha@example.com"]
    del odd["Subject"]
    odd["Subject"] = "survey [RM-OLD000]"
    prog.reply(odd, "1. 4", T0)
    prog.reply(kickoffs["tom@example.com"], "YES", T0)
    assert prog.run(T0 + timedelta(hours=1)) == 0
    with Store.open(prog.state, writer=False) as store:
        rows = {d["pair_id"]: d for d in store.table("inbox").all()}
    assert rows["P03"]["outcome"] == "consent"
    assert rows[""]["outcome"] == "quarantine" and "internal error" in rows[""]["reason"]
    assert (prog.root / "var" / "quarantine" / rows[""]["quarantine"]).is_file()  # raw kept, nothing lost
    assert not list((prog.root / "var" / "inbox" / "new").iterdir())
    assert status_json(prog, capsys)["jobs"]["inbox"]["failures"] == 0


def rmdaemon(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("RMDAEMON_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "rmdaemon", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)



def test_the_running_daemon_survives_a_broken_roster_and_a_failing_job_and_carries_on(tmp_path):
    prog = Programme.create(tmp_path, roster=ROSTER, tick_seconds="1")
    (prog.root / "var").mkdir()
    (prog.root / "var" / "quarantine").write_text("a file where the quarantine folder should be")
    prog.drop(b"From: x@elsewhere.example\r\nMessage-ID: <q@elsewhere.example>\r\n\r\nhi\r\n", "stranger.eml")
    daemon = rmdaemon("--config", str(prog.config), "run")
    try:
        assert wait_for(lambda: len(prog.outbox_files()) == 6), "the other jobs ran although the inbox failed"
        status = rmdaemon("--config", str(prog.config), "status", "--json")
        inbox = json.loads(status.communicate(timeout=30)[0])["jobs"]["inbox"]
        assert inbox["failures"] == 1 and "quarantine" in inbox["last_error"] and inbox["next_due"] > inbox["error_at"]
        prog.roster.write_text(ROSTER.replace("richard@example.com", "richard@"))  # a typo while it runs
        time.sleep(3)  # a tick a second: each one says what is wrong and carries on
        assert daemon.poll() is None
        prog.roster.write_text(ROSTER)
        daemon.send_signal(signal.SIGINT)  # Ctrl-C stops it as cleanly as SIGTERM (test_cli)
        assert daemon.wait(timeout=15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    err = daemon.stderr.read()
    assert err.count("column mentee_email: 'richard@' is not an email address") >= 2


def health_script(tmp_path: Path) -> Path:
    """The health check exactly as docs/production.md shows it."""
    doc = (REPO / "docs" / "production.md").read_text(encoding="utf-8")
    block = next(b for b in doc.split("```python\n")[1:] if '"""rmdaemon health' in b).split("```")[0]
    path = tmp_path / "rmdaemon-health"
    path.write_text(block)
    return path


def health(script: Path, prog: Programme, now: datetime) -> tuple[int, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), RMDAEMON_CONFIG=str(prog.config))
    done = subprocess.run([sys.executable, str(script), "--now", now.isoformat()], capture_output=True, text=True,
                          env=env, timeout=60)
    return done.returncode, done.stdout


def test_the_documented_health_check_names_a_failing_job_and_a_stopped_daemon(tmp_path):
    script = health_script(tmp_path)
    prog = Programme.create(tmp_path / "prog", roster=ROSTER)
    assert prog.run(T0) == 0
    assert health(script, prog, T0 + timedelta(minutes=1)) == (0, "rmdaemon healthy; 0 message(s) in quarantine\n")
    code, out = health(script, prog, T0 + timedelta(days=2))  # nothing ran for two days
    assert code == 1 and "job inbox was due at" in out and "is the daemon running?" in out
    (prog.root / "var" / "quarantine").write_text("a file where the quarantine folder should be")
    prog.drop(b"From: x@elsewhere.example\r\nMessage-ID: <q@elsewhere.example>\r\n\r\nhi\r\n", "stranger.eml")
    for hours in range(3):
        assert prog.run(T0 + timedelta(hours=hours + 1)) == 0
    code, out = health(script, prog, T0 + timedelta(hours=3, minutes=1))
    assert code == 1 and "job inbox failed 3 times in a row" in out
