"""The last mile of reply parsing: the author's words are never lost, quote headers as clients
localise and wrap them, client debris, and session fields written in running text.

Each test states what a mentor would see go wrong: notes missing from the log, someone else's
quoted text logged as theirs, or a field not filled in.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rmdaemon.replies import parse_reply
from rmdaemon.replies.lexicon import alternation


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


# --- quote headers as clients localise and wrap them ----------------------------------------------

# Seven languages, the header each client writes (Gmail web unless said otherwise).
HEADERS = {
    "en": "On Fri, Mar 25, 2016 at 10:00 AM Max Mustermann <max@example.com> wrote:",
    "en-apple": "On 25 Mar 2016, at 10:00, Max Mustermann <max@example.com> wrote:",
    "iso-gmail-2016": "2016-03-03 17:21 GMT+01:00 Some One <some.one@example.com>:",
    "de": "Am Fr., 25. März 2016 um 10:00 Uhr schrieb Max Mustermann <max@example.com>:",
    "de-gmail-android": "Max Mustermann <max@example.com> schrieb am Fr., 25. März 2016 um 10:00 Uhr:",
    "fr": "Le ven. 25 mars 2016 à 10:00, Max Mustermann <max@example.com> a écrit :",
    "es": "El vie., 25 mar. 2016 a las 10:00, Max Mustermann (<max@example.com>) escribió:",
    "nl": "Op vr 25 mrt. 2016 om 10:00 schreef Max Mustermann <max@example.com>:",
    "pt": "Em sex., 25 de mar. de 2016 às 10:00, Max Mustermann <max@example.com> escreveu:",
    "ja": "2016年3月25日(金) 10:00 Max Mustermann <max@example.com>:",
    "ja-apple": "2016/03/25 10:00、Max Mustermann <max@example.com> のメッセージ:",
}


def _wrapped(header: str) -> dict[str, str]:
    """The ways clients break a header over lines: inside or before the address, the address
    continued as ``<mailto:…>`` (HTML links turned into text), or at a space in the middle."""
    name, rest = header.split("<", 1)
    address, after = rest.split(">", 1)
    words = header.split()
    return {
        "one line": header,
        "cut inside <": f"{name.rstrip()} <\n{address}>{after}",
        "cut before <": f"{name.rstrip()}\n<{address}>{after}",
        "mailto on the next line": f"{name.rstrip()} <{address}\n<mailto:{address}>>{after}",
        "mailto on one line": f"{name.rstrip()} <{address}<mailto:{address}>>{after}",
        "cut in the middle": " ".join(words[:len(words) // 2]) + "\n" + " ".join(words[len(words) // 2:]),
    }


HEADER_CASES = [(lang, how, text) for lang, header in HEADERS.items()
                for how, text in _wrapped(header).items()]


@pytest.mark.parametrize("quoted", [True, False], ids=["quoted", "unquoted original"])
@pytest.mark.parametrize(("lang", "how", "header"), HEADER_CASES,
                         ids=[f"{lang}-{how}" for lang, how, _ in HEADER_CASES])
def test_quote_headers_in_every_language_and_wrapping_end_the_new_text(
        lang: str, how: str, header: str, quoted: bool) -> None:
    original = "Hello Alex,\nTopics: ...\nRating: 1-5\nThe agenda's own words\n"
    if quoted:
        original = "".join(f"> {s}\n" for s in original.splitlines())
    parsed = parse_reply(reply(f"We met on Tuesday.\nTopics: pricing\n\n{header}\n\n{original}"))
    assert parsed.body == "We met on Tuesday.\nTopics: pricing"
    assert parsed.fields["rating"] is None


@pytest.mark.parametrize("text", [
    "I wrote to sam@example.com\n",  # an address and "wrote" in a note, then a real header
    "On Monday we met.\n",
    "Alex\n",
])
def test_a_line_above_a_wrapped_header_stays_the_senders(text: str) -> None:
    header = "On Mon, 3 Mar 2025 at 09:00, Reverse Mentoring <mentoring@acme.example>\nwrote:\n"
    parsed = parse_reply(reply("Topics: pricing\n" + text + header + QUOTE))
    assert parsed.body == "Topics: pricing\n" + text.strip()


# --- the author's words are never lost ------------------------------------------------------------

HEADER = "On Mon, 3 Mar 2025 at 09:00, Reverse Mentoring <mentoring@acme.example> wrote:\n"


def test_interleaved_answers_keep_their_order_and_drop_the_quote() -> None:
    text = (HEADER + "> Attended?\nyes\n> Which topics came up, and why did they come up in this session at all?\n"
            "creators, then ads\n> Rating: 1-5\n\n4\n")
    parsed = parse_reply(reply(text))
    assert parsed.body == "yes\ncreators, then ads\n\n4"
    assert parsed.fields["rating"] == 4


def test_a_lower_case_answer_under_a_long_quoted_question_is_kept() -> None:
    text = HEADER + "> Did you get to talk about how the team uses group chats for work?\nyes, at length\n"
    assert parse_reply(reply(text)).body == "yes, at length"


def test_a_client_rewrapped_quote_line_is_still_quote() -> None:
    text = ("Thanks.\n\n" + HEADER + "> Lorem ipsum dolor sit amet, consectetur adipiscing elit. Nullam d\n"
            "ignissim odio\n> more quote\n")
    assert parse_reply(reply(text)).body == "Thanks."


@pytest.mark.parametrize("above", ["", "\n\nSent from my iPhone\n\n", "-- \nAlex Morgan\n\n"])
def test_bottom_posting_keeps_the_text_below_the_quote(above: str) -> None:
    parsed = parse_reply(reply(above + HEADER + QUOTE + "\nWe met. Sam showed me BeReal.\nRating: 4\n"))
    assert parsed.body == "We met. Sam showed me BeReal.\nRating: 4"


@pytest.mark.parametrize("note", ["FYI: my notes from 4 March 2025 are below.", "Sam - see below",
                                  "Thanks!"])
def test_the_senders_line_above_a_forward_is_kept(note: str) -> None:
    text = (f"{note}\n---------- Forwarded message ---------\nFrom: Sam <sam@example.com>\n"
            "Date: Tue, 4 Mar 2025 at 10:12\nSubject: notes\nTo: Alex <alex@example.com>\n\nTopics: x\n")
    assert parse_reply(reply(text, subject="Fwd: notes [RM-7F3K2Q]")).body == note


@pytest.mark.parametrize("intro", ["Begin forwarded message:", "Anfang der weitergeleiteten Nachricht:",
                                   "From: Sam <sam@example.com>"])
@pytest.mark.parametrize("note", ["Here is what Sam wrote after our session on 3 March 2025",
                                  "2025 wrote ads", "Sam schrieb das am 3. März 2025 um 10:00"])
def test_a_note_with_a_date_and_wrote_right_above_a_forward_is_kept(note: str, intro: str) -> None:
    """Not read as an "On … wrote:" header wrapped onto the forward's intro line (that lost it)."""
    text = f"{note}\n{intro}\nFrom: Sam <sam@example.com>\nDate: Tue, 4 Mar 2025 at 10:12\nSubject: x\n\nTopics: y\n"
    parsed = parse_reply(reply(text, subject="Fwd: notes [RM-7F3K2Q]"))
    assert parsed.body == note and parsed.fields["topics"] == []


@pytest.mark.parametrize(("line", "forwarded"), [
    ("Rating: 4 -----Original Message-----", False),
    ("Rating: 4.-----Original Message----- From: Sam <sam@example.com> Sent: Tue, 4 Mar 2025 To: Alex", False),
    ("Rating: 4 ----- Ursprüngliche Nachricht -----", False),
    ("Rating: 4 ---------- Forwarded message ---------", True),
])
def test_a_separator_in_the_middle_of_a_line_ends_the_new_text(line: str, forwarded: bool) -> None:
    text = f"Topics: pricing\n{line}\n\nFrom: Sam <sam@example.com>\nSent: Tue, 4 Mar 2025\n\nRating: 1-5\n"
    parsed = parse_reply(reply(text))
    assert parsed.body.rstrip(".") == "Topics: pricing\nRating: 4"
    assert parsed.fields["rating"] == 4
    assert any(w.startswith("forward:") for w in parsed.warnings) == forwarded


def test_a_separator_with_the_outlook_header_flattened_onto_its_line_is_history() -> None:
    text = ("Topics: pricing\n-----Original Message----- From: Sam <sam@example.com> Sent: Tuesday, March 4, "
            "2025 To: Alex Subject: agenda\n\nRating: 1-5\n")
    assert parse_reply(reply(text)).body == "Topics: pricing"


def test_dashes_around_other_words_in_a_line_are_text() -> None:
    text = "We -- original message aside -- met twice.\nTopics: ads ---- pricing\n"
    assert parse_reply(reply(text)).body == text.strip()


def test_text_under_a_signature_mark_is_kept_with_a_warning_when_it_is_all_there_is() -> None:
    parsed = parse_reply(reply("Sent from my Galaxy\n\nTopics: Discord\nRating: 5\n"))
    assert parsed.body == "Topics: Discord\nRating: 5"
    assert any("signature" in w for w in parsed.warnings)


@pytest.mark.parametrize("text", ["Sent from my iPhone\n", "-- \nAlex Morgan\nCFO, ACME\n+44 20 7946 0000\n"])
def test_a_signature_alone_is_still_no_text(text: str) -> None:
    parsed = parse_reply(reply(text + "\n" + HEADER + QUOTE))
    assert parsed.body == ""
    assert not any("signature" in w for w in parsed.warnings)


def test_an_outlook_reply_with_nothing_written_stays_empty() -> None:
    text = ("-----Original Message-----\nFrom: P <p@example.com>\nSent: Monday, March 3, 2025 9:00 AM\n"
            "To: Alex\nSubject: agenda\n\n> Attended: yes\n> Topics: ...\n")
    parsed = parse_reply(reply(text))
    assert parsed.body == "" and parsed.fields["attended"] is None


# The header block a client writes above a forwarded or pasted message, with no separator line
# (Outlook for Mac, or a copy pasted with the headers it was printed with), as the sender's own
# client would label it.
OWN_BLOCKS = {
    "en": "From: Alex <alex@example.com>\nDate: Tuesday, 4 March 2025 at 10:12\nTo: Sam\nSubject: notes",
    "de": "Von: Alex <alex@example.com>\nGesendet: Dienstag, 4. März 2025 10:12\nAn: Sam\nBetreff: Notizen",
    "fr": "De : Alex <alex@example.com>\nEnvoyé : mardi 4 mars 2025 10:12\nÀ : Sam\nObjet : notes",
    "pl": "Od: Alex <alex@example.com>\nWysłano: wtorek, 4 marca 2025 10:12\nTemat: notatki",
    "ja": "差出人: Alex <alex@example.com>\n送信日時: 2025年3月4日 10:12\n件名: メモ",
    "outlook-forward": "-----Original Message-----\nFrom: Alex [mailto:ALEX@example.com] \n"
                       "Sent: Tuesday, March 04, 2025 10:12 AM\nTo: Sam\nSubject: notes",
}


@pytest.mark.parametrize("block", OWN_BLOCKS.values(), ids=OWN_BLOCKS)
def test_the_senders_own_message_opening_the_mail_is_what_they_wrote(block: str) -> None:
    """Their notes forwarded from Sent Items (or pasted with their headers), nothing typed above."""
    parsed = parse_reply(reply(f"\n{block}\n\nTopics: pricing\nRating: 4\n\nThanks,\nAlex\n"
                               "\nOn Mon, 3 Mar 2025, Sam <sam@example.com> wrote:\n> Topics: ...\n"))
    assert parsed.body == "Topics: pricing\nRating: 4"
    assert parsed.fields["rating"] == 4
    assert any("sender's own earlier message" in w for w in parsed.warnings)


@pytest.mark.parametrize("block", OWN_BLOCKS.values(), ids=OWN_BLOCKS)
def test_someone_elses_message_opening_the_mail_is_not_read_as_the_senders(block: str) -> None:
    """The agenda forwarded or answered with nothing typed: its prompts are not answers."""
    block = block.replace("Alex [mailto:ALEX@", "Mentoring [mailto:mentoring@").replace("Alex <alex@", "Mentoring <mentoring@")
    parsed = parse_reply(reply(f"\n{block}\n\nAttended: yes\nTopics: ...\nRating: 1-5\n"))
    assert parsed.body == "" and parsed.fields["attended"] is None
    assert not any("sender's own earlier message" in w for w in parsed.warnings)


def test_the_senders_own_earlier_message_below_new_text_is_history() -> None:
    text = f"Rating: 5\n\n{OWN_BLOCKS['en']}\n\nTopics: pricing\nRating: 4\n"
    parsed = parse_reply(reply(text))
    assert parsed.body == "Rating: 5" and parsed.fields["topics"] == []


def test_a_rule_line_between_answers_is_not_a_footer() -> None:
    text = "Topics: pricing\n\n------------\nLearned: Sam's team prices by usage\nRating: 4\n"
    parsed = parse_reply(reply(text))
    assert parsed.fields["learned"] == "Sam's team prices by usage" and parsed.fields["rating"] == 4


# --- fields in running text -----------------------------------------------------------------------


def test_labels_in_one_paragraph_fill_every_field() -> None:
    parsed = parse_reply(reply("Attended yes. Topics: TikTok ads, creators. Learned: creators charge "
                               "per post. Next steps: brief two creators; test a small budget. 4/5\n"))
    assert parsed.fields == {**parsed.fields, "attended": True, "topics": ["TikTok ads", "creators"],
                             "learned": "creators charge per post.",
                             "next_steps": ["brief two creators", "test a small budget"], "rating": 4}


def test_labels_in_running_text_read_in_other_languages() -> None:
    parsed = parse_reply(reply("Teilgenommen ja. Themen: TikTok, Discord. Nächste Schritte: Discord testen.\n"))
    assert parsed.fields["topics"] == ["TikTok", "Discord"]
    assert parsed.fields["next_steps"] == ["Discord testen"]


@pytest.mark.parametrize("text", [
    "Great session, I learned a lot about TikTok.",
    "Great session. Learned a lot about TikTok. Topics were broad.",
    "We met. The topics: too many to list, honestly.",
    "Great session. Note: bring a laptop next time.",
])
def test_a_label_word_inside_a_sentence_is_not_a_field(text: str) -> None:
    fields = parse_reply(reply(text + "\n")).fields
    assert fields["learned"] is None and fields["topics"] == [] and fields["rating"] is None


def test_a_rating_after_the_last_sentence_does_not_join_the_field_before_it() -> None:
    parsed = parse_reply(reply("Learned: creators charge per post. 4/5\n"))
    assert parsed.fields["learned"] == "creators charge per post." and parsed.fields["rating"] == 4


# The label lists are matched as prefix trees (lexicon.alternation) for speed; a tree that tried a
# shorter word before a longer one would read "Next steps: …" as the label "Next step" + "s: …".
@settings(max_examples=300, deadline=None)
@given(words=st.lists(st.text("abc -", min_size=1, max_size=5), min_size=1, max_size=12),
       text=st.text("abcABC -:", max_size=10))
def test_a_word_list_as_a_prefix_tree_matches_what_the_longest_first_list_matched(words: list[str], text: str) -> None:
    ordered = sorted(set(words), key=len, reverse=True)
    flat = re.compile("(?P<word>" + "|".join(re.escape(w) for w in ordered) + r")(?P<rest>.*)", re.IGNORECASE)
    tree = re.compile("(?P<word>" + alternation(ordered) + r")(?P<rest>.*)", re.IGNORECASE)
    found, expected = tree.match(text), flat.match(text)
    assert (found and found.groupdict()) == (expected and expected.groupdict())
