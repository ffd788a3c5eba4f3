"""The command line as users meet it: check's report, exit codes, the long-running daemon."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from programme import Programme, REPO, wait_for
from rmdaemon.cli import main


@pytest.fixture
def prog(tmp_path) -> Programme:
    return Programme.create(tmp_path)


def rmdaemon(*args: str, cwd: Path | None = None, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("RMDAEMON_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "rmdaemon", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def test_check_clean_example_exits_0(prog, capsys):
    assert prog.cli("check") == 0
    assert "OK" in capsys.readouterr().out


def test_check_lists_every_problem_with_file_row_and_fix(prog, capsys):
    rows = prog.roster.read_text().splitlines()
    rows[1] = rows[1].replace("richard.hale@example.com", "bob@")
    rows[2] = rows[2].replace("Asia/Kolkata", "Asia/Kolkatta", 1)
    rows.append(rows[3])  # duplicate pair_id P03
    prog.roster.write_text("\n".join(rows) + "\n")
    templates = prog.root / "my-templates"
    templates.mkdir()
    (templates / "agenda.txt").write_text("Subject: {{ program.name }}\n\nbody {% if %}\n")
    text = prog.config.read_text().replace('# dir = "my-templates"', 'dir = "my-templates"')
    prog.config.write_text(text)
    assert prog.cli("check") == 2
    out = capsys.readouterr().out
    assert "roster.csv: row 2, column mentee_email: 'bob@' is not an email address" in out
    assert "row 3, column mentor_timezone" in out and "Asia/Kolkata" in out  # did-you-mean
    assert "pair_id" in out and "P03" in out
    assert "agenda.txt: line 3: template syntax error" in out


def test_check_config_typo_suggests_the_key_and_exits_2(prog, capsys):
    prog.config.write_text(prog.config.read_text().replace("cadence = ", "cadense = "))
    assert prog.cli("check") == 2
    out = capsys.readouterr().out
    assert "cadense" in out and "cadence" in out


def test_missing_config_says_not_found_with_the_path(tmp_path, capsys):
    assert Programme(tmp_path).cli("status") == 2
    assert capsys.readouterr().err == f"rmdaemon: not found: {tmp_path / 'rmdaemon.toml'} (the config file, given with --config); check the path\n"
    assert main(["check", "--config", str(tmp_path)]) == 2
    assert f"{tmp_path}: is a folder, not a config file" in capsys.readouterr().out


def test_no_config_anywhere_says_how_to_start(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RMDAEMON_CONFIG", raising=False)
    assert main(["status"]) == 2
    assert capsys.readouterr().err == ("rmdaemon: not found: rmdaemon.toml (the config file, the default); give --config "
                                       "PATH or set $RMDAEMON_CONFIG, or start one here with: rmdaemon init .\n")


def test_bad_now_is_a_usage_error(prog, capsys):
    assert prog.cli("run", "--now", "tomorrow") == 2
    assert "ISO 8601" in capsys.readouterr().err


def test_parse_reply_prints_contract_json(tmp_path):
    eml = tmp_path / "reply.eml"
    eml.write_bytes(b"From: Alex <alex@example.com>\r\nTo: mentoring@example.com\r\n"
                    b"Subject: Re: Pilot: session 1 [RM-7F3K2Q]\r\nMessage-ID: <a1@example.com>\r\n"
                    b"In-Reply-To: <rm.agenda.RM-7F3K2Q.x@example.com>\r\n\r\n"
                    b"Topics: TikTok, search\r\nRating: 4\r\n\r\nOn Mon, Programme wrote:\r\n> agenda\r\n")
    proc = rmdaemon("parse-reply", str(eml), "--json")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    data = json.loads(out)
    assert list(data) == ["message_id", "in_reply_to", "from", "subject", "session_token", "body", "fields",
                          "command", "warnings"]
    assert data["session_token"] == "RM-7F3K2Q" and data["from"] == "alex@example.com"
    assert data["fields"]["rating"] == 4 and "agenda" not in data["body"]


def test_parse_reply_unreadable_file_exits_non_zero(tmp_path):
    proc = rmdaemon("parse-reply", str(tmp_path / "missing.eml"), "--json")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "missing.eml" in err and "Traceback" not in err



def test_daemon_runs_forever_refuses_a_second_instance_and_stops_cleanly_on_sigterm(prog):
    daemon = rmdaemon("--config", str(prog.config), "run")
    try:
        assert wait_for(lambda: len(prog.outbox_files()) == 14), "kickoffs were not sent by the running daemon"
        second = rmdaemon("--config", str(prog.config), "run", "--once")
        _, err = second.communicate(timeout=30)
        assert second.returncode == 2
        assert "another rmdaemon" in err and f"pid {daemon.pid}" in err
        status = rmdaemon("--config", str(prog.config), "status", "--json")  # readers are welcome
        out, _ = status.communicate(timeout=30)
        assert status.returncode == 0 and json.loads(out)["jobs"]["consent"]["last_ok"]
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
    third = rmdaemon("--config", str(prog.config), "run", "--once")  # the lock went with the process
    third.communicate(timeout=30)
    assert third.returncode == 0
    assert len(prog.outbox_files()) == 14


def test_global_options_stand_before_or_after_the_subcommand(prog, capsys):
    from rmdaemon.cli import main

    assert main(["check", "--config", str(prog.config)]) == 0
    assert main(["--config", str(prog.root / "elsewhere.toml"), "check", "--config", str(prog.config)]) == 0  # the later wins
    assert main(["-v", "check", "--config", str(prog.config)]) == 0
    assert capsys.readouterr().out.count(": OK") == 3


def test_version_names_the_package(capsys):
    from rmdaemon import __version__
    from rmdaemon.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"rmdaemon {__version__}\n"


def test_a_dry_run_says_would_and_sends_nothing(prog, capsys):
    assert prog.cli("run", "--dry-run", "--now", "2027-01-04T08:00:00+00:00") == 0
    out = capsys.readouterr().out
    assert out.startswith("rmdaemon dry run at 2027-01-04T08:00+00:00: nothing below is sent, booked or written\n")
    assert "consent: 14 kickoff would be sent" in out and "P01: kickoff would be sent to Aisha Khan" in out
    assert "kickoff sent" not in out and not prog.outbox_files()


def test_status_shows_names_and_times_to_the_minute(prog, capsys):
    assert prog.run(datetime(2027, 1, 4, 8, 0, 30, 123456, tzinfo=timezone.utc)) == 0
    capsys.readouterr()
    assert prog.cli("status", "--now", "2027-01-04T09:00:00+00:00") == 0
    out = capsys.readouterr().out
    assert "P01   Aisha Khan" in out and "Richard Hale" in out
    assert "job consent: last ok Mon 04 Jan 2027, 08:00 GMT" in out and "123456" not in out


def test_status_piped_into_head_is_quiet(prog):
    """A roster long enough to fill the pipe: the reader closes it after one line."""
    rows = prog.roster.read_text().splitlines()
    head, row = rows[0], rows[1].split(",")
    lines = [",".join([f"X{i:05d}", row[1], f"m{i}@example.com", row[3], f"e{i}@example.com", *row[5:]])
             for i in range(3000)]
    prog.roster.write_text("\n".join([head, *lines]) + "\n")
    proc = rmdaemon("--config", str(prog.config), "status", "--now", "2027-01-04T08:00:00+00:00")
    assert proc.stdout.readline().startswith("PAIR")
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == ""


def graph_config(prog: Programme, example: str, tenant: str, secret: str) -> None:
    text = example.replace('kind = "local" ', 'kind = "graph" ')
    text = text.replace('# [backend.graph] ', '[backend.graph] ').replace(
        '# tenant_id = "00000000-0000-0000-0000-000000000000"  # Directory', f'tenant_id = "{tenant}"  # Directory')
    text = text.replace('# client_id = "00000000-0000-0000-0000-000000000000"  # Application',
                        'client_id = "11111111-2222-3333-4444-555555555555"  # Application')
    prog.config.write_text(text.replace('# client_secret_env = "RMDAEMON_GRAPH_SECRET"', f'client_secret_env = "{secret}"'))


def test_offline_check_names_an_unset_secret_variable_and_a_malformed_tenant(prog, capsys, monkeypatch):
    monkeypatch.delenv("RMDAEMON_TEST_GRAPH_SECRET", raising=False)
    example = prog.config.read_text()
    graph_config(prog, example, "x", "RMDAEMON_TEST_GRAPH_SECRET")
    assert prog.cli("check") == 2
    out = capsys.readouterr().out
    assert "[backend.graph] client_secret_env: environment variable RMDAEMON_TEST_GRAPH_SECRET is not set" in out
    assert "[backend.graph] tenant_id: 'x' is not a tenant id" in out
    monkeypatch.setenv("RMDAEMON_TEST_GRAPH_SECRET", "s3cr3t-value")
    graph_config(prog, example, "contoso.onmicrosoft.com", "RMDAEMON_TEST_GRAPH_SECRET")
    assert prog.cli("check") == 0
    assert "s3cr3t-value" not in capsys.readouterr().out
