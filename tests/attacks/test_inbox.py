"""Whoever can put files into the local inbox Maildir (a mail delivery agent, a careless admin):
a link to a private file, a FIFO, a message built to exhaust the parser."""

from __future__ import annotations

import os

from attackkit import MENTEE, armed, attack, tables, text_mail, token_of

CANARY = "CANARY-etc-shadow-5e1d"


def quarantined_bytes(prog) -> bytes:
    folder = prog.state.parent / "quarantine"
    return b"".join(p.read_bytes() for p in folder.iterdir()) if folder.is_dir() else b""


def test_a_symlink_in_the_inbox_is_never_followed(tmp_path):
    prog, now = armed(tmp_path / "p")
    secret = tmp_path / "shadow"
    secret.write_text(f"From: {MENTEE}\r\nSubject: [{token_of(prog, MENTEE)}]\r\n\r\nSTOP {CANARY}\r\n")
    link = prog.root / "var" / "inbox" / "new" / "link.eml"
    before = tables(prog)
    os.symlink(secret, link)
    assert prog.run(now) == 0
    row = tables(prog)["inbox"][-1]
    assert row["outcome"] == "quarantine" and "without following a link" in row["reason"]
    assert CANARY.encode() not in quarantined_bytes(prog)
    assert tables(prog)["pairs"] == before["pairs"] and tables(prog)["commands"] == before["commands"]
    assert not os.path.lexists(link)  # moved to cur/, the link itself
    assert CANARY in secret.read_text()  # the target is left where it was


def test_a_fifo_in_the_inbox_neither_blocks_the_daemon_nor_is_read(tmp_path):
    prog, now = armed(tmp_path)
    os.mkfifo(prog.root / "var" / "inbox" / "new" / "fifo.eml")
    assert prog.run(now) == 0  # a blocking open would hang here forever
    row = tables(prog)["inbox"][-1]
    assert row["outcome"] == "quarantine" and "not a regular file" in row["reason"]


def test_a_message_of_thousands_of_mime_parts_is_not_parsed(tmp_path):
    prog, now = armed(tmp_path)
    parts = "".join("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(5000))
    raw = text_mail(MENTEE, f"Re: [{token_of(prog, MENTEE)}]", "").replace(
        b"Content-Type: text/plain; charset=utf-8", b'Content-Type: multipart/mixed; boundary="b"') + (parts + "--b--\r\n").encode()
    attack(prog, now, raw, "MIME boundary lines")
