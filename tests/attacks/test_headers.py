"""Values a sender chooses that we copy into our own mail: an encoded line break in a
Message-ID must neither add a header of theirs nor make the pair's notices unbuildable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from attackkit import MENTEE, armed, drop, sent_to, tables, text_mail, token_of
from rmdaemon import compose


@pytest.mark.parametrize("message_id", [
    "=?utf-8?q?<a=0D=0ABcc:_evil=40evil.example?=>",  # a Bcc of the attacker's choosing
    "=?utf-8?q?<a=0D=0A=0D=0AX-Injected:_evil=40evil.example?=>",  # a blank line: the rest becomes body
    "<a\tb@evil.example>",
])
def test_a_hostile_message_id_is_dropped_from_threading_and_the_reply_still_handled(tmp_path, message_id):
    prog, now = armed(tmp_path)
    before = {p.name for p in prog.outbox_files()}
    raw = text_mail(MENTEE, f"Re: session [{token_of(prog, MENTEE)}]", "RESCHEDULE Sun 03:00", message_id=message_id)
    drop(prog, raw)
    for hours in (0, 1, 2):  # the reply, then the booking ticks that answer it
        assert prog.run(now + timedelta(hours=hours)) == 0
    assert tables(prog)["inbox"][-1]["outcome"] == "command"
    new = [p for p in prog.outbox_files() if p.name not in before]
    notices = [m for m in sent_to(prog, MENTEE) if m["X-RM-Key"].startswith("notice:")]
    assert notices, "the mentee never heard back about the RESCHEDULE: the pair's mail is stalled"
    for path in new:
        head = path.read_bytes().split(b"\r\n\r\n", 1)[0]
        assert b"evil.example" not in head and b"In-Reply-To: =?" not in head


@pytest.mark.parametrize(("value", "kept"), [
    ("<CAF=abc.123@mail.gmail.com>", True),
    ("<x@[192.0.2.1]>", True),
    ("<a\r\nBcc: e@evil.example>", False),
    ("<a b@example.com>", False),
    ("a@example.com", False),
    ("<é@example.com>", False),
    ("<" + "a" * 300 + "@example.com>", False),
])
def test_thread_ids_follow_rfc_5322(value, kept):
    assert (compose.thread_id(value) == value) is kept
