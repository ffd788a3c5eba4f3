"""Reply parsing as a user sees it: raw .eml bytes in, the parse-reply contract out.

``tests/fixtures/replies/`` holds one edge case per file, written the way the clients write them
(Outlook desktop/web/iOS, Gmail, Apple Mail, Thunderbird, Yahoo, phones; English, German,
French, Spanish, Dutch, Portuguese, Japanese; forwards, auto-replies, bounces, broken MIME),
each beside the JSON it must produce. The rest checks single behaviours and the promise that
no bytes make ``parse_reply`` raise.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmdaemon.replies import ParsedReply, parse_reply, to_contract_json
from rmdaemon.replies.commands import command_in_line
from rmdaemon.replies.fields import parse_rating
from rmdaemon.replies.headers import session_token
from rmdaemon.replies.mime import decode_bytes, unflow

FIXTURES = Path(__file__).parent / "fixtures" / "replies"
CONTRACT_KEYS = ["message_id", "in_reply_to", "from", "subject", "session_token", "body", "fields",
                 "command", "warnings"]
FIELD_KEYS = ["attended", "topics", "learned", "next_steps", "rating"]


def as_json(parsed: ParsedReply) -> dict:
    doc = to_contract_json(parsed)
    doc["also"] = {"command_arg": parsed.command_arg, "auto_submitted": parsed.auto_submitted,
                   "consent": parsed.consent, "share_notes": parsed.share_notes,
                   "goal": parsed.fields.get("goal")}
    return doc


def reply(body: str, subject: str = "Re: Pilot: session 1 [RM-7F3K2Q]", extra: str = "",
          ctype: str = "text/plain; charset=utf-8") -> bytes:
    head = (f"From: Alex <alex@example.com>\r\nTo: mentoring@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: <a1@example.com>\r\n{extra}Content-Type: {ctype}\r\n\r\n")
    return (head + body.replace("\n", "\r\n")).encode("utf-8")


# --- the fixture set -------------------------------------------------------------------------------


def test_every_fixture_gives_its_expected_json(capsys: pytest.CaptureFixture[str]) -> None:
    emls = sorted(FIXTURES.glob("*.eml"))
    assert len(emls) >= 60
    failures = []
    for eml in emls:
        expected = json.loads(eml.with_suffix(".json").read_text(encoding="utf-8"))
        actual = as_json(parse_reply(eml.read_bytes()))
        if actual != expected:
            diff = {k: (expected.get(k), actual.get(k)) for k in actual if actual.get(k) != expected.get(k)}
            failures.append(f"{eml.name}: {diff}")
    with capsys.disabled():
        print(f"\nreply fixtures: {len(emls) - len(failures)}/{len(emls)} give their expected JSON")
    assert not failures, "\n".join(failures)


def test_fixture_json_is_the_contract_shape() -> None:
    for path in FIXTURES.glob("*.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert [k for k in doc if k != "also"] == CONTRACT_KEYS, path.name
        assert list(doc["fields"]) == FIELD_KEYS, path.name


# --- what is the sender's text ---------------------------------------------------------------------


def test_top_posted_reply_keeps_only_the_new_text() -> None:
    parsed = parse_reply(reply("Topics: pricing\n\nOn Mon, 3 Mar 2025 at 09:00, Programme "
                               "<p@example.com> wrote:\n> Topics: ...\n> Rating: 1-5\n"))
    assert parsed.body == "Topics: pricing"
    assert parsed.fields["rating"] is None


def test_inline_answers_under_quoted_prompts_become_fields() -> None:
    parsed = parse_reply(reply("On Mon, Programme wrote:\n> Topics: ...\n\nhiring, onboarding\n\n"
                               "> Rating: 1-5\n\n4\n"))
    assert parsed.fields["topics"] == ["hiring", "onboarding"]
    assert parsed.fields["rating"] == 4
    assert "Topics" not in parsed.body


def test_a_sentence_starting_with_on_is_not_a_quote_header() -> None:
    text = "On Monday we discussed search.\nOn the other hand, Sam wrote: nothing.\n\nRating: 4\n"
    assert parse_reply(reply(text)).body == text.strip()


def test_outlook_header_block_is_history_but_a_line_above_it_is_not() -> None:
    text = ("Next session: Tue 10:00\n-----Original Message-----\nFrom: P\nSent: Monday, 3 March 2025"
            "\nTo: Alex\nSubject: agenda\n\nRating: 1-5\n")
    assert parse_reply(reply(text)).body == "Next session: Tue 10:00"


def test_signature_sent_from_and_footer_are_not_notes() -> None:
    parsed = parse_reply(reply("Learned: a lot\n\nBest regards,\nAlex Morgan\nCFO\n\n"
                               "Sent from my iPhone\n"))
    assert parsed.body == "Learned: a lot"


def test_a_closing_word_above_answers_does_not_hide_them() -> None:
    parsed = parse_reply(reply("Great session.\nThanks\nTopics: search\nRating: 4\n"))
    assert parsed.fields["topics"] == ["search"] and parsed.fields["rating"] == 4


def test_banners_go_but_the_same_words_in_notes_stay() -> None:
    banner = "CAUTION: This email originated from outside of the organization. Do not click links.\n\n"
    assert parse_reply(reply(banner + "Topics: search\n")).body == "Topics: search"
    notes = "Caution: this approach is risky for us.\nDisclaimer: I am no expert.\n"
    assert parse_reply(reply(notes)).body == notes.strip()


def test_legal_footer_and_everything_under_it_go() -> None:
    text = ("Topics: search\n\nThis e-mail is confidential and intended solely for the addressee."
            "\n\nACME Ltd, registered in England\n")
    assert parse_reply(reply(text)).body == "Topics: search"


def test_a_list_item_is_not_mistaken_for_a_signature() -> None:
    parsed = parse_reply(reply("Next steps:\n- Alex books the room\n- Sam sends the deck\n"))
    assert parsed.fields["next_steps"] == ["Alex books the room", "Sam sends the deck"]


def test_html_quote_markup_is_removed_and_lists_kept() -> None:
    html = ('<div>Next steps</div><ul><li>try it</li><li>report back</li></ul>'
            '<div class="gmail_quote"><div class="gmail_attr">On Mon, P wrote:</div>'
            '<blockquote class="gmail_quote">Rating: 1-5</blockquote></div>')
    parsed = parse_reply(reply(html, ctype="text/html; charset=utf-8"))
    assert parsed.body == "Next steps\n- try it\n- report back"
    assert parsed.fields["next_steps"] == ["try it", "report back"]


# --- fields ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "rating"), [
    ("4", 4), ("4/5", 4), ("4 / 5", 4), ("4 out of 5", 4), ("8/10", 4), ("4,5", 5), ("★★★★☆", 4),
    ("****", 4), ("4 von 5", 4), ("3 sur 5", 3), ("1-5", None), ("great", None), ("9", None),
    ("0/5", None),
])
def test_ratings_are_read_the_way_people_write_them(text: str, rating: int | None) -> None:
    assert parse_rating(text) == rating


def test_note_is_a_rating_label_only_before_a_bare_rating() -> None:
    assert parse_reply(reply("Note : 4\n")).fields["rating"] == 4
    assert parse_reply(reply("Note: 3 things I want to try\n")).fields["rating"] is None


@pytest.mark.parametrize("text", [
    "We didn't meet this week.", "The session was cancelled.", "Wir haben uns nicht getroffen.",
    "La séance annulée, désolé.", "No nos reunimos.", "Het is niet doorgegaan.",
    "A reunião foi cancelada.",
])
def test_not_meeting_in_plain_words_means_not_attended(text: str) -> None:
    assert parse_reply(reply(text)).fields["attended"] is False


def test_notes_without_prompts_stay_whole_and_fill_no_fields() -> None:
    text = "Sam showed me how she finds restaurants: maps reviews, then TikTok."
    parsed = parse_reply(reply(text))
    assert parsed.body == text
    assert to_contract_json(parsed)["fields"] == {"attended": None, "topics": [], "learned": None,
                                                  "next_steps": [], "rating": None}


# --- commands, consent, sharing --------------------------------------------------------------------


@pytest.mark.parametrize(("line", "command", "arg"), [
    ("SKIP", "skip", None), ("skip", "skip", None), ("Please skip next week", "skip", None),
    ("PAUSE", "pause", None), ("pause until April", "pause", "April"), ("RESUME", "resume", None),
    ("STOP", "stop", None), ("RESCHEDULE Thu 14:00", "reschedule", "Thu 14:00"),
    ("Can we reschedule to next week?", "reschedule", "next week"),
    ("Bitte aussetzen", "skip", None), ("Verschieben auf Freitag 10 Uhr", "reschedule", "Freitag 10 Uhr"),
    ("Reprendre", "resume", None), ("pausar, por favor", "pause", None), ("Overslaan", "skip", None),
    ("Stop by my desk tomorrow", None, None), ("Skipping lunch was a mistake", None, None),
    ("We talked about when to pause notifications", None, None),
    ("Move fast and break things", None, None),
])
def test_commands_only_when_the_line_says_nothing_else(line: str, command: str | None, arg: str | None) -> None:
    found = command_in_line(line)
    assert (found.name if found else None, found.arg if found else None) == (command, arg)


def test_a_command_after_a_greeting_on_the_same_line() -> None:
    assert parse_reply(reply("Hi Sam, skip please\n")).command == "skip"
    assert parse_reply(reply("Hi Sam, skipping the intro was smart\n")).command is None


def test_a_command_below_notes_is_not_a_command() -> None:
    assert parse_reply(reply("Topics: search\n\nSKIP\n")).command is None


def test_an_auto_reply_never_carries_a_command() -> None:
    parsed = parse_reply(reply("STOP\n", extra="Auto-Submitted: auto-replied\r\n"))
    assert parsed.auto_submitted and parsed.command is None
    assert any(w.startswith("auto-submitted") for w in parsed.warnings)


@pytest.mark.parametrize(("text", "consent", "share"), [
    ("YES", "yes", None), ("I'm in", "yes", None), ("count me in!", "yes", None),
    ("No thanks", "no", None), ("NO", "no", None), ("Yes, share notes", "yes", True),
    ("SHARE NOTES", None, True), ("PRIVATE", None, False), ("Yes please, and keep it private", "yes", False),
])
def test_consent_and_sharing_answers(text: str, consent: str | None, share: bool | None) -> None:
    parsed = parse_reply(reply(text))
    assert (parsed.consent, parsed.share_notes) == (consent, share)


# --- envelope ------------------------------------------------------------------------------------


def test_session_token_from_subject_then_ids_then_quoted_text() -> None:
    assert parse_reply(reply("hi", subject="Re: x [rm-abc123]")).session_token == "RM-ABC123"
    by_id = reply("hi", subject="Re: x", extra="In-Reply-To: <rm.agenda.RM-ZZ9YY8.h@x.example>\r\n")
    assert parse_reply(by_id).session_token == "RM-ZZ9YY8"
    quoted = reply("hi\n\nOn Mon, P wrote:\n> [RM-QQ1WW2] agenda\n", subject="Re: x")
    assert parse_reply(quoted).session_token == "RM-QQ1WW2"
    assert parse_reply(reply("hi", subject="Re: FORM-1234567")).session_token is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["RM-", "rm-", "rM-", "R", "M", "-", "a", "Z", "9", "x", "ñ", " ", "[", "\n",
                                  "ab12CD", "7F3K2Q"]), max_size=12).map("".join))
def test_a_token_is_rm_dash_six_letters_or_digits_standing_alone(text: str) -> None:
    """The token pattern is written for speed (a character class first); it still finds exactly
    "RM-" in any case with six ASCII letters or digits, not glued to one on either side."""
    plain = re.compile(r"(?<![A-Za-z0-9])RM-([A-Za-z0-9]{6})(?![A-Za-z0-9])", re.IGNORECASE).search(text)
    assert session_token(text) == (f"RM-{plain.group(1).upper()}" if plain else None)


def test_charsets_fall_back_instead_of_failing() -> None:
    assert decode_bytes("Grüße".encode("cp1252"), "utf-8")[0] == "Grüße"
    assert decode_bytes("“quoted”".encode("cp1252"), "iso-8859-1") == ("“quoted”", None)
    text, warning = decode_bytes(b"caf\xc3\xa9", "us-ascii")
    assert text == "café" and warning
    assert decode_bytes(b"caf\xe9", "no-such-charset")[0] == "café"
    assert decode_bytes("Grüße, Straß".encode()[:-1], None)[0] == "Grüße, Stra\ufffd"  # cut, still UTF-8


def test_format_flowed_lines_are_rejoined_per_quote_depth() -> None:
    text = "a wrapped \nline\n> quoted \n> more\n-- \nsig"
    assert unflow(text) == "a wrapped line\n> quoted more\n-- \nsig"
    assert unflow("glued \ntogether", delsp=True) == "gluedtogether"


# --- never raise, stay fast ------------------------------------------------------------------------


def assert_contract(parsed: ParsedReply) -> None:
    doc = to_contract_json(parsed)
    assert list(doc) == CONTRACT_KEYS and list(doc["fields"]) == FIELD_KEYS
    assert doc["command"] in (None, "skip", "pause", "resume", "stop", "reschedule")
    assert doc["fields"]["rating"] in (None, 1, 2, 3, 4, 5)
    assert not any(w.startswith("unparseable") for w in doc["warnings"]), doc["warnings"]
    json.dumps(doc)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert_contract(parse_reply(raw))


SEEDS = [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml"))]


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    """A real reply with bytes flipped, cut, duplicated or spliced with noise."""
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        action = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        if action == "flip" and raw:
            raw[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del raw[at:at + draw(st.integers(1, 200))]
        elif action == "insert":
            raw[at:at] = draw(st.sampled_from([b"\r\n--", b"=?utf-8?B?", b"<blockquote>", b"\x00",
                                               b"\n> ", b"charset=\"x\"", b"\xff\xfe", b"=\r\n"]))
        elif raw:
            raw[at:at] = raw[at:at + draw(st.integers(1, 500))]
    return bytes(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fixture())
def test_mutated_real_replies_never_raise(raw: bytes) -> None:
    assert_contract(parse_reply(raw))


WORDS = ["Topics:", "Rating:", "★", "4/5", "SKIP", "On Mon, X <a@b.example> wrote:", "> ", "From: x",
         "Sent: y", "-- ", "Sent from my iPhone", "Best regards,", "Next steps -", "\n", "- ", "1.",
         "=?utf-8?B?", "<div class=\"gmail_quote\">", "Topicſ:", "İ", "ß", "\u200b", "\x00", ":", "RM-"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=30)), max_size=60),
       st.sampled_from(["text/plain; charset=utf-8", "text/html; charset=utf-8"]))
def test_arbitrary_text_in_every_part_of_the_parser_never_raises(parts: list[str], ctype: str) -> None:
    assert_contract(parse_reply(reply("".join(parts), ctype=ctype)))


def test_hostile_shapes_stay_fast() -> None:
    """Long lines, deep HTML, huge quotes: linear work, not a regex blow-up."""
    shapes = [
        reply("On " + "a " * 50_000 + "wrote\n"),
        reply("From: " + "x: " * 20_000 + "\n" * 3),
        reply("<div>" * 5000 + "text" + "</div>" * 5000, ctype="text/html"),
        reply(("> " * 200 + "quoted\n") * 2000),
        reply("Topics: " + "a, " * 30_000),
        reply("-" * 100_000 + "\n" + "_" * 100_000),
    ]
    for raw in shapes:
        started = time.process_time()  # CPU time: a blow-up shows, a busy machine does not
        assert_contract(parse_reply(raw))
        assert time.process_time() - started < 1.0


def test_typical_replies_parse_in_about_a_millisecond() -> None:
    started = time.process_time()  # CPU time: a machine busy with other work does not fail it
    for _ in range(5):
        for raw in SEEDS:
            parse_reply(raw)
    per_message = (time.process_time() - started) / (5 * len(SEEDS))
    assert per_message < 0.005, f"{per_message * 1000:.2f} ms per reply"
