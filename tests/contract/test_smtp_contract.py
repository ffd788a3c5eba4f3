"""The smtp backend passes the backend contract against real servers: aiosmtpd for SMTP (STARTTLS,
AUTH) and Dovecot for IMAP (implicit TLS), both with certificates from a throwaway CA."""

from __future__ import annotations

import pytest

from contract import BackendContract
from tests.servers.fixtures import MailWorld, dovecot, mail_certs, mail_world, mailbox, smtp_server  # noqa: F401


class SmtpHarness:
    def __init__(self, world: MailWorld) -> None:
        self.world = world
        world.server_files_sent_copies()
        self.backend = self.reopen()

    def reopen(self):  # noqa: ANN201
        return self.world.backend()

    def deliver(self, raw: bytes) -> None:
        self.world.dovecot.append(self.world.box, raw)

    def received(self, address: str) -> list[bytes]:
        return self.world.received(address)


class TestSmtpBackend(BackendContract):
    @pytest.fixture
    def harness(self, mail_world: MailWorld):  # noqa: ANN201
        harness = SmtpHarness(mail_world)
        yield harness
        harness.backend.close()
