"""Templates → mail: escaping, starters rotation, stable identity, the iMIP shape."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import string
from datetime import datetime, time, timezone
from email import message_from_bytes, policy, quoprimime
from email.charset import QP, Charset
from email import encoders
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32

from rmdaemon import compose
from rmdaemon.compose import WIRE, Envelope, Rendered, build_email, load_templates, pick_starter
from rmdaemon.model import Pair, Person, WorkingHours

ALEX = Person("Alex Young", "alex@example.com", "Europe/London", WorkingHours(time(9), time(17), (0, 1, 2, 3, 4)))
NOW = datetime(2027, 1, 4, 8, tzinfo=timezone.utc)
QP_UTF8 = Charset("utf-8")
QP_UTF8.body_encoding = QP  # what compose's text parts were before it wrote them itself


def test_starters_never_repeat_until_the_track_is_exhausted():
    templates = load_templates()
    used: list[str] = []
    track = templates.starters["technology"]
    for _ in track:
        used.append(pick_starter(templates, "Technology", used).id)
    assert sorted(used) == sorted(s.id for s in track)
    assert pick_starter(templates, "technology", used).id in used  # then starts over
    assert pick_starter(templates, "no such track", []).id == templates.starters["general"][0].id


def test_reply_text_quoted_into_an_agenda_cannot_inject_markup():
    templates = load_templates()
    pair = Pair("P1", ALEX, ALEX, "goal <b>bold</b>", "technology", "weekly", 45, None, "active")
    ctx = {"program": type("P", (), {"name": "Pilot", "organizer_name": "Team", "sessions": 6})(),
           "pair": pair, "person": ALEX, "other": ALEX, "token": "RM-AAAAAA", "number": 1, "total": 6,
           "when_local": "Mon", "when_other": "Mon", "goal": pair.goal, "starter": "Hi",
           "next_steps": ["<script>alert(1)</script>"], "ask_progress": False, "location": "", "join_url": "",
           "next_steps_by": [{"mine": True, "name": "Alex", "steps": ["<script>alert(1)</script>"]}]}
    out = compose.render(templates, "agenda", ctx)
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html
    assert "<script>alert(1)</script>" in out.text  # plain text stays as written


def test_same_key_builds_the_same_bytes_and_message_id():
    env = Envelope(key="agenda:RM-AAAAAA:alex@example.com", sender="m@example.com", sender_name="M", to=(ALEX,),
                   date=NOW, message_id=compose.message_id("agenda", "k", "example.com", "RM-AAAAAA"))
    content = Rendered("Subject", "text\n", "<p>html</p>")
    first, second = build_email(env, content), build_email(env, content)
    assert first == second
    msg = message_from_bytes(first, policy=policy.default)
    assert msg["Message-ID"] == "<rm.agenda.RM-AAAAAA." + compose.digest("k") + "@example.com>"
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Auto-Submitted"] == "auto-generated"


def test_invitation_has_the_imip_shape_every_client_reads():
    env = Envelope(key="itip:x", sender="m@example.com", sender_name="M", to=(ALEX,), date=NOW, message_id="<x@example.com>")
    raw = build_email(env, Rendered("Invite", "text\n", "<p>x</p>"), calendar=("REQUEST", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"))
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    alternative, attachment = msg.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    cal = alternative.get_payload()[-1]
    assert cal.get_content_type() == "text/calendar" and cal.get_param("method") == "REQUEST"
    assert cal["Content-Transfer-Encoding"] == "base64"
    assert attachment.get_content_type() == "application/ics" and attachment.get_filename() == "invite.ics"
    assert attachment.get_payload(decode=True) == cal.get_payload(decode=True)


def test_tokens_are_stable_and_distinct_per_session():
    a = compose.session_token({"uid": "uid-1"}, NOW)
    assert a == compose.session_token({"uid": "uid-1"}, NOW.astimezone()) and a.startswith("RM-") and len(a) == 9
    assert a != compose.session_token({"uid": "uid-2"}, NOW)


def test_a_series_token_key_makes_its_tokens_and_a_secret_its_message_ids_uncomputable():
    """Without the key, a series' tokens are the plain hashes a series booked before the secret
    keeps; with it, another key (another installation) gives other tokens and Message-IDs."""
    mine, theirs = compose.keyed(b"a" * 32, "series", "uid-1"), compose.keyed(b"b" * 32, "series", "uid-1")
    plain = compose.session_token({"uid": "uid-1"}, NOW)
    keyed = compose.session_token({"uid": "uid-1", "token_key": mine}, NOW)
    assert len({plain, keyed, compose.session_token({"uid": "uid-1", "token_key": theirs}, NOW)}) == 3
    assert keyed == compose.session_token({"uid": "uid-1", "token_key": mine}, NOW) and len(keyed) == 9
    ids = {compose.message_id("agenda", "k", "example.com", secret=s) for s in (None, b"a" * 32, b"b" * 32)}
    assert len(ids) == 3 and compose.message_id("agenda", "k", "example.com") in ids


def test_tokens_are_the_ones_earlier_versions_gave():
    """A token names a thread people already have in their mail: the short cut (``hmac.digest``,
    the first 30 bits written as base32 by table) must give what the full digest's base32 gave,
    keyed or not, one at a time or a series' at once."""
    rng = random.Random(14)
    for _ in range(3000):
        text = "".join(rng.choices(string.printable + "éß日", k=rng.randrange(60)))
        key = rng.choice([None, rng.randbytes(32).hex()])
        full = (hmac.new(bytes.fromhex(key), text.encode(), hashlib.sha256) if key else hashlib.sha256(text.encode())).digest()
        assert compose.token.__wrapped__(text, key) == "RM-" + base64.b32encode(full).decode()[:6]
        assert compose.tokens([text, text + "|x"], key) == (compose.token.__wrapped__(text, key),
                                                            compose.token.__wrapped__(text + "|x", key))


def test_quoted_printable_is_what_the_standard_library_writes():
    """compose's remembered-lines encoder must not change a byte of a body: random text with every
    kind of line end, trailing white space, '=' near the 76th column, UTF-8 and the separators
    str.splitlines knows."""
    rng = random.Random(2045)
    for alphabet in (" \t\r\n=.-abcXYZ\x0b\x0c\x1c\x85\xa0é€😀", " \t\r\n=.-abcXYZ\xa0é€😀"):
        for _ in range(25_000):
            text = "".join(rng.choice(alphabet) if rng.random() < 0.3 else rng.choice("abcdefgh ")
                           for _ in range(rng.randint(1, 250)))
            body = text.encode("utf-8").decode("latin1")
            assert compose.qp_body(body) == quoprimime.body_encode(body), text


def test_an_email_is_what_email_mime_writes():
    """build_email writes the usual shapes (text and HTML, with an iTIP part or not) itself: the
    same bytes as the email.mime classes and the generator, for any names, subject, body, thread,
    line ends and calendar."""
    rng = random.Random(822)
    alphabet = "abc XYZ=.\t\r\n-éü€日本😀From >\x0b"

    def text(longest: int) -> str:
        return "".join(rng.choice(alphabet) if rng.random() < 0.3 else rng.choice("abcdef ")
                       for _ in range(rng.randint(1, longest)))

    for n in range(2_000):
        people = tuple(Person(text(30), f"p{n}@example.com", "UTC", ALEX.working_hours) for n in range(rng.randint(1, 3)))
        envelope = Envelope(text(40), "org@example.com", text(20), people, NOW, "<x@example.com>",
                            rng.choice(["", "<a@example.com>", "not an id"]), rng.random() < 0.5)
        content = Rendered(" ".join(text(120).split()), text(600), text(900))
        calendar = (rng.choice(["REQUEST", "CANCEL", "DECLINECOUNTER"]), text(400).encode()) if n % 2 else None
        assert build_email(envelope, content, calendar) == classic_email(envelope, content, calendar), (envelope, content)


def classic_email(envelope: Envelope, content: Rendered, calendar: tuple[str, bytes] | None) -> bytes:
    """build_email as it was written with the email.mime classes."""
    msg = alternative = MIMEMultipart("alternative", boundary=compose._boundary(envelope.key, 0))
    alternative.attach(MIMEText(content.text, "plain", QP_UTF8))
    alternative.attach(MIMEText(content.html, "html", QP_UTF8))
    if calendar is not None:
        invite = MIMEBase("text", "calendar", method=calendar[0], charset="UTF-8")
        invite.set_payload(calendar[1])
        encoders.encode_base64(invite)
        alternative.attach(invite)
        attachment = MIMEBase("application", "ics", name="invite.ics")
        attachment.set_payload(calendar[1])
        encoders.encode_base64(attachment)
        attachment.add_header("Content-Disposition", "attachment", filename="invite.ics")
        msg = MIMEMultipart("mixed", boundary=compose._boundary(envelope.key, 1))
        msg.attach(alternative)
        msg.attach(attachment)
    compose._headers(msg, envelope, content.subject)
    return msg.as_bytes(policy=WIRE)


def test_wire_policy_writes_what_compat32_writes():
    """compose.WIRE's short cuts (one line as it is, a longer printable one folded by its own
    code) must not change a byte of any header: random ASCII values (spaces, tabs, separators,
    encoded words), long ones that fold (words after ; or , or runs of spaces, words longer than
    a line, a long header name), and non-ASCII ones."""
    classic = compat32.clone(linesep="\r\n", max_line_length=78)
    rng = random.Random(5322)
    alphabet = string.ascii_letters + string.digits + " \t;,:<>@.\"()=-_/'?"
    values = ["", " ", "  lead", "trail  ", "a\tb", "=?utf-8?q?x?=", '"Doe, J" <j@example.com>', "x" * 70, "x" * 200,
              "Überraschung im Kalender", "word " * 30]
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 90))) for _ in range(20_000)]
    words = ["Mentor", "15:45", "2027,", "x;", ";", ",", "", "y" * 80, "[RM-NIBNRT]", '"Doe,', "<j@example.com>"]
    values += [" " * rng.choice((0, 0, 0, 1, 2)) + "".join(rng.choice(words) + " " * rng.choice((0, 1, 1, 2))
                                                         for _ in range(rng.randint(5, 40))) for _ in range(5_000)]
    values += ["".join(rng.choice(alphabet.replace("\t", "")) for _ in range(rng.randint(90, 300))) for _ in range(2_000)]
    for value in values:
        for name in ("Subject", "To", "X-RM-Key", "X-" + "n" * rng.randint(1, 80)):
            assert WIRE.fold_binary(name, value) == classic.fold_binary(name, value), (name, value)
    msg = MIMEText("body", "plain", "utf-8")
    msg["Subject"], msg["To"], msg["References"] = "Agenda: session 2", "Mentor <m@example.com>", " ".join(["<a@b>"] * 20)
    assert msg.as_bytes(policy=WIRE) == msg.as_bytes(policy=classic)
