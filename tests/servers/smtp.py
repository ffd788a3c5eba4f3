"""A real SMTP submission server for the tests: aiosmtpd on 127.0.0.1, STARTTLS (or implicit TLS)
and AUTH with a certificate from a throwaway CA (trustme).

It keeps every accepted message with its envelope, and can misbehave the way real servers do:
refuse one recipient (``refuse``) or every message after DATA (``refuse_data``), be down (``stop``), or take a message and drop the connection
before answering (``drop_after_data``). ``on_message`` lets a test play what the server does next,
e.g. file a copy in the Sent folder like Gmail or deliver a blind copy to the IMAP inbox.
Measured: starts in ~2 ms; ``port=0`` does not work, so a free port is picked first.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    login: str

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class Handler:
    users: dict[str, str]
    messages: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # address (lower case) → SMTP reply line
    drop_after_data: bool = False
    refuse_data: str = ""  # an SMTP reply line for every message's DATA (e.g. a login not allowed to send as its sender)
    on_message: Callable[[Received], None] | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201
        reply = self.refuse.get(address.casefold())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
        if self.refuse_data:
            return self.refuse_data
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else ""
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.original_content), login)
        self.messages.append(received)
        if self.on_message is not None:
            self.on_message(received)
        if self.drop_after_data:
            server.transport.close()  # taken, but the client never hears "250"
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN201
        ok = isinstance(auth_data, LoginPassword) and self.users.get(auth_data.login.decode()) == auth_data.password.decode()
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


class _Controller(Controller):
    def factory(self):  # noqa: ANN201
        with warnings.catch_warnings():  # "AUTH without requiring TLS": with implicit TLS it is all TLS
            warnings.simplefilter("ignore", UserWarning)
            return super().factory()


class SmtpServer:
    """``tls`` is ``"starttls"`` (submission, port 587 style) or ``"implicit"`` (465 style)."""

    def __init__(self, context: ssl.SSLContext, users: dict[str, str], tls: str = "starttls") -> None:
        self.context, self.tls = context, tls
        self.handler = Handler(users)
        self.port = free_port()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def received_by(self, address: str) -> list[Received]:
        return [m for m in self.messages if address.casefold() in (r.casefold() for r in m.rcpt_tos)]

    def start(self) -> None:
        if self._controller is not None:
            return
        if self.tls == "implicit":
            options = {"ssl_context": self.context, "auth_require_tls": False}  # it sees only STARTTLS as TLS
        else:
            options = {"tls_context": self.context, "require_starttls": True, "auth_require_tls": True}
        self._controller = _Controller(self.handler, hostname=HOST, port=self.port, server_hostname="localhost",
                                       authenticator=self.handler.authenticate, auth_required=True, **options)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
