"""Property tests on hostile and near-valid input: a clear UserError or a result, never a crash.

The admin's files (config, roster) are fuzzed through the same loaders ``check`` and the daemon
use; incoming mail through the inbox's router itself (not through its safety net, which would
quarantine a crash quietly), with replies that carry a real session token and sender.
The reply parser alone has its own property tests in test_replies.py.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from programme import REPO, Programme
from rmdaemon import authres, compose, itip, roster
from rmdaemon.backends.local import LocalBackend
from rmdaemon.commands.checks import check_all
from rmdaemon.config import SecuritySettings, load_settings
from rmdaemon.errors import UserError
from rmdaemon.records import PAIRS, pair_records
from rmdaemon.programme.context import Context
from rmdaemon.jobs.inbox import Router, message_key
from rmdaemon.model import Incoming
from rmdaemon.replies import parse_reply
from rmdaemon.store import Store

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])
EXAMPLE = (REPO / "config.example.toml").read_text(encoding="utf-8")
ROSTER = (REPO / "examples" / "roster.csv").read_text(encoding="utf-8")

toml_values = st.one_of(
    st.integers(-2**70, 2**70).map(str), st.floats(allow_nan=True).map(lambda f: repr(f).replace("inf", "inf")),
    st.booleans().map(lambda b: str(b).lower()), st.text(max_size=40).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(['""', "[]", "{}", "2027-02-30", "1979-05-27T07:32:00Z", "[1, \"a\", true]", '{ start = "25:00" }',
                     '"Europe/Nowhere"', '"../../etc/passwd"', '"\\u0000"', '"mentoring@"', "nan", "-inf", "0x10"]),
)


@st.composite
def near_valid_config(draw: st.DrawFn) -> str:
    """The shipped example with a few lines changed the way an admin (or a bad merge) would."""
    lines = EXAMPLE.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["value", "drop", "dup", "noise"]))
        if action == "value" and "=" in lines[at] and not lines[at].lstrip().startswith("#"):
            lines[at] = lines[at].split("=", 1)[0] + "= " + draw(toml_values)
        elif action == "drop":
            del lines[at]
        elif action == "dup":
            lines.insert(at, lines[at])
        else:
            lines.insert(at, draw(st.text(max_size=30)))
    return "\n".join(lines) + "\n"


def assert_settles(config: Path) -> None:
    try:
        load_settings(config)
    except UserError as e:
        assert str(e) and "Traceback" not in str(e)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """One programme folder for a whole property test: each example overwrites its files."""
    prog = Programme.create(tmp_path_factory.mktemp("fuzz"))
    return prog.root


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_as_config_give_settings_or_a_user_error(folder: Path, raw: bytes) -> None:
    path = folder / "fuzzed.toml"
    path.write_bytes(raw)
    assert_settles(path)


@settings(FUZZ, max_examples=60)  # each example is a whole `rmdaemon check`
@given(near_valid_config())
def test_near_valid_configs_give_settings_or_every_problem_named(folder: Path, text: str) -> None:
    path = folder / "rmdaemon.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass") if _encodable(text) else path.write_bytes(b"")
    assert_settles(path)
    problems = check_all(str(path))[0]  # the whole of `rmdaemon check`: config, roster, templates
    assert all(isinstance(p, str) and p for p in problems)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


PROGRAM = load_settings(REPO / "config.example.toml").program
CELL = st.one_of(st.text(max_size=25), st.sampled_from(["", " ", "P01", "../x", "a,b", '"', "\r\n", "\x00", "=1+1",
                                                        "Europe/London", "08:00-18:00", "Tue 15:00", "weekly", "ended",
                                                        "x@y.example", "bob@", "2027-02-01..2027-01-01", "999"]))


@st.composite
def near_valid_roster(draw: st.DrawFn) -> str:
    """The example roster with cells replaced, rows dropped or repeated, columns renamed."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(ROSTER)))
    for _ in range(draw(st.integers(1, 6))):
        if not rows:
            break
        r = draw(st.integers(0, len(rows) - 1))
        action = draw(st.sampled_from(["cell", "cell", "drop", "dup", "short"]))
        if action == "cell" and rows[r]:
            rows[r][draw(st.integers(0, len(rows[r]) - 1))] = draw(CELL)
        elif action == "drop" and len(rows) > 1:
            del rows[r]
        elif action == "dup":
            rows.insert(r, list(rows[r]))
        else:
            rows[r] = rows[r][: draw(st.integers(0, len(rows[r])))]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def assert_roster_settles(path: Path) -> None:
    pairs, problems = roster.read_roster(path, PROGRAM)
    assert all(isinstance(p, str) and p for p in problems)
    for pair in pairs:  # whatever got through is safe to put in file names and headers
        assert re.fullmatch(r"[A-Za-z0-9_-]+", pair.pair_id)
        assert not any(c in person.name for person in pair.people for c in "\r\n\x00")
    try:
        roster.load_roster(path, PROGRAM)
    except UserError:
        assert problems
    else:
        assert not problems


@FUZZ
@given(st.binary(max_size=2000))
def test_any_bytes_as_roster_give_pairs_or_problems(folder: Path, raw: bytes) -> None:
    path = folder / "fuzzed.csv"
    path.write_bytes(raw)
    assert_roster_settles(path)


@FUZZ
@given(near_valid_roster())
def test_near_valid_rosters_give_pairs_or_problems_by_row_and_column(folder: Path, text: str) -> None:
    path = folder / "fuzzed.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    assert_roster_settles(path)


# --------------------------------------------------------------------------------------------
# Incoming mail, through the router the inbox job uses


T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A programme with every pair opted in, booked and sent its first agenda."""
    prog = Programme.create(tmp_path_factory.mktemp("inbox-fuzz"))
    prog.run(T0)
    for kickoff in prog.outbox("kickoff"):
        prog.reply(kickoff, "YES", T0)
    now = T0 + timedelta(hours=1)
    while not prog.outbox("agenda."):
        prog.run(now)
        now += timedelta(hours=12)
    return prog, prog.outbox("agenda."), now


BODY_WORDS = ["SKIP", "PAUSE", "RESUME", "STOP", "RESCHEDULE", "RESCHEDULE Thu 14:00", "RESCHEDULE 31:99", "HELP",
              "FLAG: x", "YES", "NO", "SHARE NOTES", "PRIVATE", "Goal: ", "Rating: 9", "Attended: yes", "2", "99",
              "1. 4", "NUDGE P01", "PAUSE P999", "ASK-MENTOR ../x", "Topics: a, b", "\n", "> ", "\x00", "<b>"]
ICS_EXTRA = ["RECURRENCE-ID:20270111T090000Z", "RECURRENCE-ID;TZID=Nowhere/Zone:20270111T090000",
             "RECURRENCE-ID;TZID=W. Europe Standard Time:20270111T100000", "RECURRENCE-ID:garbage", "SEQUENCE:-1",
             "DTSTART:2027", "END:VEVENT", "BEGIN:VEVENT", "COMMENT:\\n<b>", "ATTENDEE:mailto:", ""]


@st.composite
def calendar_answer(draw: st.DrawFn, uid: str, sender: str) -> str:
    """An iTIP answer in a calendar part: well-formed around odd values, or broken on purpose."""
    lines = ["BEGIN:VCALENDAR", "METHOD:" + draw(st.sampled_from(["REPLY", "REQUEST", "CANCEL", "", "reply"])),
             "BEGIN:VEVENT", f"UID:{uid}",
             f"ATTENDEE;PARTSTAT={draw(st.sampled_from(['ACCEPTED', 'DECLINED', 'TENTATIVE', 'X-ODD', '']))}:"
             f"mailto:{draw(st.sampled_from([sender, 'x@y.example', '']))}"]
    lines += draw(st.lists(st.sampled_from(ICS_EXTRA), max_size=4))
    lines += ["END:VEVENT", "END:VCALENDAR"]
    if draw(st.integers(0, 4)) == 0:
        lines = draw(st.permutations(lines))
    return "\r\n".join(lines)


@st.composite
def incoming(draw: st.DrawFn, agendas: list, uids: list[str]) -> bytes:
    """A reply that is nearly right: real token, sender and series uid, hostile or odd everything else."""
    agenda = draw(st.sampled_from(agendas))
    own = str(agenda["To"].addresses[0].addr_spec)
    sender = draw(st.sampled_from([own, own, own.upper(), "champion@example.com", "mallory@evil.example", ""]))
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, "mentoring@example.com"
    msg["Subject"] = draw(st.sampled_from([f"Re: {agenda['Subject']}", "Re: [RM-ZZZZZZ]", "hello", ""]))
    msg["Message-ID"] = draw(st.sampled_from(["<f@x>", "", "../../x", "<" + "a" * 500 + ">"]))
    msg["In-Reply-To"] = agenda["Message-ID"]
    if draw(st.integers(0, 5)) == 0:
        msg["Auto-Submitted"] = "auto-replied"
    if draw(st.integers(0, 3)) == 0:
        msg["Authentication-Results"] = draw(st.sampled_from([
            "mx.example.com; dmarc=fail", "mx.example.com; spf=pass", "evil; dmarc=fail", ";;;", "mx.example.com (((",
            "mx.example.com; spf=fail (((nested) comment) x) dmarc=pass"]))
    words = st.one_of(st.sampled_from(BODY_WORDS), st.text(max_size=20))
    body = draw(st.sampled_from(["\n", " ", ""])).join(draw(st.lists(words, max_size=12)))
    msg.set_content(body)
    if draw(st.booleans()):
        uid = draw(st.sampled_from([*uids, "unknown@x"]))
        ics = draw(calendar_answer(uid, sender))
        msg.add_alternative(ics, subtype="calendar", params={"method": "REPLY"})
    if msg.is_multipart():
        msg.set_boundary("fuzz-boundary")  # not email's random one: hypothesis replays examples exactly
    raw = bytearray(msg.as_bytes())
    for _ in range(draw(st.integers(0, 3))):  # and a few flipped bytes
        at = draw(st.integers(0, len(raw) - 1))
        raw[at] = draw(st.integers(0, 255))
    return bytes(raw)


def context_for(prog: Programme, store: Store, now: datetime) -> Context:
    """The inbox job's context, trusting Authentication-Results and with a small size limit."""
    config = load_settings(prog.config)
    config = dataclasses.replace(config, security=SecuritySettings(True, "mx.example.com", 4000))
    return Context(store=store, backend=LocalBackend(prog.root / "o", prog.root / "i", lambda: now), settings=config,
                   pairs=roster.load_roster(config.roster_path, config.program),
                   templates=compose.load_templates(config.templates_dir), now=now, secret=b"fuzz" * 8)


OUTCOMES = ("log", "command", "consent", "itip", "survey", "checkin", "champion", "quarantine")


def test_incoming_mail_always_finds_exactly_one_outcome(live) -> None:
    prog, agendas, now = live
    with Store.open(prog.state, writer=False) as store:
        ctx = context_for(prog, store, now)

        uids = [d["series"]["uid"] for d in store.table(PAIRS).all() if d.get("series")]

        @settings(FUZZ, max_examples=300)
        @given(incoming(agendas, uids))
        def check(raw: bytes) -> None:
            router = Router(ctx, pair_records(store))  # fresh: a router collects changes
            outcome = router.route(Incoming("fuzz.eml", raw), message_key(raw))
            assert outcome.kind in OUTCOMES
            if outcome.kind == "quarantine":
                assert outcome.reason
            assert authres.failures(raw, "mx.example.com") is not None
            itip.read_responses(raw)
            parse_reply(raw)

        check()
