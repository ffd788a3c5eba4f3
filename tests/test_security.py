"""Hostile input and leaks (issue 7, docs/security.md): each protection has a test here that
fails when the protection is removed. Real programme folders, the real CLI, real bytes."""

from __future__ import annotations

import csv
import io
import os
import stat
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import jinja2.exceptions
import pytest

from programme import Programme, inbox_rows
from rmdaemon import compose
from rmdaemon.store import Store
from rmdaemon.templatecheck import TemplateError

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
MENTOR, MENTEE = "aisha.khan@example.com", "richard.hale@example.com"
ONE_PAIR = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal\n"
            f"P01,Aisha Khan,{MENTOR},Richard Hale,{MENTEE},Understand TikTok\n")


def table(prog: Programme, name: str) -> list[dict]:
    with Store.open(prog.state, writer=False) as store:
        return [dict(d) for d in store.table(name).all()]


def active_pair(tmp_path: Path, roster: str = ONE_PAIR, **config: str) -> Programme:
    """One pair, both opted in and booked."""
    prog = Programme.create(tmp_path, roster=roster, cadence='"weekly"', **config)
    assert prog.run(T0) == 0
    for kickoff in prog.outbox("kickoff"):
        prog.reply(kickoff, "YES", T0)
    assert prog.run(T0 + timedelta(hours=1)) == 0
    return prog


def first_agenda(prog: Programme, to: str) -> tuple[EmailMessage, datetime]:
    """Walk forward until ``to`` has an agenda; returns it and the moment it arrived."""
    now = T0 + timedelta(hours=1)
    while not prog.outbox("agenda.", to=to):
        now += timedelta(hours=12)
        assert now < T0 + timedelta(days=30), "no agenda within a month"
        assert prog.run(now) == 0
    return prog.outbox("agenda.", to=to)[0], now


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


# --------------------------------------------------------------------------------------------
# Names that become file names or headers


@pytest.mark.parametrize("pair_id", ["../../etc", "/etc/passwd", "a/b", "..", "P\x1b01", "P 01", "Ｐ０１", "P01\\x"])
def test_check_refuses_pair_ids_that_could_leave_a_folder_or_hide_characters(tmp_path, capsys, pair_id):
    roster = ONE_PAIR.replace("P01,", f'"{pair_id}",')
    prog = Programme.create(tmp_path, roster=roster)
    assert prog.cli("check") == 2
    out = capsys.readouterr().out
    assert "row 2, column pair_id" in out and "letters, digits, - and _" in out


def test_check_refuses_a_name_with_a_line_break_that_would_add_a_mail_header(tmp_path, capsys):
    roster = ONE_PAIR.replace("Aisha Khan,", '"Aisha\r\nBcc: all-staff@example.com",')
    prog = Programme.create(tmp_path, roster=roster)
    assert prog.cli("check") == 2
    assert "row 2, column mentor_name" in capsys.readouterr().out
    assert prog.run(T0) == 2  # the daemon acts on no half-read roster
    assert not prog.outbox_files()


def test_quarantined_file_name_is_a_hash_even_when_the_message_id_is_a_path(tmp_path):
    prog = Programme.create(tmp_path, roster=ONE_PAIR)
    raw = (b"From: mallory@evil.example\r\nTo: mentoring@example.com\r\nSubject: hi\r\n"
           b"Message-ID: ../../escaped.eml\r\n\r\nhello\r\n")
    prog.drop(raw, "evil.eml")
    assert prog.run(T0) == 0
    (row,) = inbox_rows(prog)
    assert row["outcome"] == "quarantine" and row["message_key"] == "../../escaped.eml"
    folder = prog.root / "var" / "quarantine"
    assert [p.name for p in folder.iterdir()] == [row["quarantine"]]
    assert (folder / row["quarantine"]).read_bytes() == raw
    assert not [p for p in files_under(tmp_path) if p.name == "escaped.eml"]


# --------------------------------------------------------------------------------------------
# Who may speak for a pair


def test_a_stranger_replying_on_a_pairs_agenda_is_quarantined_not_logged(tmp_path):
    prog = active_pair(tmp_path)
    agenda, now = first_agenda(prog, MENTOR)
    raw = prog.reply(agenda, "Attended: yes\nRating: 1\nSTOP", now, sender="mallory@evil.example").read_bytes()
    assert prog.run(now) == 0
    assert not table(prog, "logs") and not table(prog, "commands")
    row = inbox_rows(prog)[-1]
    # quarantined for who sent it, not because handling it went wrong further on
    assert (row["outcome"], row["pair_id"], row["reason"]) == (
        "quarantine", "P01", "sender mallory@evil.example is not part of pair P01")
    assert (prog.root / "var" / "quarantine" / row["quarantine"]).read_bytes() == raw


AUTH = {"trust_authentication_results": "true", "authserv_id": '"mx.example.com"'}


def with_auth_results(path: Path, *headers: str) -> None:
    """Prepend headers to a dropped message, as the receiving server would."""
    lines = "".join(f"Authentication-Results: {h}\r\n" for h in headers).encode()
    path.write_bytes(lines + path.read_bytes())


def test_dmarc_fail_from_our_server_is_quarantined_even_though_from_matches(tmp_path):
    prog = active_pair(tmp_path, **AUTH)
    agenda, now = first_agenda(prog, MENTOR)
    path = prog.reply(agenda, "STOP", now)
    with_auth_results(path, "mx.example.com; spf=pass smtp.mailfrom=example.com; dmarc=fail (p=none) header.from=example.com")
    assert prog.run(now) == 0
    row = inbox_rows(prog)[-1]
    assert row["outcome"] == "quarantine" and "dmarc=fail" in row["reason"]
    assert not table(prog, "commands")  # the forged STOP did nothing
    assert {p["state"] for p in table(prog, "pairs")} == {"active"}


def test_spf_fail_quarantines_and_a_pass_written_by_anyone_else_changes_nothing(tmp_path):
    prog = active_pair(tmp_path, **AUTH)
    agenda, now = first_agenda(prog, MENTOR)
    path = prog.reply(agenda, "PAUSE", now)
    with_auth_results(path, "mx.example.com; spf=fail smtp.mailfrom=example.com",
                      "mx.example.com; spf=pass; dmarc=pass")  # a forged second header by the sender
    assert prog.run(now) == 0
    assert "spf=fail" in inbox_rows(prog)[-1]["reason"]


def test_authentication_results_of_another_server_are_ignored_and_untrusted_config_ignores_all(tmp_path):
    prog = active_pair(tmp_path, **AUTH)
    agenda, now = first_agenda(prog, MENTOR)
    path = prog.reply(agenda, "Attended: yes\nRating: 5", now)
    with_auth_results(path, "mx.evil.example; dmarc=fail")  # a sender cannot speak for our server
    assert prog.run(now) == 0
    assert inbox_rows(prog)[-1]["outcome"] == "log"
    trusting_nobody = active_pair(tmp_path / "plain")
    agenda, now = first_agenda(trusting_nobody, MENTOR)
    path = trusting_nobody.reply(agenda, "Attended: yes\nRating: 5", now)
    with_auth_results(path, "mx.example.com; dmarc=fail")
    assert trusting_nobody.run(now) == 0
    assert inbox_rows(trusting_nobody)[-1]["outcome"] == "log"  # the switch is off by default


def test_trusting_authentication_results_needs_the_servers_authserv_id(tmp_path, capsys):
    prog = Programme.create(tmp_path, roster=ONE_PAIR, trust_authentication_results="true")
    assert prog.cli("check") == 2
    assert "[security] authserv_id" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Reply text in later mail and in the report; templates


def test_reply_text_shown_in_the_next_agenda_is_escaped_in_its_html(tmp_path):
    prog = active_pair(tmp_path)
    agenda, now = first_agenda(prog, MENTOR)
    session_end = now + timedelta(days=2)
    assert prog.run(session_end) == 0
    prog.reply(agenda, 'Attended: yes\nNext steps: <script>alert("x")</script> & <img src=x onerror=alert(1)>\n'
                       "Rating: 4", session_end)
    now = session_end
    while len(prog.outbox("agenda.", to=MENTOR)) < 2:
        now += timedelta(hours=12)
        assert prog.run(now) == 0
    newest = max(prog.outbox("agenda.", to=MENTOR), key=lambda m: m["Date"].datetime)
    html = newest.get_body(("html",)).get_content()
    assert "&lt;script&gt;" in html and "<script" not in html and "<img" not in html
    assert '<script>alert("x")</script>' in newest.get_body(("plain",)).get_content()  # plain text is plain


def test_templates_are_sandboxed(tmp_path):
    override = tmp_path / "my-templates"
    override.mkdir()
    (override / "nudge.txt").write_text("Subject: x\n\n{{ ''.__class__.__mro__[1].__subclasses__() }}\n")
    problems = compose.check_templates(override)  # check finds it, with file and line
    assert len(problems) == 1 and "nudge.txt: line 3: access to attribute '__class__' of 'str' object is unsafe" in problems[0]
    unchecked = compose.Templates(env=compose._environment(override), starters={})
    with pytest.raises(TemplateError) as caught:  # and rendering without the check still refuses
        compose.render(unchecked, "nudge", {})
    assert isinstance(caught.value.__cause__, jinja2.exceptions.SecurityError)


def test_the_html_report_escapes_roster_text(tmp_path, capsys):
    roster = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,track\n"
              f'P01,<script>alert(1)</script>,{MENTOR},Richard <b>Hale</b>,{MENTEE},goal,"<img src=x onerror=alert(2)>"\n')
    prog = Programme.create(tmp_path, roster=roster)
    assert prog.run(T0) == 0
    capsys.readouterr()
    assert prog.cli("report", "--format", "html", "--now", (T0 + timedelta(days=1)).isoformat()) == 0
    page = capsys.readouterr().out
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>Hale" not in page


FORMULAS = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)"]


def test_csv_report_neutralises_cells_that_a_spreadsheet_would_run_as_formulas(tmp_path, capsys):
    mentor, mentee, track = FORMULAS[0], FORMULAS[1], FORMULAS[3]
    roster = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,track\n"
              f'P01,"{mentor.replace(chr(34), chr(34) * 2)}",{MENTOR},"{mentee}",{MENTEE},{FORMULAS[2]},"{track}"\n')
    prog = Programme.create(tmp_path, roster=roster)
    assert prog.run(T0) == 0
    capsys.readouterr()
    assert prog.cli("report", "--format", "csv", "--now", (T0 + timedelta(days=1)).isoformat()) == 0
    cells = [cell for row in csv.reader(io.StringIO(capsys.readouterr().out)) for cell in row]
    dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert not dangerous, dangerous
    assert prog.cli("report", "--format", "csv", "--table", "figures", "--now", (T0 + timedelta(days=1)).isoformat()) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert any(r["group"] == "'" + track for r in rows)  # the track, a column of its own in the figures table
    assert not [r for r in rows if (r["group"] + r["figure"])[:1] in ("=", "+", "-", "@", "\t", "\r")]


# OWASP's list, written out here (not imported) so narrowing the code's list fails a test.
OWASP_FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r"]
# The pairs table's text (it carries no notes); its other columns are numbers, "yes"/"no", "private"
# and the funnel's and attention's own words.
TEXT_COLUMNS = ["pair_id", "mentor", "mentee", "track", "state", "cohort"]


@pytest.mark.parametrize("start", OWASP_FORMULA_STARTS, ids=repr)
@pytest.mark.parametrize("column", TEXT_COLUMNS)
def test_every_formula_start_in_every_text_column_of_the_csv_is_shown_as_text(tmp_path, column, start):
    """The roster strips tabs and CRs and pair ids cannot hold most of these, so the rows are
    made directly: the CSV must hold up whatever reaches it."""
    from dataclasses import replace

    from rmdaemon.config import load_settings
    from rmdaemon.report import csvfile
    from test_report import full_report

    data = full_report(load_settings(Programme.create(tmp_path).config))
    payload = f"{start}HYPERLINK(\"http://evil.example\",\"x\")"
    rows = [replace(data.pairs[0], **{column: payload}), *data.pairs[1:]]
    table = list(csv.DictReader(io.StringIO(csvfile.render(replace(data, pairs=rows)), newline="")))
    assert table[0][column] == "'" + payload
    dangerous = [cell for row in table for cell in row.values() if cell[:1] in OWASP_FORMULA_STARTS]
    assert not dangerous, dangerous


@pytest.mark.parametrize("start", OWASP_FORMULA_STARTS, ids=repr)
def test_every_formula_start_in_the_figures_table_is_shown_as_text(tmp_path, start):
    """The figures table names tracks, cohorts and pairs needing attention in its ``group`` column:
    roster text, neutralised like the pairs table's. Its ``value`` column is numbers only (a fall
    in a survey score is a negative number, which a spreadsheet reads as a number, not a formula)."""
    from dataclasses import replace

    from rmdaemon.config import load_settings
    from rmdaemon.programme.engagement import Attention
    from rmdaemon.report import csvfile
    from test_report import full_report

    data = full_report(load_settings(Programme.create(tmp_path).config))
    payload = f"{start}HYPERLINK(\"http://evil.example\",\"x\")"
    track = replace(data.summary.tracks[0], track=payload)
    data = replace(data, summary=replace(data.summary, tracks=(track,)), cohorts=(replace(track, track=payload + " c"),),
                   attention=(Attention(payload + " p", "Alex", "Sam", "fizzling", missed=2, held=1),))
    table = list(csv.DictReader(io.StringIO(csvfile.figures(data), newline="")))
    groups = {row["section"]: row["group"] for row in table if payload in row["group"]}
    assert groups == {"track": "'" + payload, "cohort": "'" + payload + " c", "needs attention": "'" + payload + " p"}
    dangerous = [row for row in table if (row["section"] + row["group"] + row["figure"])[:1] in OWASP_FORMULA_STARTS
                 or row["value"][:1] in ("=", "+", "@", "\t", "\r")]
    assert not dangerous, dangerous


# --------------------------------------------------------------------------------------------
# Files on disk


def test_state_lock_backup_and_quarantine_are_private_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        prog = Programme.create(tmp_path, roster=ONE_PAIR)
        (prog.root / "var" / "quarantine").mkdir(parents=True, mode=0o755)  # as a careless older version left it
        prog.drop(b"From: x@elsewhere.example\r\nMessage-ID: <q1@elsewhere.example>\r\n\r\nhi\r\n", "q1.eml")
        assert prog.run(T0) == 0
        assert prog.run(T0 + timedelta(hours=1)) == 0  # a second write makes the .bak
    finally:
        os.umask(old)
    var = prog.root / "var"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (var / "state.json", var / "state.json.bak",
                                                              var / "state.json.lock", var / "quarantine")}
    assert modes == {"state.json": 0o600, "state.json.bak": 0o600, "state.json.lock": 0o600, "quarantine": 0o700}
    (quarantined,) = (var / "quarantine").iterdir()
    assert stat.S_IMODE(quarantined.stat().st_mode) == 0o600


# --------------------------------------------------------------------------------------------
# Size limits


def test_a_message_over_the_size_limit_is_quarantined_unread_with_its_start_kept(tmp_path):
    prog = active_pair(tmp_path, max_message_bytes="4096")
    agenda, now = first_agenda(prog, MENTOR)
    path = prog.reply(agenda, "STOP\n\n" + "padding " * 1000, now)
    raw = path.read_bytes()
    assert len(raw) > 4096
    assert prog.run(now) == 0
    row = inbox_rows(prog)[-1]
    assert row["outcome"] == "quarantine" and "max_message_bytes" in row["reason"]
    assert (prog.root / "var" / "quarantine" / row["quarantine"]).read_bytes() == raw[:4096]
    assert not table(prog, "commands")  # the STOP inside was never read
    assert not list((prog.root / "var" / "inbox" / "new").iterdir())  # processed: the mailbox keeps it


def test_oversized_config_and_roster_files_are_refused_by_name(tmp_path, capsys):
    prog = Programme.create(tmp_path, roster=ONE_PAIR)
    with prog.roster.open("a") as f:
        f.write(("#" * 1023 + "\n") * (10 * 1024 + 1))
    assert prog.cli("check") == 2
    assert "roster.csv: more than 10,485,760 bytes" in capsys.readouterr().out
    prog.config.write_text(prog.config.read_text() + ("#" * 1023 + "\n") * 1025)
    assert prog.cli("check") == 2
    out = capsys.readouterr().out
    assert "rmdaemon.toml: more than 1,048,576 bytes" in out and "Traceback" not in out


# --------------------------------------------------------------------------------------------
# Secrets


SECRET = "Zq9-s3cret-Pa55word!"
SERVICE = "svc-secret"


def exchange_programme(tmp_path: Path, url: str) -> Programme:
    roster = ONE_PAIR.replace("@example.com", "@corp.example")
    prog = Programme.create(tmp_path, roster=roster, organizer='"mentoring@corp.example"', kind='"exchange"')
    with prog.config.open("a") as f:
        f.write(f'\n[backend.exchange]\nservice_endpoint = "{url}"\nauth = "basic"\nusername = "{SERVICE}"\n'
                'password_env = "RMDAEMON_EWS_PASSWORD"\nretry_budget_seconds = 1\n')
    return prog


def rmdaemon(prog: Programme, *args: str) -> str:
    """Everything a run prints, stdout and stderr, at the most talkative log level."""
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), RMDAEMON_EWS_PASSWORD=SECRET)
    done = subprocess.run([sys.executable, "-m", "rmdaemon", "--verbose", "--config", str(prog.config), *args],
                          capture_output=True, env=env, timeout=120)
    return done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")


def secret_forms() -> list[str]:
    """The password as it could leak: plain, in a Basic header, base64 alone, URL-encoded."""
    import base64
    from urllib.parse import quote

    return [SECRET, base64.b64encode(f"{SERVICE}:{SECRET}".encode()).decode(), base64.b64encode(SECRET.encode()).decode(),
            quote(SECRET)]


def test_the_exchange_password_never_appears_in_output_logs_errors_or_files(tmp_path, ews_server):
    ews_server.control.add_account(SERVICE, SECRET, f"{SERVICE}@corp.example", delegate_for=["mentoring@corp.example"])
    for person in ("aisha.khan@corp.example", "richard.hale@corp.example"):
        ews_server.control.add_mailbox(person)
    prog = exchange_programme(tmp_path, ews_server.url)
    outputs = [rmdaemon(prog, "check", "--online"), rmdaemon(prog, "run", "--now", T0.isoformat())]
    assert "kickoff" in outputs[-1]  # the run really talked to the server
    for kind in ("busy", "http500", "http503", "drop"):  # error paths print what failed
        ews_server.add_fault(kind, times=2)
    outputs.append(rmdaemon(prog, "run", "--now", (T0 + timedelta(hours=1)).isoformat()))
    ews_server.store.accounts[SERVICE].password = "rotated"  # the server now refuses the login
    outputs += [rmdaemon(prog, "run", "--now", (T0 + timedelta(hours=2)).isoformat()), rmdaemon(prog, "check", "--online"),
                rmdaemon(prog, "status", "--json")]
    assert "bad credentials" in outputs[-2]
    texts = outputs + [p.read_bytes().decode("utf-8", "replace") for p in files_under(tmp_path)]
    leaks = [form for form in secret_forms() for text in texts if form in text]
    assert not leaks, f"secret found in output or files: {leaks}"


def test_log_records_never_carry_an_authorization_value_even_in_a_traceback():
    import logging

    from rmdaemon.logsetup import RedactCredentials

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactCredentials())
    logger = logging.getLogger("rmdaemon.test-redaction")
    logger.addHandler(handler)
    try:
        headers = {"Authorization": "Basic c3ZjOnBhc3N3b3Jk", "Content-Type": "text/xml"}
        logger.error("Request headers: %s", headers)
        try:
            raise RuntimeError("proxy said Proxy-Authorization: Bearer eyJ0eXAi.secret")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "c3ZjOnBhc3N3b3Jk" not in text and "eyJ0eXAi" not in text
    assert "'Authorization': '[redacted]'" in text and "text/xml" in text


@pytest.mark.parametrize(("header", "found"), [
    ("MX.Example.COM 1; DMARC=FAIL (p=reject) header.from=example.com", ["dmarc=fail"]),  # version, any case
    ("mx.example.com; spf=fail (sender (ip 192.0.2.1) not permitted) smtp.mailfrom=x; dmarc=pass", ["spf=fail"]),
    ("mx.example.com; spf=softfail; dmarc=none; dkim=fail", []),  # only fail of spf or dmarc counts
    ("(comment) mx.example.com; dmarc=fail", ["dmarc=fail"]),
    ("mx.example.com.evil.example; dmarc=fail", []),  # a look-alike server name is someone else
    ("mx.example.com", []),
])
def test_authentication_results_are_read_as_rfc_8601_writes_them(header, found):
    from rmdaemon import authres

    raw = f"Authentication-Results: {header}\r\nFrom: a@example.com\r\n\r\nbody\r\n".encode()
    assert authres.failures(raw, "mx.example.com") == found
