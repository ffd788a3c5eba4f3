"""The last mile of reply parsing: the author's words are never lost, quote headers as clients
localise and wrap them, client debris, and session fields written in running text.

Each test states what a mentor would see go wrong: notes missing from the log, someone else's
quoted text logged as theirs, or a field not filled in.
"""

from __future__ import annotations

import pytest

from rmdaemon.replies import parse_reply


def reply(body: str, subject: str = "Re: Pilot: session 1 [RM-7F3K2Q]") -> bytes:
    head = (f"From: Alex <alex@example.com>\r\nTo: mentoring@example.com\r\nSubject: {subject}\r\n"
            "Message-ID: <a1@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
    return (head + body.replace("\n", "\r\n")).encode("utf-8")


QUOTE = "> Hello Alex,\n> Topics: ...\n> Rating: 1-5\n"


# --- client debris --------------------------------------------------------------------------------


@pytest.mark.parametrize("debris", [" \u1427", "\u200e", "\u202a\u202c", "\ufffc", "\u034f", "\u3164"])
def test_invisible_and_decorative_characters_do_not_reach_the_log(debris: str) -> None:
    parsed = parse_reply(reply(f"Topics: ads{debris}\nRating: 4\n{debris.strip()}\n"))
    assert parsed.body == "Topics: ads\nRating: 4"
    assert parsed.fields["topics"] == ["ads"]


def test_a_syllabics_final_inside_a_word_is_text_not_debris() -> None:
    text = "Learned: ᐊᐃᑉᐱᑦ ᐧᐊᐃ means a lot\n"
    assert parse_reply(reply(text)).body == text.strip()
