"""The programme run through the real CLI with ``[backend] kind = "graph"`` against the Graph test
server over HTTPS: tokens from its identity endpoints through msal, every mail and meeting through
Graph, and the people answer the way Outlook users do — replies land in the programme mailbox,
Accept/Decline clicks come back as meeting responses. Nothing is patched: the client secret reaches
the daemon through the environment variable the config names, and the CA through ``ca_file``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import trustme

from programme import Programme, booked, opt_in_all, outbox_statuses, status
from programme import kill_during as run_killed
from rmdaemon import daemon
from rmdaemon.backends.factory import open_backend
from rmdaemon.config import load_settings
from rmdaemon.store import Store
from tests.servers import FakeTime
from tests.servers.graph.fixtures import CLIENT_ID, PROGRAMME, SECRET, TENANT, graph_server  # noqa: F401
from tests.servers.graph.server import GraphServer
from tests.servers.graph.store import Hours as GraphHours

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=1)
ACTIVE = ["P01", "P02", "P03", "P04", "P05", "P07", "P08"]
SECRET_ENV = "RMDAEMON_TEST_GRAPH_SECRET"


@dataclass
class GraphProgramme(Programme):
    """``Programme`` whose mail travels through the Graph test server instead of Maildirs."""

    server: GraphServer | None = None

    @property
    def graph(self) -> GraphServer:
        assert self.server is not None
        return self.server

    def run(self, now: datetime, *args: str) -> int:
        """A tick at ``now``: the service's per-minute send limit counts on the simulated clock too."""
        self.graph.pace.clock = lambda: now.timestamp()
        return super().run(now, *args)

    def drop(self, raw: bytes, name: str) -> Path:
        """A person's reply arrives in the programme mailbox's inbox."""
        self.graph.control.deliver(PROGRAMME, raw)
        return self.root / name

    def outbox(self, kind: str = "", to: str = "") -> list[EmailMessage]:
        """The emails that left the programme mailbox (mail, not meeting traffic)."""
        found = []
        for sent in self.graph.control.sent(PROGRAMME):
            msg = message_from_bytes(sent.mime, policy=policy.default)
            if sent.kind == "message" and msg["Message-ID"].startswith(f"<rm.{kind}") and to in str(msg["To"]):
                found.append(msg)
        return found

    def calendar_mail(self, address: str, method: str) -> list[str]:
        """The iCalendar text of every meeting message of ``method`` in a person's inbox."""
        found = []
        for raw in self.graph.control.received(address):
            msg = message_from_bytes(raw, policy=policy.default)
            for part in msg.walk():
                if part.get_content_type() == "text/calendar" and f"METHOD:{method}" in part.get_content():
                    found.append(part.get_content())
        return found

    def series(self) -> dict[str, object]:
        """The organiser's events by pair id (read from our own property, as the backend does)."""
        by_uid = {doc["series"]["uid"]: pid for pid, doc in self.docs().items() if doc.get("series")}
        return {by_uid[self.graph.control.extended(e, "rmdaemon-key")]: e for e in self.graph.control.events(PROGRAMME)}



def graph_section(server: GraphServer) -> str:
    return f"""
[backend.graph]
tenant_id = "{TENANT}"
client_id = "{CLIENT_ID}"
client_secret_env = "{SECRET_ENV}"
authority_host = "{server.base}"
graph_base = "{server.base}"
ca_file = "{server.ca_file}"
retry_budget_seconds = 2
"""


def graph_programme(root: Path, server: GraphServer, monkeypatch: pytest.MonkeyPatch, roster: str | None = None,
                    **program: str) -> GraphProgramme:
    prog = GraphProgramme.create(root, roster=roster, organizer=f'"{PROGRAMME}"', kind='"graph"', **program)
    prog.server = server
    prog.config.write_text(prog.config.read_text() + graph_section(server))
    monkeypatch.setenv(SECRET_ENV, SECRET)
    for row in csv.DictReader(prog.roster.open(encoding="utf-8")):
        server.control.add_mailbox(row["mentor_email"], row["mentor_name"])
        server.control.add_mailbox(row["mentee_email"], row["mentee_name"])
    return prog


@pytest.fixture
def prog(tmp_path: Path, graph_server: GraphServer, monkeypatch: pytest.MonkeyPatch) -> GraphProgramme:
    """The example programme on Microsoft 365: everyone has a mailbox in the tenant."""
    return graph_programme(tmp_path, graph_server, monkeypatch)



def creates(server: GraphServer) -> int:
    return sum(1 for e in server.graph_requests(parts=True) + server.graph_requests() if e.method == "POST" and e.path.endswith("/events"))


def kill_during(prog: GraphProgramme, method: str, path: str, now: datetime) -> None:
    """Run the daemon as its own process and SIGKILL it once Graph did the held request's work."""
    run_killed(prog, prog.graph.hold(method, path), now, {SECRET_ENV: SECRET})


# ---------------------------------------------------------------------------------------------


def test_consent_then_every_pair_is_booked_in_one_round_trip_with_invitations(prog, capsys):
    assert prog.run(T0) == 0
    (kickoff,) = prog.graph.control.received("richard.hale@example.com")  # delivered into the person's mailbox
    assert b"Message-ID: <rm.kickoff" in kickoff
    assert len(prog.outbox("kickoff")) == 2 * len(ACTIVE)
    assert not prog.graph.control.events(PROGRAMME)  # nothing is booked before both said yes
    opt_in_all(prog, T0)
    prog.graph.log.clear()
    assert prog.run(T1) == 0
    posts = [e for e in prog.graph.graph_requests() if e.method == "POST" and e.path == "/$batch"]
    # The replies' sizes, then their MIME (the inbox), then every create in one; free/busy is a getSchedule.
    assert creates(prog.graph) == len(ACTIVE) and len(posts) == 3
    series = prog.series()
    assert sorted(series) == ACTIVE
    for pair_id in ACTIVE:
        assert (series[pair_id].fields["sensitivity"], series[pair_id].fields["showAs"]) == ("private", "busy")
    uid = prog.docs()["P01"]["series"]["uid"]
    for address in ("richard.hale@example.com", "aisha.khan@example.com"):
        (request,) = prog.calendar_mail(address, "REQUEST")
        assert f"UID:{uid}" in request  # our UID, carried by PidLidGlobalObjectId
        assert len(prog.graph.control.events(address)) == 1  # the tentative copy in their own calendar
    rows = status(prog, T1, capsys)
    assert all(rows[p]["state"] == "active" and rows[p]["next_session"] for p in ACTIVE)
    assert prog.run(T1 + timedelta(minutes=30)) == 0  # a rerun books nothing again
    assert creates(prog.graph) == len(ACTIVE) and len(prog.graph.control.events(PROGRAMME)) == len(ACTIVE)


def test_a_pair_is_booked_inside_the_hours_they_keep_in_outlook(tmp_path, graph_server, monkeypatch, capsys):
    """Neither roster row gives working hours (the config says 09:00-17:00); both people keep
    07:00-09:00 in Outlook, in the zone Windows calls "GMT Standard Time": that is where they meet."""
    roster = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal\n"
              "P01,Ann Mentor,ann@example.com,Ben Mentee,ben@example.com,Learn the new tools\n")
    prog = graph_programme(tmp_path, graph_server, monkeypatch, roster=roster)
    for address in ("ann@example.com", "ben@example.com"):
        prog.graph.control.set_working_hours(address, GraphHours("GMT Standard Time", "07:00:00.0000000", "09:00:00.0000000"))
    assert prog.run(T0) == 0
    opt_in_all(prog, T0)
    capsys.readouterr()
    assert prog.run(T1) == 0
    assert "working hours from Exchange: ann@example.com 07:00-09:00" in capsys.readouterr().out
    london = ZoneInfo("Europe/London")
    (event,) = prog.graph.control.events("ben@example.com")
    starts = [s.astimezone(london) for s in prog.graph.control.live_starts(event)]
    assert starts and all(time(7) <= s.time() and s.time() <= time(8, 15) for s in starts), starts


def test_accept_and_decline_in_outlook_flow_back_to_the_pair(prog, capsys):
    booked(prog, T0)
    uid = prog.docs()["P01"]["series"]["uid"]
    prog.graph.control.respond("aisha.khan@example.com", uid, "Accept")
    prog.graph.control.respond("richard.hale@example.com", uid, "Decline")
    assert prog.run(T1 + timedelta(hours=1)) == 0
    responses = prog.docs()["P01"]["responses"]
    assert responses["aisha.khan@example.com"] == {"series": "ACCEPTED"}
    assert responses["richard.hale@example.com"] == {"series": "DECLINED"}
    answers = [m for m in prog.graph.control.messages(PROGRAMME) if m.kind == "eventMessageResponse"]
    assert len(answers) == 2 and all(m.is_read and "rmdaemon: processed" in m.categories for m in answers)


def test_agenda_reply_becomes_a_log_and_skip_cancels_only_that_session(prog, capsys):
    booked(prog, T0)
    start = datetime.fromisoformat(status(prog, T1, capsys)["P01"]["next_session"])
    assert prog.run(start - timedelta(hours=23)) == 0
    agendas = prog.outbox("agenda.", to="richard.hale") + prog.outbox("agenda.", to="aisha.khan")
    assert len(agendas) == 2
    prog.reply(agendas[1], "Attended: yes\nTopics: TikTok search\nNext steps: follow three creators\nRating: 4",
               start + timedelta(hours=2))
    assert prog.run(start + timedelta(hours=3)) == 0
    row = status(prog, start + timedelta(hours=3), capsys)["P01"]
    assert row["sessions_held"] == 1 and row["last_log"]
    following = datetime.fromisoformat(row["next_session"])
    assert prog.run(following - timedelta(hours=20)) == 0
    newest = max(prog.outbox("agenda.", to="aisha.khan"), key=lambda m: m["Date"].datetime)
    assert "follow three creators" in newest.get_body(("plain",)).get_content()
    prog.reply(newest, "SKIP\n\nTravelling that week, sorry.", following - timedelta(hours=19))
    assert prog.run(following - timedelta(hours=18)) == 0
    event = prog.series()["P01"]
    assert following not in prog.graph.control.live_starts(event) and start in prog.graph.control.live_starts(event)
    for address in ("aisha.khan@example.com", "richard.hale@example.com"):
        (cancel,) = prog.calendar_mail(address, "CANCEL")
        assert f"RECURRENCE-ID:{following:%Y%m%dT%H%M%SZ}" in cancel
        assert len(prog.calendar_mail(address, "REQUEST")) == 1  # the series was not sent again


def test_pause_cancels_the_series_in_every_calendar(prog):
    booked(prog, T0)
    kickoff = prog.outbox("kickoff", to="richard.hale")[0]
    prog.reply(kickoff, "PAUSE\n\nSorry, a busy quarter.", T1 + timedelta(hours=1))
    assert prog.run(T1 + timedelta(hours=2)) == 0
    assert "P01" not in prog.series() and len(prog.series()) == len(ACTIVE) - 1
    for address in ("aisha.khan@example.com", "richard.hale@example.com"):
        (cancel,) = prog.calendar_mail(address, "CANCEL")
        assert "RECURRENCE-ID" not in cancel
        assert prog.graph.control.events(address) == []


def test_killed_between_create_and_record_the_rerun_books_nothing_twice(prog):
    assert prog.run(T0) == 0
    opt_in_all(prog, T0)
    kill_during(prog, "POST", r"/events$", T1)  # Graph booked the first series of the $batch; the daemon died
    done_before_the_kill = prog.graph.control.events(PROGRAMME)  # the $batch runs a few creates at once
    assert 1 <= len(done_before_the_kill) < len(ACTIVE)
    assert all(doc["series"]["published"] is None for doc in prog.docs().values() if doc.get("series"))
    assert prog.run(T1 + timedelta(minutes=5)) == 0
    assert creates(prog.graph) == len(ACTIVE)  # the journal said "creating": the first was found by our property
    assert len(prog.graph.control.events(PROGRAMME)) == len(ACTIVE)
    assert len(prog.calendar_mail("richard.hale@example.com", "REQUEST")) == 1
    assert all(doc["series"]["published"] == 0 for doc in prog.docs().values() if doc.get("series"))


def test_killed_during_a_send_the_rerun_sends_no_mail_twice(prog):
    kill_during(prog, "POST", r"/messages/[^/]+/send$", T0)  # the first kickoff left; the daemon died
    assert len(prog.outbox("kickoff")) == 1
    assert prog.run(T0 + timedelta(minutes=1)) == 0
    keys = [m["Message-ID"] for m in prog.outbox("kickoff")]
    assert len(keys) == 2 * len(ACTIVE) == len(set(keys))  # every kickoff once, the first one too
    assert prog.graph.control.messages(PROGRAMME, "drafts") == []


def test_throttling_is_waited_out_and_an_outage_is_retried_next_tick(prog):
    assert prog.run(T0) == 0
    opt_in_all(prog, T0)
    prog.graph.add_fault(429, "POST", r"/getSchedule$", times=2, retry_after=0)
    prog.graph.add_fault(503, "POST", r"^/\$batch$", retry_after=0)
    assert prog.run(T1) == 0
    assert (429, "POST") in [(s, m) for s, m, _ in prog.graph.fired] and (503, "POST") in [(s, m) for s, m, _ in prog.graph.fired]
    assert sorted(prog.series()) == ACTIVE
    kickoff = prog.outbox("kickoff", to="richard.hale")[0]
    prog.reply(kickoff, "PAUSE", T1 + timedelta(hours=1))
    prog.graph.add_fault(429, "POST", r"/cancel$", retry_after=120)  # longer than retry_budget_seconds: later
    assert prog.run(T1 + timedelta(hours=2)) == 0
    assert "P01" in prog.series() and prog.docs()["P01"]["series"]["published"] == 0  # nothing recorded as done
    assert prog.run(T1 + timedelta(hours=3)) == 0
    assert "P01" not in prog.series() and prog.docs()["P01"]["series"]["published"] == 1
    assert len(prog.calendar_mail("aisha.khan@example.com", "CANCEL")) == 1


def test_while_the_client_secret_is_wrong_the_mail_waits_and_goes_once_it_is_fixed(prog, capsys, monkeypatch, caplog):
    monkeypatch.setenv(SECRET_ENV, "the-secret-that-expired")  # Entra ID refuses it: AADSTS7000215
    assert prog.run(T0) == 0
    out = capsys.readouterr().out
    failed = [r for r in caplog.records if r.getMessage().startswith("job inbox failed")]
    assert failed and "AADSTS7000215" in failed[0].getMessage()  # the reason, in the log as in status
    assert not [r for r in caplog.records if r.exc_info]  # a wrong secret is the admin's to fix: no traceback
    assert not prog.outbox("kickoff") and outbox_statuses(prog) == {"pending": 2 * len(ACTIVE)}  # none refused for good
    assert "P01: kickoff not sent: token request refused: invalid_client: AADSTS7000215" in out
    assert "kept: it goes once the admin has fixed this" in out and "kickoff sent to" not in out
    assert prog.cli("status", "--now", T0.isoformat()) == 0
    assert f"waiting: {2 * len(ACTIVE)} emails wait to be sent until the admin fixes this" in capsys.readouterr().out
    monkeypatch.setenv(SECRET_ENV, SECRET)
    assert prog.run(T0 + timedelta(minutes=5)) == 0
    keys = [m["Message-ID"] for m in prog.outbox("kickoff")]
    assert len(keys) == 2 * len(ACTIVE) == len(set(keys)) and outbox_statuses(prog) == {"sent": 2 * len(ACTIVE)}
    assert prog.cli("status", "--now", (T0 + timedelta(minutes=5)).isoformat()) == 0
    assert "waiting:" not in capsys.readouterr().out


def test_while_the_app_is_out_of_the_mailboxs_scope_or_the_ca_is_wrong_the_mail_waits(prog, tmp_path):
    prog.graph.control.scope(CLIENT_ID, ["someone.else@example.com"])  # RBAC scope misses the programme mailbox: 403
    assert prog.run(T0) == 0
    prog.graph.control.scope(CLIENT_ID, [PROGRAMME])
    config = prog.config.read_text()
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))  # a TLS-inspecting proxy's CA missing
    prog.config.write_text(config.replace(f'ca_file = "{prog.graph.ca_file}"', f'ca_file = "{tmp_path / "other-ca.pem"}"'))
    assert prog.run(T0 + timedelta(minutes=5)) == 0
    assert not prog.outbox("kickoff") and outbox_statuses(prog) == {"pending": 2 * len(ACTIVE)}
    prog.config.write_text(config)
    assert prog.run(T0 + timedelta(minutes=10)) == 0
    keys = [m["Message-ID"] for m in prog.outbox("kickoff")]
    assert len(keys) == 2 * len(ACTIVE) == len(set(keys))


def test_the_inbox_is_read_by_delta_across_restarts(prog):
    booked(prog, T0)
    deltas = [e for e in prog.graph.graph_requests() if e.path.endswith("/messages/delta")]
    assert len(deltas) == 2  # one per run: each run continued from the delta link the last one saved
    values = sum(1 for e in prog.graph.graph_requests(parts=True) if e.path.endswith("/$value"))
    assert values == 2 * len(ACTIVE)  # each opt-in read exactly once, none of them again in the second run
    prog.graph.log.clear()
    assert prog.run(T1 + timedelta(minutes=5)) == 0
    assert not any(e.path.endswith("/$value") for e in prog.graph.graph_requests() + prog.graph.graph_requests(parts=True))
    state = json.loads((prog.root / "var" / "graph-state.json").read_text())
    assert state["inbox"]["delta_link"].startswith(prog.graph.base) and state["inbox"]["pending"] == {}


def many_pairs(n: int) -> str:
    rows = ["pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal"]
    rows += [f"Q{i:04d},Mentor {i},mentor{i}@example.com,Mentee {i},mentee{i}@example.com,Learn thing {i}" for i in range(n)]
    return "\n".join(rows) + "\n"


def test_booking_100_pairs_through_the_jobs_costs_six_round_trips(tmp_path, graph_server, monkeypatch, capsys):
    """The booking tick reads free/busy for everyone (20 people per getSchedule, 20 parts per
    $batch) and creates every series 20 per $batch: a handful of round trips per 100 pairs.
    Run through the jobs with the welcome mails paced on a fake clock (200 mails at 30 a minute
    would otherwise take seven real minutes)."""
    prog = graph_programme(tmp_path, graph_server, monkeypatch, roster=many_pairs(100), require_opt_in="false")
    clock = FakeTime()
    graph_server.pace.clock = clock.monotonic
    settings = load_settings(prog.config)
    backend = open_backend(settings, lambda: T0)
    backend.http.sleep = backend.outbox.pace.sleep = clock.sleep  # type: ignore[attr-defined]
    backend.outbox.pace.clock = clock.monotonic  # type: ignore[attr-defined]
    with Store.open(settings.storage_path) as store:
        daemon.tick(store, backend, settings, T0, only_due=False)
    backend.close()
    assert len(prog.series()) == 100
    calendar = [e for e in graph_server.graph_requests() if e.method == "POST" and e.path == "/$batch"]
    parts = graph_server.graph_requests(parts=True)
    booking = sum(1 for e in parts if e.path.endswith(("/getSchedule", "/events")))
    assert booking == 100 + 10  # 100 creates and 200 people's free/busy in 10 getSchedule calls
    with capsys.disabled():
        print(f"\n100 pairs booked through the jobs on Graph: {len(calendar)} $batch round trips for the calendar "
              f"(+2 for discovery and the token); the 200 welcome mails cost 3 requests each")
    assert len(calendar) == 6  # one $batch of getSchedule calls, five of 20 creates


def test_check_online_through_the_cli_says_what_is_wrong(prog, capsys, monkeypatch):
    assert prog.cli("check", "--online") == 0
    assert "online check passed" in capsys.readouterr().out
    monkeypatch.setenv(SECRET_ENV, "not-the-secret")
    assert prog.cli("check", "--online") == 2
    captured = capsys.readouterr()
    assert "bad client secret" in captured.out + captured.err and "Traceback" not in captured.out + captured.err
    prog.graph.control.scope(CLIENT_ID, ["someone.else@example.com"])  # an admin scoped the app to another mailbox
    monkeypatch.setenv(SECRET_ENV, SECRET)
    assert prog.cli("check", "--online") == 2
    captured = capsys.readouterr()
    assert "mailbox out of scope" in captured.out + captured.err


def test_a_secret_and_a_certificate_together_are_refused_by_name(prog, capsys):
    (prog.root / "app.pem").write_text("a certificate")  # present: check's offline look at the files passes
    prog.config.write_text(prog.config.read_text().replace("[backend.graph]\n", '[backend.graph]\ncertificate_path = "app.pem"\n'))
    assert prog.cli("check", "--online") == 2
    captured = capsys.readouterr()
    assert "[backend.graph]: set either a client secret" in captured.out + captured.err
