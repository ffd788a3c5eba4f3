"""The smtp backend against real servers when things go wrong: SMTP down or refusing a recipient,
a connection lost after the server took the message, IMAP dropped mid-fetch, a changed
UIDVALIDITY, a 30 MB message — and ``check --online`` naming what to fix. Nothing lost, nothing
sent twice."""

from __future__ import annotations

import json
import logging
import socket
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from contract import ALEX, SAM, meeting, outgoing
from rmdaemon.backends import imap_read
from rmdaemon.backends.smtp_net import Endpoint, explain
from rmdaemon.errors import BackendError
from tests.servers.dovecot import CuttingProxy
from tests.servers.fixtures import (ORGANIZER, SMTP_PASSWORD, MailWorld, dovecot, mail_certs, mail_world,  # noqa: F401
                                    mailbox, smtp_server)
from tests.servers.smtp import SmtpServer, free_port


def reply(n: int, body: str = "Attended: yes\r\n", size: int = 0) -> bytes:
    msg = EmailMessage()
    msg["From"] = ALEX.email
    msg["To"] = ORGANIZER
    msg["Subject"] = f"Re: session {n}"
    msg["Message-ID"] = f"<reply-{n}@client.example>"
    msg.set_content(body + ("x" * 76 + "\n") * (size // 77))
    return msg.as_bytes()


def keys_sent(world: MailWorld) -> list[str]:
    return [message_from_bytes(m.data, policy=policy.default)["X-RM-Key"] for m in world.smtp.messages]


# -- sending -----------------------------------------------------------------------------------


def test_smtp_down_is_temporary_fails_fast_and_sends_once_when_back(mail_world: MailWorld):
    backend = mail_world.backend()
    mail_world.smtp.stop()
    with pytest.raises(BackendError) as down:
        backend.send(outgoing("k1"))
    assert not down.value.permanent and "connection refused" in str(down.value)
    mail_world.smtp.start()
    with pytest.raises(BackendError):  # within a minute of the failure: no new connection attempt per message
        backend.send(outgoing("k2"))
    mail_world.clock_now += timedelta(seconds=61)
    backend.send(outgoing("k1"))
    backend.send(outgoing("k2"))
    mail_world.backend().send(outgoing("k1"))  # a new process knows it was sent
    assert keys_sent(mail_world) == ["k1", "k2"]


def test_a_refused_recipient_is_permanent_and_the_other_attendee_still_gets_the_invitation(mail_world: MailWorld):
    mail_world.smtp.handler.refuse[SAM.email] = "550 5.1.1 <sam@example.com>: Recipient address rejected: User unknown"
    backend = mail_world.backend()
    with pytest.raises(BackendError) as refused:
        backend.publish(meeting())
    assert refused.value.permanent and "sam@example.com" in str(refused.value) and "550" in str(refused.value)
    assert [m.rcpt_tos for m in mail_world.smtp.messages] == [(ALEX.email,)]
    del mail_world.smtp.handler.refuse[SAM.email]  # the admin fixed the address at the server
    mail_world.backend().publish(meeting())
    assert sorted(m.rcpt_tos for m in mail_world.smtp.messages) == [(ALEX.email,), (SAM.email,)]


def test_a_4xx_for_a_recipient_is_temporary_and_nothing_leaves(mail_world: MailWorld):
    mail_world.smtp.handler.refuse[ALEX.email] = "450 4.2.1 Mailbox busy, try later"
    with pytest.raises(BackendError) as busy:
        mail_world.backend().send(outgoing("k1"))
    assert not busy.value.permanent and not busy.value.setup and "450 4.2.1 Mailbox busy" in str(busy.value)
    assert mail_world.smtp.messages == []


@pytest.mark.parametrize("sent_copy", ["server", "bcc"])
def test_connection_lost_after_the_server_took_the_message_is_not_sent_again(mail_world: MailWorld, sent_copy: str):
    if sent_copy == "server":
        mail_world.server_files_sent_copies()
    else:
        mail_world.deliver_to_mailbox()
    mail_world.smtp.handler.drop_after_data = True
    backend = mail_world.backend(sent_copy=sent_copy)
    with pytest.raises(BackendError) as unsure:
        backend.send(outgoing("k1"))
    assert "looked for over IMAP" in str(unsure.value)
    mail_world.smtp.handler.drop_after_data = False
    mail_world.backend(sent_copy=sent_copy).send(outgoing("k1"))  # after a restart, too
    assert keys_sent(mail_world) == ["k1"]
    if sent_copy == "bcc":  # our own blind copy is filed away, never handed to the reply pipeline
        again = mail_world.backend(sent_copy=sent_copy)
        assert again.fetch_new() == []
        flags = [f for f, _ in mail_world.dovecot.messages(mail_world.box).values()]
        assert flags == [(b"$RmdaemonProcessed",)] or all(b"$RmdaemonProcessed" in f for f in flags)


def test_an_attempt_whose_copy_is_nowhere_is_sent(mail_world: MailWorld):
    """Crash after writing 'attempt' but before the bytes reached the server: send it, once."""
    mail_world.server_files_sent_copies()
    backend = mail_world.backend()
    backend.journal.record_send("k1", "attempt")
    mail_world.backend().send(outgoing("k1"))
    mail_world.backend().send(outgoing("k1"))
    assert keys_sent(mail_world) == ["k1"]


def test_sent_mail_is_one_transaction_per_message_with_the_organizer_as_envelope_sender(mail_world: MailWorld):
    mail_world.backend().publish(meeting())
    assert [(m.mail_from, m.rcpt_tos, m.login) for m in mail_world.smtp.messages] == [
        (ORGANIZER, (ALEX.email,), ORGANIZER), (ORGANIZER, (SAM.email,), ORGANIZER)]


# -- reading -----------------------------------------------------------------------------------


def test_each_message_is_fetched_once_across_restarts_and_a_crash_before_marking_loses_nothing(mail_world: MailWorld):
    world = mail_world
    for n in (1, 2):
        world.dovecot.append(world.box, reply(n))
    first = world.backend().fetch_new()
    assert [json_id(m.raw) for m in first] == ["<reply-1@client.example>", "<reply-2@client.example>"]
    # crash: nothing was marked; a new process gets both again
    second = world.backend()
    again = second.fetch_new()
    assert [m.raw for m in again] == [m.raw for m in first]
    second.mark_processed(again[0].ref)
    world.dovecot.append(world.box, reply(3))
    third = world.backend()
    assert [json_id(m.raw) for m in third.fetch_new()] == ["<reply-2@client.example>", "<reply-3@client.example>"]
    journal = [json.loads(line) for line in world.state.read_text().splitlines()]
    assert [(f["uidvalidity"] > 0, f["last_uid"]) for f in journal if f["kind"] == "watermark"][-1] == (True, 1)


def json_id(raw: bytes) -> str:
    return message_from_bytes(raw, policy=policy.default)["Message-ID"]


def test_processed_mail_is_moved_never_deleted(mail_world: MailWorld):
    world = mail_world
    world.dovecot.append(world.box, reply(1))
    backend = world.backend(processed_folder="Processed")
    (message,) = backend.fetch_new()
    backend.mark_processed(message.ref)
    backend.mark_processed(message.ref)
    assert world.dovecot.messages(world.box) == {}
    (moved,) = world.dovecot.messages(world.box, "Processed").values()
    assert b"$RmdaemonProcessed" in moved[0] and moved[1] == message.raw


def test_imap_dropped_mid_fetch_loses_nothing(mail_world: MailWorld):
    world = mail_world
    world.dovecot.append(world.box, reply(1))
    world.dovecot.append(world.box, reply(2, size=2_000_000))
    proxy = CuttingProxy(world.dovecot.port)
    try:
        backend = world.backend(imap_port=proxy.port, imap_tls="none")
        proxy.cut_after(1_000_000)
        with pytest.raises(BackendError) as dropped:
            backend.fetch_new()
        assert not dropped.value.permanent and proxy.cuts == 1
        fetched = backend.fetch_new()  # the next inbox run reconnects
        assert [json_id(m.raw) for m in fetched] == ["<reply-1@client.example>", "<reply-2@client.example>"]
        assert len(fetched[1].raw) > 2_000_000
        for m in fetched:
            backend.mark_processed(m.ref)
        assert world.backend(imap_port=proxy.port, imap_tls="none").fetch_new() == []
    finally:
        proxy.close()


def test_a_changed_uidvalidity_falls_back_to_message_ids(mail_world: MailWorld):
    """A migrated mailbox: same messages, new UIDVALIDITY, and our keywords lost on the way."""
    world = mail_world
    for n in (1, 2):
        world.dovecot.append(world.box, reply(n))
    backend = world.backend()
    for m in backend.fetch_new():
        backend.mark_processed(m.ref)
    backend.close()
    with world.dovecot.client(world.box) as client:
        client.select_folder("INBOX")
        client.remove_flags(client.search(["ALL"]), ["$RmdaemonProcessed"])
    world.dovecot.set_uidvalidity(world.box, "INBOX", 4242)
    world.dovecot.append(world.box, reply(3))
    fresh = world.backend()
    assert [json_id(m.raw) for m in fresh.fetch_new()] == ["<reply-3@client.example>"]
    old = [flags for flags, raw in world.dovecot.messages(world.box).values() if b"reply-3" not in raw]
    assert len(old) == 2 and all(b"$RmdaemonProcessed" in f for f in old)


def test_a_30_mb_message_comes_whole_and_alone_when_over_the_batch_budget(mail_world: MailWorld, monkeypatch):
    world = mail_world
    world.dovecot.append(world.box, reply(1))
    world.dovecot.append(world.box, reply(2, size=30 * 1024 * 1024))
    world.dovecot.append(world.box, reply(3))
    monkeypatch.setattr(imap_read, "BATCH_BYTES", 16 << 20)
    backend = world.backend(max_bytes=40 << 20)
    first = backend.fetch_new()
    assert [json_id(m.raw) for m in first] == ["<reply-1@client.example>"]
    backend.mark_processed(first[0].ref)
    (big,) = backend.fetch_new()
    assert json_id(big.raw) == "<reply-2@client.example>" and len(big.raw) > 30 * 1024 * 1024
    backend.mark_processed(big.ref)
    (last,) = backend.fetch_new()
    backend.mark_processed(last.ref)
    assert json_id(last.raw) == "<reply-3@client.example>" and world.backend().fetch_new() == []


def test_a_message_over_the_size_limit_is_never_downloaded_only_its_head_goes_on(mail_world: MailWorld):
    """RFC822.SIZE is read before any body: over ``max_message_bytes``, only the first HEAD_BYTES
    are fetched (the proxy cuts the connection if more than that comes), the inbox gets it refused
    with the reason, and once marked it is never fetched again; the messages around it come whole."""
    world = mail_world
    for n, size in ((1, 0), (2, 3_000_000), (3, 0)):
        world.dovecot.append(world.box, reply(n, size=size))
    proxy = CuttingProxy(world.dovecot.port)
    try:
        backend = world.backend(imap_port=proxy.port, imap_tls="none", max_bytes=1_000_000)
        proxy.cut_after(500_000)
        first, big, last = backend.fetch_new()
        assert "over [security] max_message_bytes (1,000,000); not downloaded" in big.refused and proxy.cuts == 0
        assert json_id(big.raw) == "<reply-2@client.example>" and len(big.raw) == imap_read.HEAD_BYTES
        assert not first.refused and not last.refused and json_id(last.raw) == "<reply-3@client.example>"
        for m in (first, big, last):
            backend.mark_processed(m.ref)
        assert world.backend(imap_port=proxy.port, imap_tls="none", max_bytes=1_000_000).fetch_new() == []
    finally:
        proxy.close()


# -- check --online ----------------------------------------------------------------------------


def test_check_online_names_each_failure_and_the_key_that_fixes_it(mail_world: MailWorld, monkeypatch):
    world = mail_world
    wrong_login = world.backend(smtp_password="nope", imap_password="nope").check_online()
    assert len(wrong_login) == 2
    assert "SMTP 127.0.0.1" in wrong_login[0] and "login refused for 'mentoring@example.com'" in wrong_login[0]
    assert "IMAP 127.0.0.1" in wrong_login[1] and "imap_username" in wrong_login[1] and "$RM_TEST_IMAP_PASSWORD" in wrong_login[1]
    closed = world.backend(smtp_port=free_port()).check_online()
    assert len(closed) == 1 and "connection refused" in closed[0] and "smtp_port" in closed[0]
    tls_mismatch = world.backend(smtp_tls="implicit").check_online()
    assert len(tls_mismatch) == 1 and "TLS handshake failed" in tls_mismatch[0] and 'smtp_tls = "starttls"' in tls_mismatch[0]
    untrusted = world.backend(ca_file=None).check_online()
    assert len(untrusted) == 2 and all("ca_file" in p and "not trusted" in p for p in untrusted)
    folders = world.backend(folder="Replies", processed_folder="Done").check_online()
    assert ["'Replies'" in folders[0] and "folder" in folders[0], "'Done'" in folders[1] and "processed_folder" in folders[1]] == [True, True]


def test_dns_failure_reads_as_dns():
    endpoint = Endpoint("IMAP", "imap.example.invalid", 993, "implicit", "u", None)
    text = explain(socket.gaierror(-2, "Name or service not known"), endpoint)
    assert "cannot resolve host name 'imap.example.invalid' (DNS)" in text and "imap_host" in text


def test_other_tls_modes_work(mail_world: MailWorld, mail_certs):  # noqa: F811
    from tests.servers.fixtures import server_context

    implicit = SmtpServer(server_context(mail_certs), {ORGANIZER: SMTP_PASSWORD}, tls="implicit")
    implicit.start()
    try:
        backend = mail_world.backend(smtp_port=implicit.port, smtp_tls="implicit", imap_port=mail_world.dovecot.port,
                                     imap_tls="starttls")
        assert backend.check_online() == []
        backend.send(outgoing("k1"))
        assert len(implicit.messages) == 1
    finally:
        implicit.stop()


def test_the_password_never_reaches_the_log_or_an_error(mail_world: MailWorld, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("imapclient", "imapclient.imaplib", "imapclient.imapclient"):  # earlier tests may have quietened them
        caplog.set_level(logging.DEBUG, logger=name)
    secret = "Very-Secret-Passw0rd"
    backend = mail_world.backend(smtp_password=secret, imap_password=secret)
    problems = backend.check_online()
    with pytest.raises(BackendError) as failed:
        backend.fetch_new()
    assert problems and all(secret not in p for p in problems) and secret not in str(failed.value)
    assert secret not in caplog.text and "REDACTED" in caplog.text  # IMAPClient's own debug log hides LOGIN
    assert secret not in repr(backend.transport.endpoint)

