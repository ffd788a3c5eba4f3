"""The promise of issue 21, as properties: if a reply holds text that is neither quoted history
nor a signature, the visible body is not empty and holds that text, in the order written.

Two sources of replies: generated ones (top-posted, bottom-posted, interleaved, forwarded, and
the sender's own sent notes forwarded with nothing above them, under the quote headers of seven
languages, wrapped as clients wrap them, with signatures and client debris around), and the
fixture set with the sender's line put above it or answered below its quote. Quoted text carries a marker word that must never reach the body.

The generated author lines are notes as people write them; they avoid what is ambiguous by
nature (a line that is itself "On <date>, X wrote:", "Sent from …", a closing such as
"Thanks, Sam", or a lower-case line glued between two lines of a long quoted sentence).
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_replies_lastmile import HEADERS, _wrapped

from rmdaemon.replies import mime, parse_reply

FIXTURES = Path(__file__).parent / "fixtures" / "replies"
MARK = "Quotedzz"  # in every quoted or forwarded line, never in the sender's

WORDS = ("we", "met", "on", "Monday", "Sam", "showed", "me", "about", "TikTok", "ads", "pricing",
         "learned", "a", "lot", "the", "team", "uses", "group", "chats", "3", "March", "2025",
         "10:00", "next", "time", "from", "to", "sam@example.com", "yes", "really", "good", "wrote",
         "Discord", "BeReal", "creators", "budget", "4/5", "über", "été", "día", "気づき", "and")
ENDS = ("ads", "pricing", "creators", "budget", "Discord", "BeReal", "time", "team", "lot")
PREFIXES = ("", "", "", "Topics: ", "Learned: ", "Next steps: ", "- ", "1. ", "Attended: ")
SIGNATURES = ("", "-- \nAlex Morgan\nCFO", "Sent from my iPhone", "Best regards,\nAlex")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def author_line(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8))
    words.append(draw(st.sampled_from(ENDS)))
    line = draw(st.sampled_from(PREFIXES)) + " ".join(words)
    return line[0].upper() + line[1:] + draw(st.sampled_from(("", ".", "!")))


author_block = st.lists(author_line(), min_size=1, max_size=3)
quote_block = st.lists(st.sampled_from((f"> Topics? {MARK}", f"> Rating: 1-5 {MARK}", f"> {MARK} agenda",
                                        f"> Hello Alex, see you Tuesday. {MARK}", ">")), min_size=1, max_size=4)
headers = st.sampled_from([text for header in HEADERS.values() for text in _wrapped(header).values()])


@st.composite
def generated_reply(draw: st.DrawFn) -> tuple[str, list[str]]:
    """(plain-text body, the sender's lines in order)."""
    layout = draw(st.sampled_from(("top", "bottom", "interleaved", "forward", "own")))
    header = draw(headers)
    signature = draw(st.sampled_from(SIGNATURES))
    blank = draw(st.sampled_from(("\n", "\n\n")))
    written: list[str] = []
    parts: list[str] = []
    if layout == "top":
        written = draw(author_block)
        parts = ["\n".join(written), signature, header, "\n".join(draw(quote_block))]
    elif layout == "bottom":
        written = draw(author_block)
        parts = [draw(st.sampled_from(("", "Sent from my iPhone"))), header,
                 "\n".join(draw(quote_block)), "\n".join(written), signature]
    elif layout == "interleaved":
        parts = [header]
        for _ in range(draw(st.integers(1, 3))):
            block = draw(author_block)
            written += block
            parts += ["\n".join(draw(quote_block)), "\n".join(block)]
        parts.append(signature)
    elif layout == "own":  # the sender's own sent notes forwarded, nothing typed above
        written = draw(author_block)
        parts = [draw(st.sampled_from(("", "-----Original Message-----", "Begin forwarded message:\n"))),
                 "From: Alex <alex@example.com>\nSent: Tuesday, 4 March 2025 10:12\nTo: Sam <sam@example.com>\n"
                 "Subject: notes\n", "\n".join(written), signature, header, "\n".join(draw(quote_block))]
    else:
        written = draw(author_block)
        parts = ["\n".join(written), draw(st.sampled_from(("---------- Forwarded message ---------",
                                                           "Begin forwarded message:",
                                                           "-----Original Message-----"))),
                 f"From: Sam <sam@example.com>\nDate: Tue, 4 Mar 2025 at 10:12\nSubject: notes {MARK}"
                 f"\nTo: Alex <alex@example.com>\n\nTopics: {MARK}"]
    if draw(st.booleans()):
        parts.append("\u1427")
    return blank.join(p for p in parts if p) + "\n", written


def as_message(body: str, subject: str = "Re: session [RM-7F3K2Q]") -> bytes:
    head = (f"From: Alex <alex@example.com>\r\nTo: mentoring@example.com\r\nSubject: {subject}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n")
    return (head + body.replace("\n", "\r\n")).encode("utf-8")


def squash(text: str) -> str:
    return " ".join(text.split())


def assert_in_order(lines: list[str], body: str) -> None:
    flat, at = squash(body), 0
    for line in lines:
        found = flat.find(squash(line), at)
        assert found >= 0, f"{line!r} lost from {body!r}"
        at = found + len(squash(line))


@SETTINGS
@given(generated_reply())
# Found by the explore profile. A note with a year and "wrote" right above Apple Mail's intro line
# was read as an "On … wrote:" header wrapped onto it, and the body came out empty; a line above a
# sender-first header (Gmail for Android's "Name <address> schrieb am <date>:") was read as its start.
@example(("2025 wrote ads\nBegin forwarded message:\nFrom: Sam <sam@example.com>\nDate: Tue, 4 Mar 2025 at "
          f"10:12\nSubject: notes {MARK}\nTo: Alex <alex@example.com>\n\nTopics: {MARK}\n", ["2025 wrote ads"]))
@example((f"On 3 ads\nMax Mustermann <max@example.com> schrieb am Fr., 25. März 2016 um 10:00 Uhr:\n> {MARK}\n",
          ["On 3 ads"]))
@example((f"To ads\nMax Mustermann\n<max@example.com> schrieb am Fr., 25. März 2016 um 10:00 Uhr:\n> {MARK}\n",
          ["To ads"]))
@example(("We ads\nOn ads\nMax Mustermann <max@example.com\n<mailto:max@example.com>> schrieb am Fr., 25. März "
          f"2016 um 10:00 Uhr:\n> {MARK}\n", ["We ads", "On ads"]))
def test_generated_replies_keep_every_line_the_sender_wrote(case: tuple[str, list[str]]) -> None:
    text, written = case
    parsed = parse_reply(as_message(text))
    assert parsed.body, text
    assert_in_order(written, parsed.body)
    assert MARK not in parsed.body, text
    assert "\u1427" not in parsed.body


# --- the fixture set ---------------------------------------------------------------------------------


def _fixture_texts() -> list[tuple[str, str]]:
    out = []
    for path in sorted(FIXTURES.glob("*.eml")):
        msg = mime.parse_message(path.read_bytes())
        text = mime.best_body(msg).text
        if text.strip():
            out.append((path.name, text))
    return out


FIXTURE_TEXTS = _fixture_texts()
_FIRST_QUOTE_RE = re.compile(r"(?m)^(?P<head>[^\n>]*\S[^\n]*[:：]\s*\n(?:\s*\n)?)(?P<quote>(?:>[^\n]*\n)+)")


@SETTINGS
@given(st.sampled_from(FIXTURE_TEXTS), author_line())
def test_a_line_written_above_any_fixture_is_kept(fixture: tuple[str, str], line: str) -> None:
    name, text = fixture
    parsed = parse_reply(as_message(f"{line}\n\n{text}"))
    assert parsed.body, name
    assert squash(line) in squash(parsed.body), (name, parsed.body)


QUOTED_FIXTURES = [(n, t) for n, t in FIXTURE_TEXTS if _FIRST_QUOTE_RE.search(t)]


@SETTINGS
@given(st.sampled_from(QUOTED_FIXTURES), author_line())
def test_a_line_answered_below_a_fixtures_quote_is_kept(fixture: tuple[str, str], line: str) -> None:
    """Under the first "… wrote:" + > block of a fixture (bottom posting or an inline answer)."""
    name, text = fixture
    m = _FIRST_QUOTE_RE.search(text)
    answered = f"{text[:m.end()]}\n{line}\n\n{text[m.end():]}"
    parsed = parse_reply(as_message(answered))
    assert squash(line) in squash(parsed.body), (name, answered[:m.end() + 200], parsed.body)


def test_the_fixture_properties_have_something_to_test() -> None:
    assert len(FIXTURE_TEXTS) >= 80 and len(QUOTED_FIXTURES) >= 30
