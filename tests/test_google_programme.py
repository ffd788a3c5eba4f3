"""The programme run through the real CLI with ``[backend] kind = "google"`` against the fake
Google Workspace over HTTPS: delegated tokens from its token endpoint through google-auth, every
mail through Gmail and every session through Google Calendar. The people answer the way Google
users do: replies land in the programme user's Gmail inbox, Yes/No clicks in Calendar change
their ``responseStatus`` (Calendar sends the organiser no mail for them). Nothing is patched: the
key file's ``token_uri``, ``api_base`` and ``ca_file`` point at the server.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import trustme

from programme import Programme, booked, opt_in_all, status
from programme import kill_during as run_killed
from rmdaemon import daemon
from rmdaemon.backends.google import GoogleBackend
from rmdaemon.config import load_settings
from rmdaemon.store import Store
from tests.servers import FakeTime
from tests.servers.google.fixtures import (KEYLESS, PROGRAMME, SERVICE_ACCOUNT, google_server, key_file,  # noqa: F401
                                          workload_identity)
from tests.servers.google.server import GoogleServer
from tests.servers.google.store import Event

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=1)
ACTIVE = ["P01", "P02", "P03", "P04", "P05", "P07", "P08"]


@dataclass
class GoogleProgramme(Programme):
    """``Programme`` whose mail travels through the fake Gmail instead of Maildirs."""

    server: GoogleServer | None = None

    @property
    def google(self) -> GoogleServer:
        assert self.server is not None
        return self.server

    def drop(self, raw: bytes, name: str) -> Path:
        """A person's reply arrives in the programme user's Gmail inbox."""
        self.google.control.deliver(PROGRAMME, raw)
        return self.root / name

    def outbox(self, kind: str = "", to: str = "") -> list[EmailMessage]:
        """The emails the programme user sent through Gmail (not Calendar's invitations)."""
        found = []
        for sent in self.google.control.sent(PROGRAMME):
            msg = message_from_bytes(sent.raw, policy=policy.default)
            if sent.kind == "message" and msg["Message-ID"].startswith(f"<rm.{kind}") and to in str(msg["To"]):
                found.append(msg)
        return found

    def calendar_mail(self, address: str, method: str) -> list[str]:
        """The iCalendar text of every invitation mail of ``method`` in a person's inbox."""
        found = []
        for raw in self.google.control.received(address):
            for part in message_from_bytes(raw, policy=policy.default).walk():
                if part.get_content_type() == "text/calendar" and f"METHOD:{method}" in part.get_content():
                    found.append(part.get_content())
        return found

    def series(self) -> dict[str, Event]:
        """The programme calendar's live events by pair id (found by our iCalUID)."""
        by_uid = {doc["series"]["uid"]: pid for pid, doc in self.docs().items() if doc.get("series")}
        return {by_uid[e.fields["iCalUID"]]: e for e in self.google.control.events(PROGRAMME)}

    def live_starts(self, event: Event) -> list[datetime]:
        return [datetime.fromisoformat(i["start"]["dateTime"]).astimezone(timezone.utc)
                for i in self.google.control.instances(event) if i.get("status") != "cancelled"]

    def instance(self, event: Event, original: datetime) -> dict:
        return next(i for i in self.google.control.instances(event)
                    if datetime.fromisoformat(i["originalStartTime"]["dateTime"]) == original)



def google_section(server: GoogleServer) -> str:
    return f"""
[backend.google]
key_file = "{key_file(server)}"
api_base = "{server.base}"
ca_file = "{server.ca_file}"
retry_budget_seconds = 2
"""


def google_programme(root: Path, server: GoogleServer, roster: str | None = None, **program: str) -> GoogleProgramme:
    prog = GoogleProgramme.create(root, roster=roster, organizer=f'"{PROGRAMME}"', kind='"google"', **program)
    prog.server = server
    prog.config.write_text(prog.config.read_text() + google_section(server))
    for row in csv.DictReader(prog.roster.open(encoding="utf-8")):
        server.control.add_user(row["mentor_email"], row["mentor_name"])
        server.control.add_user(row["mentee_email"], row["mentee_name"])
    return prog


@pytest.fixture
def prog(tmp_path: Path, google_server: GoogleServer) -> GoogleProgramme:
    """The example programme on Google Workspace: everyone is a user of the domain."""
    return google_programme(tmp_path, google_server)


def inserts(server: GoogleServer) -> int:
    return sum(1 for e in server.requests(parts=True) + server.requests() if e.method == "POST" and e.path.endswith("/events"))


def kill_during(prog: GoogleProgramme, method: str, path: str, now: datetime) -> None:
    """Run the daemon as its own process and SIGKILL it once Google did the held request's work."""
    run_killed(prog, prog.google.hold(method, path), now)


# ---------------------------------------------------------------------------------------------


def test_consent_then_every_pair_is_booked_as_one_private_series_with_one_invitation_each(prog, capsys):
    assert prog.run(T0) == 0
    (kickoff,) = prog.google.control.received("richard.hale@example.com")  # delivered into the person's Gmail
    assert b"Message-ID: <rm.kickoff" in kickoff
    assert len(prog.outbox("kickoff")) == 2 * len(ACTIVE)
    assert not prog.google.control.events(PROGRAMME)  # nothing is booked before both said yes
    opt_in_all(prog, T0)
    prog.google.log.clear()
    assert prog.run(T1) == 0
    calendar = [e.path for e in prog.google.requests() if e.path.startswith(("/batch/calendar", "/calendar/"))]
    assert inserts(prog.google) == len(ACTIVE)
    assert calendar == ["/calendar/v3/freeBusy", "/batch/calendar/v3"]  # free/busy for all 14 people, then every insert
    series = prog.series()
    assert sorted(series) == ACTIVE
    for pair_id in ACTIVE:
        fields = series[pair_id].fields
        assert (fields["visibility"], fields["transparency"]) == ("private", "opaque")
        assert fields["recurrence"][0].startswith("RRULE:") and fields["reminders"]["overrides"]
    uid = prog.docs()["P01"]["series"]["uid"]
    for address in ("richard.hale@example.com", "aisha.khan@example.com"):
        (request,) = prog.calendar_mail(address, "REQUEST")
        assert f"UID:{uid}" in request  # our UID (iCalUID), the same as on every other backend
    rows = status(prog, T1, capsys)
    assert all(rows[p]["state"] == "active" and rows[p]["next_session"] for p in ACTIVE)
    assert prog.run(T1 + timedelta(minutes=30)) == 0  # a rerun books nothing again
    assert inserts(prog.google) == len(ACTIVE) and len(prog.google.control.events(PROGRAMME)) == len(ACTIVE)


def test_busy_time_in_google_calendar_is_avoided(tmp_path, google_server, capsys):
    roster = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,preferred_slot\n"
              "P01,Ann Mentor,ann@example.com,Ben Mentee,ben@example.com,Learn the new tools,Tue 10:00\n")
    prog = google_programme(tmp_path, google_server, roster=roster)
    london = ZoneInfo("Europe/London")
    for week in range(12):  # Ben's Tuesday mornings are taken
        day = datetime(2027, 1, 5, 9, 0, tzinfo=london) + timedelta(weeks=week)
        google_server.control.script_busy("ben@example.com", day, day + timedelta(hours=3))
    assert prog.run(T0) == 0
    opt_in_all(prog, T0)
    assert prog.run(T1) == 0
    (event,) = prog.google.control.events(PROGRAMME)
    first = prog.live_starts(event)[0].astimezone(london)
    assert not (first.weekday() == 1 and time(9) <= first.time() < time(12)), first


def test_agenda_goes_into_the_occurrence_reply_becomes_a_log_and_skip_cancels_only_that_session(prog, capsys):
    booked(prog, T0)
    start = datetime.fromisoformat(status(prog, T1, capsys)["P01"]["next_session"])
    assert prog.run(start - timedelta(hours=23)) == 0
    agendas = prog.outbox("agenda.", to="richard.hale") + prog.outbox("agenda.", to="aisha.khan")
    assert len(agendas) == 2
    occurrence = prog.instance(prog.series()["P01"], start)
    assert "Conversation starter" in occurrence["description"] or "starter" in occurrence["description"].lower()
    prog.reply(agendas[1], "Attended: yes\nTopics: TikTok search\nNext steps: follow three creators\nRating: 4",
               start + timedelta(hours=2))
    assert prog.run(start + timedelta(hours=3)) == 0
    row = status(prog, start + timedelta(hours=3), capsys)["P01"]
    assert row["sessions_held"] == 1 and row["last_log"]
    handled = prog.google.control.mails(PROGRAMME)
    assert handled and all("rmdaemon/processed" in prog.google.control.label_names(m) and "UNREAD" not in m.labels
                           for m in handled)
    following = datetime.fromisoformat(row["next_session"])
    assert prog.run(following - timedelta(hours=20)) == 0
    newest = max(prog.outbox("agenda.", to="aisha.khan"), key=lambda m: m["Date"].datetime)
    assert "follow three creators" in newest.get_body(("plain",)).get_content()
    prog.reply(newest, "SKIP\n\nTravelling that week, sorry.", following - timedelta(hours=19))
    assert prog.run(following - timedelta(hours=18)) == 0
    event = prog.series()["P01"]
    assert following not in prog.live_starts(event) and start in prog.live_starts(event)
    for address in ("aisha.khan@example.com", "richard.hale@example.com"):
        (cancel,) = prog.calendar_mail(address, "CANCEL")
        assert f"RECURRENCE-ID:{following:%Y%m%dT%H%M%SZ}" in cancel
        series_wide = [r for r in prog.calendar_mail(address, "REQUEST") if "RECURRENCE-ID" not in r]
        assert len(series_wide) == 1  # the invitation; the SKIP did not re-send the series


ONE_PAIR = ("pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal,cadence\n"
            "P01,Aisha Khan,aisha.khan@example.com,Richard Hale,richard.hale@example.com,Understand TikTok,weekly\n")


def test_with_online_meetings_the_meet_link_reaches_every_agenda_email_and_the_calendar_once(tmp_path, google_server, capsys):
    prog = google_programme(tmp_path, google_server, roster=ONE_PAIR, sessions="4")
    prog.config.write_text(prog.config.read_text() + "online_meetings = true\n")
    booked(prog, T0)
    link = prog.series()["P01"].fields["hangoutLink"]
    assert link.startswith("https://meet.google.com/") and prog.docs()["P01"]["series"]["join_url"] == link
    start = datetime.fromisoformat(status(prog, T1, capsys)["P01"]["next_session"])
    assert prog.run(start - timedelta(hours=23)) == 0
    agendas = prog.outbox("agenda.", to="richard.hale") + prog.outbox("agenda.", to="aisha.khan")
    assert len(agendas) == 2
    for agenda in agendas:  # the bytes Gmail was handed, as the people receive them
        assert f"Join online: {link}" in agenda.get_body(("plain",)).get_content()
        assert link in agenda.get_body(("html",)).get_content()
    assert prog.instance(prog.series()["P01"], start)["description"].count(link) == 1


def test_reschedule_moves_that_session_in_the_calendar(prog, capsys):
    booked(prog, T0)
    start = datetime.fromisoformat(status(prog, T1, capsys)["P01"]["next_session"])
    prog.run(start - timedelta(hours=23))
    (agenda,) = prog.outbox("agenda.", to="richard.hale")
    london = start.astimezone(ZoneInfo("Europe/London"))
    day = london + timedelta(days=1 if london.weekday() < 4 else -1)  # another weekday of the same week
    moved = datetime.combine(day.date(), time(14, 0), ZoneInfo("Europe/London"))
    prog.reply(agenda, f"RESCHEDULE {day:%a} 14:00", start - timedelta(hours=22))
    assert prog.run(start - timedelta(hours=21)) == 0
    assert datetime.fromisoformat(status(prog, start - timedelta(hours=21), capsys)["P01"]["next_session"]) == moved
    starts = prog.live_starts(prog.series()["P01"])
    assert moved in starts and start not in starts
    for address in ("aisha.khan@example.com", "richard.hale@example.com"):
        updates = prog.calendar_mail(address, "REQUEST")
        assert sum("RECURRENCE-ID" not in u for u in updates) == 1  # the series was not re-sent
        assert f"DTSTART:{moved.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}" in updates[-1]
        assert f"RECURRENCE-ID:{start:%Y%m%dT%H%M%SZ}" in updates[-1]


def test_pause_cancels_the_series(prog):
    booked(prog, T0)
    kickoff = prog.outbox("kickoff", to="richard.hale")[0]
    prog.reply(kickoff, "PAUSE\n\nSorry, a busy quarter.", T1 + timedelta(hours=1))
    assert prog.run(T1 + timedelta(hours=2)) == 0
    assert "P01" not in prog.series() and len(prog.series()) == len(ACTIVE) - 1
    for address in ("aisha.khan@example.com", "richard.hale@example.com"):
        (cancel,) = prog.calendar_mail(address, "CANCEL")
        assert "RECURRENCE-ID" not in cancel


def test_a_session_both_accepted_in_google_calendar_is_not_questioned_by_a_nudge(prog, capsys):
    """Attendance from the calendar's ``responseStatus``: no log after a session, but both said
    Yes to it in Google Calendar, so it most likely happened: the pair is not asked. A pair whose
    calendar says nothing gets the usual nudge."""
    booked(prog, T0)
    uid = prog.docs()["P01"]["series"]["uid"]
    for address in ("aisha.khan@example.com", "richard.hale@example.com"):
        prog.google.control.respond(address, uid, "accepted")
    rows = status(prog, T1, capsys)
    starts = sorted(datetime.fromisoformat(rows[p]["next_session"]) for p in ("P01", "P03"))
    for moment in starts:
        assert prog.run(moment - timedelta(hours=23)) == 0
    start = starts[-1]
    assert prog.run(start + timedelta(hours=49)) == 0  # no log in the 48-hour window: both missed
    assert not prog.outbox("nudge", to="richard.hale")
    assert prog.outbox("nudge", to="linda.morales")


def test_killed_between_insert_and_record_the_rerun_books_nothing_twice(prog):
    assert prog.run(T0) == 0
    opt_in_all(prog, T0)
    kill_during(prog, "POST", r"/events$", T1)  # Google booked the first series of the batch; the daemon died
    assert prog.google.control.events(PROGRAMME)  # at least the held one (Google finishes a batch whoever listens)
    assert all(doc["series"]["published"] is None for doc in prog.docs().values() if doc.get("series"))
    assert prog.run(T1 + timedelta(minutes=5)) == 0
    assert len(prog.google.control.events(PROGRAMME)) == len(ACTIVE)  # the journal said "creating": found by iCalUID
    assert len(prog.calendar_mail("richard.hale@example.com", "REQUEST")) == 1
    assert all(doc["series"]["published"] == 0 for doc in prog.docs().values() if doc.get("series"))


def test_killed_during_a_send_the_rerun_sends_no_mail_twice(prog):
    kill_during(prog, "POST", r"/messages/send$", T0)  # the first kickoff left; the daemon died
    assert len(prog.outbox("kickoff")) == 1
    assert prog.run(T0 + timedelta(minutes=1)) == 0
    keys = [m["Message-ID"] for m in prog.outbox("kickoff")]
    assert len(keys) == 2 * len(ACTIVE) == len(set(keys))  # every kickoff once, the first one too


def test_quota_errors_and_outages_lose_nothing(prog):
    assert prog.run(T0) == 0
    opt_in_all(prog, T0)
    prog.google.add_fault(403, "POST", r"/freeBusy$", reason="rateLimitExceeded", retry_after=0)
    prog.google.add_fault(429, "POST", r"/events$", times=2, retry_after=0)
    prog.google.add_fault(503, "POST", r"^/batch/calendar", retry_after=0)
    prog.google.add_fault(403, "POST", r"/messages/[^/]+/modify$", reason="userRateLimitExceeded", retry_after=0)
    assert prog.run(T1) == 0
    assert all(f.times == 0 for f in prog.google.faults)  # every fault was met, and waited out
    assert sorted(prog.series()) == ACTIVE
    kickoff = prog.outbox("kickoff", to="richard.hale")[0]
    prog.reply(kickoff, "PAUSE", T1 + timedelta(hours=1))
    prog.google.add_fault(429, "DELETE", r"/events/", retry_after=120)  # longer than retry_budget_seconds: later
    assert prog.run(T1 + timedelta(hours=2)) == 0
    assert "P01" in prog.series() and prog.docs()["P01"]["series"]["published"] == 0  # nothing recorded as done
    assert prog.run(T1 + timedelta(hours=3)) == 0
    assert "P01" not in prog.series() and prog.docs()["P01"]["series"]["published"] == 1
    assert len(prog.calendar_mail("aisha.khan@example.com", "CANCEL")) == 1


def test_keyless_through_the_cli_no_key_file_anywhere(tmp_path, google_server, monkeypatch, capsys):
    """Workload identity: the config names the service account, the daemon's own identity is the
    federation config in GOOGLE_APPLICATION_CREDENTIALS, and every token is signed by IAM."""
    workload_identity(google_server, monkeypatch)
    prog = google_programme(tmp_path, google_server)
    section = google_section(google_server).replace(f'key_file = "{key_file(google_server)}"\n', "")
    prog.config.write_text(prog.config.read_text().replace(google_section(google_server), section + (
        f'service_account = "{KEYLESS}"\noauth_base = "{google_server.base}"\niam_base = "{google_server.base}"\n')))
    key_file(google_server).unlink()
    assert prog.cli("check", "--online") == 0
    assert "online check passed" in capsys.readouterr().out
    booked(prog, T0)
    assert sorted(prog.series()) == ACTIVE and len(prog.outbox("kickoff")) == 2 * len(ACTIVE)
    assert {t.account.email for t in google_server.oauth.tokens.values()} == {KEYLESS} and google_server.iam.signed >= 1


def test_while_delegation_is_missing_the_mail_waits_and_goes_once_it_is_granted(prog):
    account = prog.google.store.accounts[SERVICE_ACCOUNT]
    granted, account.delegated = account.delegated, set()  # the Admin console entry not made yet
    assert prog.run(T0) == 0
    assert not prog.outbox("kickoff")
    account.delegated = granted
    assert prog.run(T0 + timedelta(minutes=5)) == 0
    assert len(prog.outbox("kickoff")) == 2 * len(ACTIVE)  # none was recorded as refused


def test_while_the_gmail_api_is_off_or_the_ca_is_wrong_the_mail_waits(prog, tmp_path):
    account = prog.google.store.accounts[SERVICE_ACCOUNT]
    account.apis = {"calendar"}  # Gmail API not enabled in the project yet: 403 accessNotConfigured
    assert prog.run(T0) == 0
    account.apis = {"calendar", "gmail"}
    config = prog.config.read_text()
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))  # a TLS-inspecting proxy's CA missing
    prog.config.write_text(config.replace(f'ca_file = "{prog.google.ca_file}"', f'ca_file = "{tmp_path / "other-ca.pem"}"'))
    assert prog.run(T0 + timedelta(minutes=5)) == 0
    assert not prog.outbox("kickoff")
    prog.config.write_text(config)
    assert prog.run(T0 + timedelta(minutes=10)) == 0
    assert len(prog.outbox("kickoff")) == 2 * len(ACTIVE)  # none was recorded as refused


def test_a_send_whose_answer_was_lost_is_looked_up_not_repeated(prog):
    prog.google.add_fault("drop", "POST", r"/messages/send$", after_work=True)  # sent, but the answer never came
    assert prog.run(T0) == 0
    assert prog.run(T0 + timedelta(minutes=5)) == 0
    keys = [m["Message-ID"] for m in prog.outbox("kickoff")]
    assert len(keys) == 2 * len(ACTIVE) == len(set(keys))
    (lookup,) = [e for e in prog.google.requests() if "rfc822msgid:" in e.query]  # in Sent, by our Message-ID
    assert "in:sent" in lookup.query


def test_the_inbox_is_read_by_history_across_restarts_and_relisted_when_gmail_forgot_it(prog):
    booked(prog, T0)
    history = [e for e in prog.google.requests() if e.path.endswith("/history")]
    assert len(history) == 1  # the first run listed the inbox; the second continued from its historyId
    raws = sum(1 for e in prog.google.requests(parts=True) + prog.google.requests() if "/messages/" in e.path and e.method == "GET")
    assert raws == 2 * len(ACTIVE)  # each opt-in read exactly once
    prog.google.control.forget_history()
    kickoff = prog.outbox("kickoff", to="richard.hale")[0]
    prog.reply(kickoff, "PAUSE", T1 + timedelta(hours=1))
    assert prog.run(T1 + timedelta(hours=2)) == 0  # history.list answers 404: the inbox is listed again
    assert "P01" not in prog.series()
    state = json.loads((prog.root / "var" / "google-state.json").read_text())
    assert state["inbox"]["pending"] == {} and state["inbox"]["delta_link"]


def many_pairs(n: int) -> str:
    rows = ["pair_id,mentor_name,mentor_email,mentee_name,mentee_email,goal"]
    rows += [f"Q{i:04d},Mentor {i},mentor{i}@example.com,Mentee {i},mentee{i}@example.com,Learn thing {i}" for i in range(n)]
    return "\n".join(rows) + "\n"


def round_trips(server: GoogleServer, since: int = 0) -> dict[str, int]:
    """API round trips from the ``since``-th log entry on: calendar and mail (the token endpoint apart)."""
    found = {"calendar": 0, "mail": 0}
    for e in server.log[since:]:
        if e.kind == "api" and not e.part_of_batch:
            found["mail" if "gmail" in e.path else "calendar"] += 1
    return found


def paced_tick(prog: GoogleProgramme, now: datetime, clock: FakeTime) -> None:
    """One tick as ``run --now`` does it, the sends paced on ``clock`` (Gmail's quota counting on
    it too) within the default retry budget: 200 mails at 60 a minute would otherwise take over
    three real minutes."""
    settings = load_settings(prog.config)
    assert settings.backend.google is not None
    backend = GoogleBackend(replace(settings.backend.google, retry_budget_seconds=300), key_file(prog.google).read_text(), clock=lambda: now,
                            sleep=clock.sleep, monotonic=clock.monotonic)
    try:
        with Store.open(settings.storage_path) as store:
            daemon.tick(store, backend, settings, now, only_due=False)
    finally:
        backend.close()


def test_booking_kickoffs_and_the_agenda_tick_through_the_jobs_cost_few_round_trips(tmp_path, google_server, capsys):
    """What the bench reports as Google round trips, 100 pairs: booking (freeBusy for 200 people,
    50 per query, in one batch; 100 inserts in two batches of 50), the kickoff mails (one send
    each: Gmail has no bulk send, and batching sends only trades round trips for 429s under
    Gmail's per-user rate) and the agenda tick (two agendas a pair, and each agenda written into
    its occurrence: the sessions looked up, then 50 PATCHes a batch). The sends keep the pace,
    so Gmail never refuses one."""
    pairs = 100
    prog = google_programme(tmp_path, google_server, roster=many_pairs(pairs), require_opt_in="false",
                            cadence='"weekly"', agenda_lead_hours="336")
    clock = FakeTime()
    google_server.gmail_quota.clock = clock.monotonic
    paced_tick(prog, T0, clock)
    assert clock.sleeps == [60, 60, 60]  # 200 kickoffs at 60 a minute
    first = round_trips(google_server)
    assert len(prog.series()) == pairs and len(prog.outbox("kickoff")) == 2 * pairs
    assert first["calendar"] == 3  # one batch of freeBusy queries, two of 50 inserts
    mark = len(google_server.log)
    start = min(datetime.fromisoformat(doc["series"]["plan"]["first_start"]) for doc in prog.docs().values())
    paced_tick(prog, start - timedelta(hours=1), clock)  # two weeks' lead: every pair's first session is due
    agenda = round_trips(google_server, mark)
    assert len(prog.outbox("agenda.")) == 2 * pairs
    occurrence = prog.instance(prog.series()["Q0042"], datetime.fromisoformat(prog.docs()["Q0042"]["series"]["plan"]["first_start"]))
    assert "Learn thing 42" in occurrence["description"]
    assert agenda["calendar"] == 4  # 100 sessions found (instances?originalStart=), then 100 PATCHes: 50 a batch
    assert all(e.status < 400 for e in google_server.requests() + google_server.requests(parts=True))
    with capsys.disabled():
        print(f"\n{pairs} pairs booked through the jobs on Google: {first['calendar'] * 100 / pairs:.1f} requests per 100 pairs")
        print(f"{pairs} pairs, kickoff mails on Google: {first['mail'] * 100 / pairs:.1f} requests per 100 pairs")
        print(f"{pairs} pairs, agenda tick on Google: {(agenda['mail'] + agenda['calendar']) * 100 / pairs:.1f} requests "
              f"per 100 pairs, mail {agenda['mail'] * 100 / pairs:.1f} of them")


def test_check_online_through_the_cli_says_what_is_wrong(prog, capsys):
    assert prog.cli("check", "--online") == 0
    assert "online check passed" in capsys.readouterr().out
    account = prog.google.store.accounts[SERVICE_ACCOUNT]
    account.apis.discard("gmail")
    assert prog.cli("check", "--online") == 2
    captured = capsys.readouterr()
    assert "API not enabled" in captured.out + captured.err and "Gmail API" in captured.out + captured.err
    account.apis.add("gmail")
    account.delegated.discard("https://www.googleapis.com/auth/gmail.modify")
    assert prog.cli("check", "--online") == 2
    captured = capsys.readouterr()
    assert "delegation not granted" in captured.out and account.client_id in captured.out
    assert "Traceback" not in captured.out + captured.err
