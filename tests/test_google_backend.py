"""The google backend against the fake Workspace, one behaviour at a time: the delegated token
(a real JWT checked against the service account's public key), quota back-off with an injected
sleeper, batches, and every "the answer was lost" case ending with nothing done twice."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from contract import ALEX, SAM, STAMP, meeting, outgoing, session
from rmdaemon.backends.google import GoogleBackend
from rmdaemon.errors import BackendError
from rmdaemon.model import Outgoing
from tests.servers import FakeTime
from tests.servers.google.fixtures import (KEYLESS, PROGRAMME, google_backend, google_server, key_file,  # noqa: F401
                                          WORKLOAD, keyless_settings, workload_identity)
from tests.servers.google.server import GoogleServer


@pytest.fixture
def server(google_server: GoogleServer) -> GoogleServer:
    for address in (ALEX.email, SAM.email):
        google_server.control.add_user(address)
    return google_server


class Sleeper:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def backend(server: GoogleServer, sleeper: Sleeper | None = None, **changes: object) -> GoogleBackend:
    made = google_backend(server, sleep=sleeper or Sleeper(), **changes)
    made.http.jitter = lambda: 0.0
    return made


def invitations(server: GoogleServer, address: str) -> int:
    return sum(b"METHOD:REQUEST" in raw for raw in server.control.received(address))


def mail(key: str) -> Outgoing:
    return outgoing(key, to=SAM, subject=f"Note {key}")


# -- pacing sends ---------------------------------------------------------------------------


def test_sends_keep_the_pace_and_gmail_never_says_the_user_is_over_its_quota(server):
    clock = FakeTime()
    server.gmail_quota.clock = clock.monotonic  # Gmail counts its minute on the same (fake) clock
    server.gmail_quota.per_minute = 500  # five sends a minute (Gmail's 15,000 units, scaled down to keep this quick)
    paced = google_backend(server, sleep=clock.sleep, monotonic=clock.monotonic, retry_budget_seconds=120,
                           messages_per_minute=5)
    for n in range(7):
        paced.send(mail(f"note:{n}"))
    assert len(server.control.received(SAM.email)) == 7
    assert clock.sleeps == [60]  # the 6th waited for the first one's minute to pass
    assert all(e.status == 200 for e in server.requests())


def test_past_gmails_quota_a_send_is_refused_and_left_for_the_next_tick(server):
    clock = FakeTime()
    server.gmail_quota.clock = clock.monotonic
    server.gmail_quota.per_minute = 500  # scaled down from 15,000: five sends of 100 units fill the minute
    fastest = backend(server, retry_budget_seconds=0, messages_per_minute=150, monotonic=clock.monotonic)
    for n in range(5):
        fastest.send(mail(f"note:{n}"))
    restarted = backend(server, retry_budget_seconds=0, monotonic=clock.monotonic)  # its pace starts afresh
    with pytest.raises(BackendError) as caught:
        restarted.send(mail("note:5"))
    assert "userRateLimitExceeded" in str(caught.value) and not caught.value.permanent
    clock.now += 60
    restarted.send(mail("note:5"))
    assert len(server.control.received(SAM.email)) == 6


def test_a_pace_wait_beyond_the_budget_leaves_the_mail_for_the_next_tick_without_a_lookup(server):
    clock = FakeTime()
    server.gmail_quota.clock = clock.monotonic
    paced = backend(server, retry_budget_seconds=5, messages_per_minute=3, monotonic=clock.monotonic)
    for n in range(3):
        paced.send(mail(f"note:{n}"))
    with pytest.raises(BackendError) as caught:
        paced.send(mail("note:3"))
    assert not caught.value.permanent and "messages_per_minute" in str(caught.value) and clock.sleeps == []
    clock.now += 60  # the next tick
    paced.send(mail("note:3"))
    assert len(server.control.received(SAM.email)) == 4
    assert not [e for e in server.requests() if "rfc822msgid:" in e.query]  # it had not started: nothing to look for


# -- the token ------------------------------------------------------------------------------


def test_a_key_the_account_does_not_have_is_named_as_such(server):
    info = json.loads(key_file(server).read_text())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info["private_key"] = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()).decode()
    key_file(server).write_text(json.dumps(info))  # same key id, another key: the signature cannot verify
    (problem,) = backend(server).check_online()
    assert problem.startswith("bad key:") and "Invalid JWT Signature" in problem


def test_a_key_others_can_read_is_named_before_anything_is_asked(server):
    key_file(server).chmod(0o644)
    (problem,) = backend(server).check_online()
    assert problem.startswith("key readable by others:") and "chmod 600" in problem
    assert server.oauth.issued == 0


def test_a_user_outside_the_domain_and_missing_delegation_are_told_apart(server):
    (problem,) = backend(server, user="nobody@example.com").check_online()
    assert problem.startswith("no such user:") and "nobody@example.com" in problem
    account = next(iter(server.store.accounts.values()))
    account.delegated = {"https://www.googleapis.com/auth/gmail.modify"}  # the calendar scopes were left out
    (problem,) = backend(server).check_online()
    assert problem.startswith("delegation not granted:") and account.client_id in problem
    assert "calendar.events.freebusy" in problem


def test_the_token_carries_only_the_least_scopes_and_is_refreshed_when_it_expires(server):
    made = backend(server)
    made.send_many([outgoing("k1")])
    (token,) = server.oauth.tokens.values()
    assert set(token.scopes) == {"https://www.googleapis.com/auth/calendar.events",
                                 "https://www.googleapis.com/auth/calendar.events.freebusy",
                                 "https://www.googleapis.com/auth/gmail.modify"} and token.user == PROGRAMME
    server.control.expire_tokens()
    assert made.send_many([outgoing("k2")]) == {"k2": None}  # 401 → google-auth fetched a new token, once
    assert server.oauth.issued == 2


def test_a_service_account_key_is_required_and_named(server):
    from rmdaemon.errors import UserError

    with pytest.raises(UserError, match="type 'authorized_user'"):
        GoogleBackend(backend(server).settings, json.dumps({"type": "authorized_user"}))


# -- keyless: workload identity and the IAM Credentials API --------------------------------


def test_keyless_the_workload_signs_through_iam_and_acts_as_the_programme_user(server, monkeypatch):
    workload_identity(server, monkeypatch)
    made = backend(server, **keyless_settings(server))
    assert made.check_online() == []
    assert made.send_many([outgoing("k1")]) == {"k1": None}
    publish = made.publish_many([meeting()])
    assert publish == {meeting().uid: None} and invitations(server, SAM.email) == 1
    (token,) = server.oauth.tokens.values()  # one delegated token, for every call above
    assert token.account.email == KEYLESS and token.user == PROGRAMME and server.iam.signed == 1
    assert "https://www.googleapis.com/auth/cloud-platform" not in token.scopes
    server.control.expire_tokens()
    assert made.send_many([outgoing("k2")]) == {"k2": None}  # refreshed: signed again, the workload's token reused
    assert server.iam.signed == 2 and [e.path for e in server.log if e.kind == "iam"].count("/v1/token") == 1


def test_keyless_without_token_creator_or_a_trusted_workload_says_what_to_grant(server, monkeypatch):
    config = workload_identity(server, monkeypatch, creator=False)
    (problem,) = backend(server, **keyless_settings(server)).check_online()
    assert problem.startswith(f"cannot sign as {KEYLESS}:") and "Service Account Token Creator" in problem
    assert "signBlob" in problem and not server.oauth.tokens
    config.write_text(config.read_text().replace("on-prem/providers/k8s", "deleted/providers/k8s"))
    (problem,) = backend(server, **keyless_settings(server)).check_online()
    assert problem.startswith("no identity of its own:") and "invalid_target" in problem
    (send,) = backend(server, **keyless_settings(server)).send_many([outgoing("k1")]).values()
    assert isinstance(send, BackendError) and not send.permanent  # the mail waits for the fix, it is not refused
    config.write_text(config.read_text().replace("deleted/providers/k8s", "on-prem/providers/k8s"))
    server.control.grant_token_creator(KEYLESS, WORKLOAD)
    assert backend(server, **keyless_settings(server)).send_many([outgoing("k1")]) == {"k1": None}
    assert len(server.control.received(ALEX.email)) == 1


def test_keyless_without_any_identity_of_its_own_is_a_plain_user_error(server, monkeypatch, tmp_path):
    from rmdaemon.errors import UserError

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))  # no gcloud user credentials either
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # and not on a Google VM: no metadata server
    with pytest.raises(UserError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        backend(server, **keyless_settings(server))


# -- quotas and back-off --------------------------------------------------------------------


def test_back_off_grows_without_retry_after_and_follows_it_when_given(server):
    sleeper = Sleeper()
    made = backend(server, sleeper)
    server.add_fault(503, "GET", r"/profile$", times=2)
    server.add_fault(403, "GET", r"/events$", reason="userRateLimitExceeded", retry_after=7)
    assert made.check_online() == []
    assert sleeper.waits == [1.0, 2.0, 7.0]


def test_throttling_longer_than_the_budget_fails_as_temporary_and_records_nothing(server):
    made = backend(server, retry_budget_seconds=30)
    server.add_fault(429, "POST", r"/events$", retry_after=120)
    (error,) = made.publish_many([meeting()]).values()
    assert isinstance(error, BackendError) and not error.permanent and "retry budget" in str(error)
    assert server.control.events(PROGRAMME) == [] and made.state.series(meeting().uid) is None
    assert made.publish_many([meeting()]) == {meeting().uid: None}
    assert invitations(server, SAM.email) == 1


def test_only_the_throttled_parts_of_a_batch_are_sent_again(server):
    sleeper = Sleeper()
    made = backend(server, sleeper)
    series = [meeting(uid=f"rm-batch-{n}@example.com") for n in range(3)]
    server.add_fault(403, "POST", r"/events$", reason="rateLimitExceeded", retry_after=3)  # the first part
    assert made.publish_many(series) == {m.uid: None for m in series}
    parts = [e for e in server.requests(parts=True) if e.method == "POST"]
    assert [e.status for e in parts] == [403, 200, 200, 200] and sleeper.waits == [3.0]
    assert len(server.control.events(PROGRAMME)) == 3 and invitations(server, SAM.email) == 3


# -- answers lost: looked up, never repeated blindly ----------------------------------------


def test_an_insert_whose_answer_was_lost_is_found_by_its_uid_not_booked_twice(server):
    made = backend(server)
    server.add_fault("drop", "POST", r"/events$", after_work=True)
    assert made.publish_many([meeting()]) == {meeting().uid: None}  # repeated, refused as duplicate, looked up
    assert [e.status for e in server.requests() if e.method == "POST"] == [200, 409]  # done, but the client never heard
    assert len(server.control.events(PROGRAMME)) == 1 and invitations(server, SAM.email) == 1
    assert made.state.series(meeting().uid)["id"] == server.control.events(PROGRAMME)[0].id


def test_a_send_answered_with_a_5xx_is_unsure_and_the_next_try_finds_it_in_sent(server):
    made = backend(server)
    server.add_fault(503, "POST", r"/messages/send$", after_work=True)
    (error,) = made.send_many([outgoing("k1")]).values()
    assert isinstance(error, BackendError) and "outcome unknown" in str(error)
    assert made.send_many([outgoing("k1")]) == {"k1": None}
    assert google_backend(server).send_many([outgoing("k1")]) == {"k1": None}
    assert len(server.control.received(ALEX.email)) == 1


def test_an_update_whose_answer_was_lost_is_not_mailed_again(server):
    made = backend(server)
    made.publish_many([meeting()])
    server.add_fault(503, "PATCH", r"/events/[^/_]+$", after_work=True)
    (error,) = made.publish_many([meeting(sequence=1)]).values()
    assert isinstance(error, BackendError)
    assert made.publish_many([meeting(sequence=1)]) == {meeting().uid: None}  # our sequence read back: done already
    assert invitations(server, SAM.email) == 2  # the invitation and one update


def test_an_agenda_whose_answer_was_lost_is_read_back_not_written_twice(server):
    made = backend(server)
    made.publish_many([meeting()])
    note = (meeting(), session(1), "Goal: TikTok\nStarter: one")
    server.add_fault(503, "PATCH", r"/events/[^/]+_r[0-9a-f]+$", after_work=True)
    (error,) = made.annotate_many([note]).values()
    assert isinstance(error, BackendError)
    before, mark = len(server.control.received(SAM.email)), len(server.log)
    assert google_backend(server).annotate_many([note]) == {(meeting().uid, session(1)): None}
    assert len(server.control.received(SAM.email)) == before
    again = [(e.method, e.path.rsplit("/", 1)[-1]) for e in server.log[mark:] if e.kind == "api"]
    assert again == [("GET", "instances")]  # read back and found written: no second PATCH


def test_a_slow_read_is_asked_again_and_a_slow_send_is_looked_up_not_repeated(server):
    made = backend(server, timeout_seconds=0.2)
    server.add_fault("slow", "GET", r"/profile$", after_work=True, delay=0.6)
    assert made.check_online() == []  # the read timed out and was simply asked again
    server.add_fault("slow", "POST", r"/messages/send$", after_work=True, delay=0.6)
    (error,) = made.send_many([outgoing("k1")]).values()
    assert isinstance(error, BackendError) and "outcome unknown" in str(error) and "Timeout" in str(error)
    assert backend(server).send_many([outgoing("k1")]) == {"k1": None}
    assert len(server.control.received(ALEX.email)) == 1


def test_the_key_may_come_from_the_environment_and_is_never_read_from_the_config(server, tmp_path, monkeypatch, capsys):
    from rmdaemon.backends.factory import open_backend
    from rmdaemon.config import load_settings

    from programme import Programme

    prog = Programme.create(tmp_path, organizer=f'"{PROGRAMME}"', kind='"google"')
    section = f'\n[backend.google]\nkey_env = "RMDAEMON_TEST_GOOGLE_KEY"\napi_base = "{server.base}"\nca_file = "{server.ca_file}"\n'
    prog.config.write_text(prog.config.read_text() + section)
    monkeypatch.setenv("RMDAEMON_TEST_GOOGLE_KEY", key_file(server).read_text())
    assert open_backend(load_settings(prog.config), lambda: STAMP).check_online() == []
    private_key = json.loads(key_file(server).read_text())["private_key"].splitlines()[1]
    prog.config.write_text(prog.config.read_text() + f'private_key = "{private_key}"\n')
    assert prog.cli("check") == 2
    out = capsys.readouterr()
    assert "private_key" in out.out and private_key not in out.out + out.err  # refused by name, never echoed


def test_with_online_meetings_each_series_gets_one_meet_link_carried_into_its_agendas(server):
    made = backend(server, online_meetings=True)
    server.add_fault("drop", "POST", r"/events$", after_work=True)  # the insert's answer is lost: found by its UID
    assert made.publish_many([meeting()]) == {meeting().uid: None}
    (event,) = server.control.events(PROGRAMME)
    link = event.fields["hangoutLink"]
    assert link.startswith("https://meet.google.com/") and event.fields["conferenceData"]["entryPoints"][0]["uri"] == link
    assert google_backend(server, online_meetings=True).annotate_many([(meeting(), session(1), "Goal: TikTok")]) == {
        (meeting().uid, session(1)): None}
    occurrence = next(i for i in server.control.instances(event)
                      if datetime.fromisoformat(i["originalStartTime"]["dateTime"]) == session(1))
    assert occurrence["description"].startswith("Goal: TikTok") and f"Join with Google Meet: {link}" in occurrence["description"]
    plain = meeting(uid="rm-plain@example.com")
    assert backend(server).publish_many([plain]) == {plain.uid: None}
    (without,) = [e for e in server.control.events(PROGRAMME) if e.fields["iCalUID"] == plain.uid]
    assert "conferenceData" not in without.fields  # without the option no conference is asked for


# -- reading --------------------------------------------------------------------------------


def test_a_meet_link_google_makes_after_answering_the_insert_is_read_back(server):
    server.control.meet_links_later()
    made = backend(server, online_meetings=True)
    assert made.publish_many([meeting()]) == {meeting().uid: None}
    (event,) = server.control.events(PROGRAMME)
    assert made.join_url(meeting().uid) == event.fields["hangoutLink"]
    lookups = len(server.log)
    assert made.join_url(meeting().uid) == event.fields["hangoutLink"] and len(server.log) == lookups  # kept


def test_free_busy_of_120_people_is_three_queries_in_one_batch(server):
    people = [replace(ALEX, name=f"P{n}", email=f"p{n}@example.com") for n in range(120)]
    for person in people:
        server.control.add_user(person.email)
    busy = datetime(2027, 1, 12, 15, 0, tzinfo=timezone.utc)
    server.control.script_busy("p99@example.com", busy, busy + timedelta(hours=1))
    server.log.clear()
    found = backend(server).free_busy(people, STAMP, STAMP + timedelta(days=14))
    assert [e.path for e in server.requests()] == ["/batch/calendar/v3"]
    assert len(server.requests(parts=True)) == 3 and found.problems == {}
    assert [(b.start, b.end) for b in found.busy["p99@example.com"]] == [(busy, busy + timedelta(hours=1))]


def test_answers_are_read_from_the_calendars_changes_once_a_tick_and_across_restarts(server):
    made = backend(server)
    series = [meeting(uid=f"rm-answers-{n}@example.com") for n in range(3)]
    made.publish_many(series)
    server.control.respond(ALEX.email, series[1].uid, "accepted", session(1).astimezone(timezone.utc))
    server.log.clear()
    said = [made.occurrence_answers(m, session(1)) for m in series]  # three questions, one read
    assert [s[ALEX.email] for s in said] == ["NEEDS-ACTION", "ACCEPTED", "NEEDS-ACTION"]
    (read,) = server.requests()
    assert read.path.endswith("/events") and "syncToken" not in read.query
    server.control.respond(SAM.email, series[2].uid, "declined")
    restarted = backend(server)
    assert restarted.occurrence_answers(series[2], session(1))[SAM.email] == "DECLINED"
    assert "syncToken=" in server.requests()[-1].query  # only what changed since the stored token
    server.control.expire_sync_tokens()
    assert backend(server).occurrence_answers(series[1], session(1))[ALEX.email] == "ACCEPTED"  # 410: read again
    assert [e.status for e in server.requests()[-2:]] == [410, 200]


def test_answers_come_from_the_occurrence_with_its_own_answers(server):
    made = backend(server)
    made.publish_many([meeting()])
    server.control.respond(ALEX.email, meeting().uid, "accepted")
    server.control.respond(SAM.email, meeting().uid, "declined", session(2).astimezone(timezone.utc), comment="Travelling")
    assert made.occurrence_answers(meeting(), session(1)) == {ALEX.email: "ACCEPTED", SAM.email: "NEEDS-ACTION"}
    assert made.occurrence_answers(meeting(), session(2)) == {ALEX.email: "ACCEPTED", SAM.email: "DECLINED"}
