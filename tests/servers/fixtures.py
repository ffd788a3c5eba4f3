"""pytest fixtures for the mail test servers: aiosmtpd (SMTP) and Dovecot (IMAP) on 127.0.0.1.

Load with ``pytest_plugins = [..., "tests.servers.fixtures"]`` in ``tests/conftest.py`` (or import
the fixtures into a test module). One throwaway CA (trustme) signs both servers' certificate, and
the backend under test trusts it through ``ca_file``, exactly as a company with a private CA would.

Dovecot starts once per session (~0.03 s to greet) and every test gets its own user, so its own
empty mailbox; tests that need a server of their own (restarts, UIDVALIDITY) use ``dovecot_private``.
Without Dovecot installed the IMAP tests skip, saying how to install it (under
``RMDAEMON_STRICT_TESTS`` they fail); the rest still runs.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
import trustme

from rmdaemon.backends.base import DEFAULT_MAX_BYTES
from rmdaemon.backends.smtp import SmtpBackend
from rmdaemon.backends.smtp_net import Endpoint
from rmdaemon.config import SmtpBackendSettings
from prerequisites import DOVECOT, missing
from tests.servers.dovecot import Dovecot, Mailbox, dovecot_binary
from tests.servers.smtp import Received, SmtpServer

ORGANIZER = "mentoring@example.com"
SMTP_PASSWORD = "smtp-Passw0rd"
_users = itertools.count(1)


@dataclass(frozen=True)
class Certs:
    ca_file: Path  # what the client trusts (``[backend.smtp] ca_file``)
    cert: Path
    key: Path
    ca: trustme.CA


@pytest.fixture(scope="session")
def mail_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    root = tmp_path_factory.mktemp("mail-certs")
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    leaf.private_key_pem.write_to_path(str(root / "key.pem"))
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(str(root / "cert.pem"), append=True)
    (root / "key.pem").chmod(0o600)
    return Certs(root / "ca.pem", root / "cert.pem", root / "key.pem", ca)


def _require_dovecot() -> None:
    if dovecot_binary() is None:
        missing(DOVECOT)


@pytest.fixture(scope="session")
def dovecot(mail_certs: Certs) -> Iterator[Dovecot]:
    _require_dovecot()
    server = Dovecot(mail_certs.cert, mail_certs.key)
    server.start()
    yield server
    server.remove()


@pytest.fixture
def dovecot_private(mail_certs: Certs) -> Iterator[Dovecot]:
    """A Dovecot of this test's own, free to be stopped, restarted or rebuilt."""
    _require_dovecot()
    server = Dovecot(mail_certs.cert, mail_certs.key)
    server.start()
    yield server
    server.remove()


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    """A fresh, empty programme mailbox (its own Dovecot user) for this test."""
    return dovecot.add_user(f"programme{next(_users)}@example.com")


@pytest.fixture
def smtp_server(mail_certs: Certs) -> Iterator[SmtpServer]:
    """Submission with STARTTLS and AUTH; the organizer address logs in with ``SMTP_PASSWORD``."""
    server = SmtpServer(server_context(mail_certs), {ORGANIZER: SMTP_PASSWORD})
    server.start()
    yield server
    server.stop()


def server_context(certs: Certs) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(certs.cert), str(certs.key))
    return context


class MailWorld:
    """The SMTP server, the Dovecot mailbox and the CA together, and smtp backends wired to them.

    ``server_files_sent_copies()`` makes the SMTP server behave like Gmail or Microsoft 365: every
    message it accepts from the programme is also filed in the mailbox's Sent folder.
    ``deliver_to_mailbox()`` makes it deliver mail addressed to the programme into the IMAP inbox,
    as an MTA would (this is where ``sent_copy = "bcc"`` copies land).
    """

    def __init__(self, smtp: SmtpServer, dovecot: Dovecot, box: Mailbox, certs: Certs, state: Path) -> None:
        self.smtp, self.dovecot, self.box, self.certs, self.state = smtp, dovecot, box, certs, state
        self.clock_now = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)

    def settings(self, **overrides: object) -> SmtpBackendSettings:
        values: dict[str, object] = dict(
            smtp_host="127.0.0.1", smtp_port=self.smtp.port, smtp_tls=self.smtp.tls,
            imap_host="127.0.0.1", imap_port=self.dovecot.tls_port, imap_tls="implicit",
            username=ORGANIZER, password_env="RM_TEST_SMTP_PASSWORD", password_file=None,
            imap_username=self.box.user, imap_password_env="RM_TEST_IMAP_PASSWORD", imap_password_file=None,
            folder="INBOX", processed_keyword="$RmdaemonProcessed", processed_folder="", sent_copy="server",
            sent_folder="", ca_file=self.certs.ca_file, timeout_seconds=10, state_path=self.state)
        values.update(overrides)
        return SmtpBackendSettings(**values)  # type: ignore[arg-type]

    def backend(self, smtp_password: str = SMTP_PASSWORD, imap_password: str | None = None,
                max_bytes: int = DEFAULT_MAX_BYTES, **overrides: object) -> SmtpBackend:
        """A backend as ``factory.open_backend`` builds it, with the secrets given here instead of the environment."""
        cfg = self.settings(**overrides)
        smtp = Endpoint("SMTP", cfg.smtp_host, cfg.smtp_port, cfg.smtp_tls, cfg.username, smtp_password,
                        cfg.ca_file, cfg.timeout_seconds, "username", "$RM_TEST_SMTP_PASSWORD")
        imap = Endpoint("IMAP", cfg.imap_host, cfg.imap_port, cfg.imap_tls, cfg.imap_username,
                        imap_password or self.box.password, cfg.ca_file, cfg.timeout_seconds,
                        "imap_username", "$RM_TEST_IMAP_PASSWORD")
        assert cfg.state_path is not None
        return SmtpBackend(cfg, sender=ORGANIZER, smtp=smtp, imap=imap, journal_path=cfg.state_path,
                           clock=lambda: self.clock_now, max_bytes=max_bytes)

    def server_files_sent_copies(self) -> None:
        def file_copy(received: Received) -> None:
            if received.mail_from.casefold() == ORGANIZER:
                self.dovecot.append(self.box, received.data, folder="Sent", flags=("\\Seen",))

        self.smtp.handler.on_message = file_copy

    def deliver_to_mailbox(self) -> None:
        def deliver(received: Received) -> None:
            if ORGANIZER in (r.casefold() for r in received.rcpt_tos):
                self.dovecot.append(self.box, received.data)

        self.smtp.handler.on_message = deliver

    def received(self, address: str) -> list[bytes]:
        return [m.data for m in self.smtp.received_by(address)]


@pytest.fixture
def mail_world(smtp_server: SmtpServer, dovecot: Dovecot, mailbox: Mailbox, mail_certs: Certs,
               tmp_path: Path) -> MailWorld:
    return MailWorld(smtp_server, dovecot, mailbox, mail_certs, tmp_path / "smtp-state.jsonl")
