"""Who sent a message, as the inbox decides it before anything acts: the From header read by RFC
5322's rules (``replies/sender.py``) and our own server's SPF/DKIM/DMARC verdicts (``authres.py``).
The reason is what the admin reads in the quarantine, so each case asserts it whole. The same
rules through the daemon's inbox: tests/attacks/test_sender.py and test_headers.py."""

from __future__ import annotations

import pytest

from rmdaemon import authres
from rmdaemon.replies.sender import From, envelope_from, head_fields, parse_from

ME = "richard.hale@example.com"


@pytest.mark.parametrize(("header", "found"), [
    # what a person's mail client writes: one mailbox, maybe a name or a comment
    (ME, From(ME)),
    ("Richard.Hale@Example.COM", From(ME)),
    (f"Richard Hale <{ME}>", From(ME)),
    (f'"Hale, Richard" <{ME}>', From(ME)),
    (f'"Richard \\"Rick\\" Hale" <{ME}>', From(ME)),
    (f"{ME} (Richard Hale)", From(ME)),
    (f"<{ME}> (Richard (at work) Hale)", From(ME)),
    (f"Richard <{ME}> ", From(ME)),
    ('"richard.hale"@example.com', From('"richard.hale"@example.com')),
    (f"=?utf-8?q?Richard_H=C3=A4le?= <{ME}>", From(ME)),
    (f'"{ME}" <{ME}>', From(ME)),  # the name shows the same address: no one is misled
    (f'"{ME}." <{ME}>', From(ME)),
    # a name or comment that shows someone else: the address acts for no one
    (f'"boss@example.com" <{ME}>', From(ME, f"From header shows boss@example.com in its name but the address is {ME}")),
    (f"<{ME}> (boss@example.com)", From(ME, f"From header shows boss@example.com in its name but the address is {ME}")),
    (f"=?utf-8?q?boss=40example.com?= <{ME}>", From(ME, f"From header shows boss@example.com in its name but the address is {ME}")),
    (f"boss@example.com <{ME}>", From(None, "From header's display name holds an unquoted address")),
    # not one readable mailbox
    ("", From(None, "From header has no address")),
    ("  (nobody)  ", From(None, "From header has no address")),
    (f"{ME}, boss@example.com", From(None, "From header has 2 addresses; a message has one sender")),
    (f"{ME},", From(ME)),  # an empty list member is no address (RFC 5322 obsolete syntax)
    (f"team: {ME};", From(None, "From header is a group of addresses")),
    (f"Richard <{ME}", From(None, "From header has unbalanced angle brackets")),
    (f"Richard {ME}>", From(None, "From header has no valid address")),
    (f"Richard > {ME} <", From(None, "From header has unbalanced angle brackets")),
    (f"<<{ME}>>", From(None, "From header has unbalanced angle brackets")),
    (f"<{ME}> and more", From(None, "From header has text after the address")),
    ("Richard <richard.hale>", From(None, "From header has no valid address")),
    ("Richard <richard@localhost>", From(None, "From header has no valid address")),
    ("Richard <richard@@example.com>", From(None, "From header has no valid address")),
    ("Richard <.richard@example.com>", From(None, "From header has no valid address")),
    ("Richard <richard@example..com>", From(None, "From header has no valid address")),
    ('Richard <"@example.com>', From(None, "From header cannot be read (unclosed quote)")),
    ("Richard <=?utf-8?q?x?=@example.com>", From(None, "From header has no valid address")),
    (f'"Richard <{ME}', From(None, "From header cannot be read (unclosed quote)")),
    (f"Richard (at work <{ME}>", From(None, "From header cannot be read (unclosed comment)")),
    (f"Richard \x00 <{ME}>", From(None, "From header cannot be read (unexpected '\\x00')")),
    (f"<<{ME}>", From(None, "From header has unbalanced angle brackets")),
    (f"<{ME}>x", From(None, "From header has text after the address")),
    (f"team: {ME}", From(None, "From header is a group of addresses")),  # a group missing its ";"
    (f"{ME};", From(None, "From header is a group of addresses")),
    ('<"a"b@example.com>', From(None, "From header has no valid address")),  # half quoted, half atom
    ('<""@example.com>', From('""@example.com')),
    (f'"" <{ME}>', From(ME)),
    (f'"Rick \\"" <{ME}>', From(ME)),  # an escaped quote just before the closing one
    (f"<{ME}> (x\\))", From(ME)),  # an escaped parenthesis just before the closing one
    ('"Xavier@Example.com" <xavier@example.com>', From("xavier@example.com")),  # their own address, capitalised
    (f'"boss\\@example.com" <{ME}>', From(ME, f"From header shows boss@example.com in its name but the address is {ME}")),
])
def test_a_from_header_names_one_sender_or_says_why_not(header, found):
    assert parse_from(header) == found


def test_escaped_characters_in_a_quoted_name_or_comment_do_not_end_it_early():
    assert parse_from(f'"Hale \\" Richard" <{ME}>') == From(ME)
    assert parse_from(f"<{ME}> (Hale \\) boss@example.com)").problem == (
        f"From header shows boss@example.com in its name but the address is {ME}")


@pytest.mark.parametrize(("raw", "found"), [
    (f"From: {ME}\r\nTo: x@example.com\r\n\r\nFrom: boss@example.com\r\n".encode(), From(ME)),  # the body is no header
    (f"Subject: hi\nFrom: Richard\n <{ME}>\n\nbody".encode(), From(ME)),  # folded, bare LF
    (f"Subject: hi\r\nFrom:\r\n\t{ME}\r\n\r\n".encode(), From(ME)),
    (f"FROM: {ME}\r\n\r\n".encode(), From(ME)),
    (b"Subject: hi\r\n\r\nFrom: x@example.com\r\n", From(None, "no From header")),
    (f"From: {ME}\r\nfrom: boss@example.com\r\n\r\n".encode(), From(None, "2 From headers; a message has one sender")),
    (f"X-From: boss@example.com\r\nFrom : {ME}\r\n\r\n".encode(), From(None, "no From header")),  # "From " is no name
    (f"From: {ME}\r\n\r\nbody\r\n\r\nFrom: boss@example.com\r\n\r\nend\r\n".encode(), From(ME)),
    (f"Subject: \xff\xfe caf\xe9\r\nFrom: {ME}\r\n\r\n".encode("latin-1"), From(ME)),  # not UTF-8: no crash
])
def test_the_sender_is_read_from_the_head_only_and_from_exactly_one_from_header(raw, found):
    assert envelope_from(raw) == found


def test_head_fields_keep_values_raw_and_unfolded():
    raw = (b"X-Mailer: x\r\nSubject: Re: =?utf-8?q?caf=C3=A9?=\r\nFrom: a\r\n  <a@example.com>\r\n\tmore\r\n"
           b"no colon here\r\n\r\nX: body\r\n")
    assert head_fields(raw) == [("X-Mailer", "x"), ("Subject", "Re: =?utf-8?q?caf=C3=A9?="),
                                ("From", "a <a@example.com> more")]


AR = "Authentication-Results"


def _mail(*results: str, sender: str = ME) -> bytes:
    head = "".join(f"{AR}: {r}\r\n" for r in results)
    return f"{head}From: {sender}\r\n\r\n{AR}: mx.example.com; dmarc=fail\r\n".encode()  # in the body: no header


@pytest.mark.parametrize(("results", "found"), [
    (["mx.example.com; dmarc=fail header.from=example.com"], ["dmarc=fail"]),
    (["mx.example.com; dmarc=fail header.from=mail.example.com"], ["dmarc=fail"]),  # relaxed alignment, both ways
    (["mx.example.com; spf=fail smtp.mailfrom=bounce@mail.example.com"], ["spf=fail"]),
    (["mx.example.com; spf=fail smtp.helo=example.com"], ["spf=fail"]),
    (["mx.example.com; dkim=fail header.d=example.com"], ["dkim=fail"]),
    (["mx.example.com; dkim=fail header.i=@example.com"], ["dkim=fail"]),
    (["mx.example.com; dkim=fail"], []),  # a signature of no named domain says nothing about the From
    (["mx.example.com; dkim=fail header.d=list.example.org"], []),  # a mailing list's broken signature
    (["mx.example.com; spf=fail smtp.mailfrom=bounce@bounces.example.org; dmarc=pass header.from=example.com"], []),
    (["mx.example.com; spf=fail; dkim=fail header.d=example.com; dmarc=fail"], ["dmarc=fail", "spf=fail", "dkim=fail"]),
    (["mx.example.com; dmarc=fail header.from=other.example"], ["dmarc checked other.example, not example.com"]),
    (["mx.example.com; dmarc=pass header.from=other.example"], ["dmarc checked other.example, not example.com"]),
    (["mx.example.com; dmarc=fail header.from=other.example", "mx.example.com; dmarc=fail header.from=other.example"],
     ["dmarc checked other.example, not example.com"]),  # said once
    (["mx.example.com; dmarc=fail", "mx.example.com; dmarc=fail"], ["dmarc=fail"]),
    (["mx.example.com; dmarc=fail header.from=notexample.com"], ["dmarc checked notexample.com, not example.com"]),
    (["mx.example.com; spf=fail smtp.mailfrom=x@notexample.com"], []),
    (["mx.example.com; dmarc=fail; dmarc=pass"], ["dmarc=fail"]),  # the first result of a method wins
    (["mx.example.com; dmarc=pass; dmarc=fail"], []),
    (["mx.example.com; dmarc = fail"], ["dmarc=fail"]),
    (['mx.example.com; dmarc=fail header.from="example.com"'], ["dmarc=fail"]),
    (["mx.example.com; dmarc=fail header.from=EXAMPLE.COM."], ["dmarc=fail"]),
    (["mx.example.com (our (own) server); dmarc=fail"], ["dmarc=fail"]),
    (["evil.example; dmarc=fail", "mx.example.com; dmarc=pass"], []),  # a sender's own header is never trusted
    ([" MX.EXAMPLE.COM  1 ; dmarc=fail"], ["dmarc=fail"]),
    ([], []),
    (["mx.example.com; none"], []),
    (["evil.example; dmarc=pass", "mx.example.com; dmarc=fail"], ["dmarc=fail"]),  # ours, after someone else's
    (["mx.example.com; dmarc=pass; spf=fail smtp.mailfrom=x@example.com"], ["spf=fail"]),
    (["mx.example.com; spf=fail smtp.mailfrom=x@other.example; dkim=fail header.d=example.com"], ["dkim=fail"]),
    (["mx.example.com; dmarc=pass header.from=other.example; spf=fail smtp.mailfrom=x@example.com"],
     ["dmarc checked other.example, not example.com", "spf=fail"]),  # the reason names every finding
])
def test_only_our_servers_fail_for_the_senders_own_domain_counts(results, found):
    assert authres.failures(_mail(*results), " MX.example.com ", ME) == found


@pytest.mark.parametrize(("results", "sender", "found"), [
    ("mx.example.com; dmarc=fail header.from=example.com", "r@mail.example.com", ["dmarc=fail"]),  # a subdomain
    ("mx.example.com; dmarc=fail header.from=Xerox.com", "r@xerox.com", ["dmarc=fail"]),
    ('mx.example.com; dkim=fail header.d="Xerox.com"', "r@xerox.com", ["dkim=fail"]),
])
def test_alignment_reads_the_domain_as_written(results, sender, found):
    assert authres.failures(_mail(results, sender=sender), "mx.example.com", sender) == found


def test_our_verdict_as_the_last_header_line_counts():
    raw = f"From: {ME}\r\n{AR}: mx.example.com; dmarc=fail\r\n\r\nbody\r\n".encode()
    assert authres.failures(raw, "mx.example.com", ME) == ["dmarc=fail"]


def test_without_a_from_address_every_fail_of_our_server_counts():
    raw = _mail("mx.example.com; spf=fail smtp.mailfrom=x@elsewhere.example; dmarc=fail header.from=elsewhere.example")
    assert authres.failures(raw, "mx.example.com") == ["dmarc=fail", "spf=fail"]


def test_a_verdict_is_read_with_its_properties():
    assert authres.parse("mx.example.com 1; spf=fail (not permitted) smtp.mailfrom=x; dmarc=fail (p=reject)") == (
        "mx.example.com", {"spf": "fail", "dmarc": "fail"})
    assert authres.parse_full('mx.example.com; DKIM=Fail header.d="Example.com" header.s=sel') == (
        "mx.example.com", {"dkim": ("fail", {"header.d": "example.com", "header.s": "sel"})})
    assert authres.parse("") == ("", {})


def test_a_head_that_cannot_be_parsed_gives_no_verdict_and_no_crash():
    assert authres.failures(b"\xff\xfe" * 10 + b"\r\n\r\n", "mx.example.com") == []
    assert authres.failures(b"From: a@example.com\n\nAuthentication-Results: mx.example.com; dmarc=fail\n",
                            "mx.example.com") == []
