"""Acting for a pair that is not yours: forged calendar answers, From tricks, commands from the
wrong person. Each message is real bytes through the daemon's inbox; each must leave every pair
as it was and be quarantined with its reason (issue 15, docs/security.md)."""

from __future__ import annotations

import pytest

from attackkit import (CHAMPION, MENTEE, MENTEE2, MENTOR, MENTOR2, armed, attack, calendar_reply, drop,
                       first_occurrence, reply_ics, series_uid, tables, text_mail, token_of)
from rmdaemon.replies import parse_reply, to_contract_json


@pytest.fixture
def pair(tmp_path):
    return armed(tmp_path)


def test_a_genuine_decline_is_recorded_so_the_forgeries_below_fail_for_their_own_reason(pair):
    prog, now = pair
    drop(prog, calendar_reply(MENTEE, reply_ics(series_uid(prog), MENTEE, "DECLINED", first_occurrence(prog))))
    assert prog.run(now) == 0
    assert tables(prog)["inbox"][-1]["outcome"] == "itip"
    (p01,) = [p for p in tables(prog)["pairs"] if p["pair_id"] == "P01"]
    assert "DECLINED" in p01["responses"][MENTEE].values()


def test_a_stranger_cannot_decline_a_session_for_a_participant(pair):
    prog, now = pair
    ics = reply_ics(series_uid(prog), MENTEE, "DECLINED", first_occurrence(prog))
    attack(prog, now, calendar_reply("mallory@evil.example", ics), "not part of pair P01")


def test_the_other_participant_cannot_answer_for_the_mentee(pair):
    prog, now = pair
    ics = reply_ics(series_uid(prog), MENTEE, "DECLINED", first_occurrence(prog))
    attack(prog, now, calendar_reply(MENTOR, ics), f"changes the answer of {MENTEE}")


def test_a_member_of_another_pair_cannot_answer_for_this_pairs_series(pair):
    prog, now = pair
    ics = reply_ics(series_uid(prog), MENTEE2, "DECLINED", first_occurrence(prog))
    attack(prog, now, calendar_reply(MENTEE2, ics), "not part of pair P01")


def test_an_encoded_display_name_never_becomes_the_sender(pair):
    prog, now = pair
    raw = text_mail("=?utf-8?q?richard.hale=40example.com?= <attacker@evil.example>",
                    f"Re: session [{token_of(prog, MENTEE)}]", "STOP",
                    extra="Authentication-Results: mx.example.com; dmarc=pass header.from=evil.example\n")
    attack(prog, now, raw, f"shows {MENTEE} in its name but the address is attacker@evil.example")


def test_an_encoded_champion_address_cannot_pause_another_pair(pair):
    prog, now = pair
    raw = text_mail(f"=?utf-8?q?{CHAMPION.replace('@', '=40')}?= <attacker@evil.example>", "programme", "PAUSE P02")
    attack(prog, now, raw, f"shows {CHAMPION} in its name")


@pytest.mark.parametrize(("from_header", "reason"), [
    (f"{MENTEE} <attacker@evil.example>", "display name holds an unquoted address"),
    (f'"{MENTEE}" <attacker@evil.example>', f"shows {MENTEE} in its name"),
    (f"<attacker@evil.example> ({MENTEE})", f"shows {MENTEE} in its name"),
    (f"{MENTEE}, attacker@evil.example", "has 2 addresses"),
    (f"friends: {MENTEE};", "a group of addresses"),
    ("=?utf-8?q?richard.hale=40example.com?=", "no valid address"),
    ("Richard <=?utf-8?q?richard.hale=40example.com?=>", "no valid address"),
])
def test_from_headers_that_show_one_person_and_name_another_are_quarantined(pair, from_header, reason):
    prog, now = pair
    attack(prog, now, text_mail(from_header, f"Re: session [{token_of(prog, MENTEE)}]", "STOP"), reason)


def test_two_from_headers_are_refused_whichever_comes_first(pair):
    prog, now = pair
    raw = text_mail(MENTEE, f"Re: session [{token_of(prog, MENTEE)}]", "STOP", extra="From: attacker@evil.example\n")
    attack(prog, now, raw, "2 From headers")


@pytest.mark.parametrize("sender", [
    "richard.hale+pair@example.com",  # plus-addressing is another address
    "richard.hale@exаmple.com",  # Cyrillic а: a look-alike domain
    "richard.hale@example.com.evil.example",
])
def test_look_alike_addresses_are_not_the_participant(pair, sender):
    prog, now = pair
    attack(prog, now, text_mail(sender, f"Re: session [{token_of(prog, MENTEE)}]", "STOP"), "not part of pair P01")


def test_sender_and_reply_to_do_not_speak_for_the_from(pair):
    prog, now = pair
    raw = text_mail("attacker@evil.example", f"Re: session [{token_of(prog, MENTEE)}]", "STOP",
                    extra=f"Sender: {MENTEE}\nReply-To: {MENTEE}\n")
    attack(prog, now, raw, "not part of pair P01")


def test_a_participant_cannot_command_another_pair_as_the_champion_does(pair):
    prog, now = pair
    drop(prog, text_mail(MENTOR, "programme", "PAUSE P02"))
    assert prog.run(now) == 0
    assert {p["pair_id"]: p["state"] for p in tables(prog)["pairs"]}["P02"] == "active"
    assert not [c for c in tables(prog)["commands"] if c["pair_id"] == "P02"]


def test_a_replayed_message_acts_once(pair):
    prog, now = pair
    raw = text_mail(MENTOR2, "Re: session", "Attended: yes\nRating: 4",
                    message_id="<once@client.example>")
    drop(prog, raw, "first.eml")
    assert prog.run(now) == 0
    logs = tables(prog)["logs"]
    drop(prog, raw, "again.eml")
    assert prog.run(now) == 0
    assert tables(prog)["logs"] == logs


def test_with_trusted_authentication_results_a_dkim_failure_for_the_from_domain_quarantines(tmp_path):
    prog, now = armed(tmp_path, trust_authentication_results="true", authserv_id='"mx.example.com"')
    raw = text_mail(MENTEE, f"Re: session [{token_of(prog, MENTEE)}]", "STOP",
                    extra="Authentication-Results: mx.example.com; dkim=fail header.d=example.com; dmarc=pass header.from=example.com\n")
    attack(prog, now, raw, "dkim=fail")


def test_with_trusted_authentication_results_a_verdict_for_another_from_quarantines(tmp_path):
    prog, now = armed(tmp_path, trust_authentication_results="true", authserv_id='"mx.example.com"')
    ics = reply_ics(series_uid(prog), MENTEE, "DECLINED", first_occurrence(prog))
    raw = calendar_reply(MENTEE, ics, extra="Authentication-Results: mx.example.com; dmarc=pass header.from=evil.example\n")
    attack(prog, now, raw, "dmarc checked evil.example, not example.com")


@pytest.mark.parametrize(("from_header", "expected"), [
    (f"{MENTEE} <attacker@evil.example>", None),
    ("=?utf-8?q?richard.hale=40example.com?= <attacker@evil.example>", "attacker@evil.example"),
    ('"Hale, Richard" <Richard.Hale@Example.com>', MENTEE),
])
def test_parse_reply_reads_the_sender_the_same_way(from_header, expected):
    parsed = to_contract_json(parse_reply(text_mail(from_header, "hi", "hello")))
    assert parsed["from"] == expected
    assert any(w.startswith("from:") for w in parsed["warnings"]) == (expected != MENTEE)
