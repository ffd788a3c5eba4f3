"""One SMTP submission connection, reused across a batch, and what each server answer means.

smtplib's high-level ``sendmail`` delivers to the recipients that were accepted and reports the
refused ones afterwards; for us a partial delivery would make a retry send the same message twice
to the people who got it. So the transaction is driven step by step: MAIL, every RCPT, and only if
every recipient was accepted, DATA. A refused recipient aborts the message (RSET) — 5xx is
permanent, 4xx is worth retrying — and nothing has left.

The one moment of doubt is DATA: once the bytes are out, a dropped connection or a timeout before
the server's final reply leaves "sent or not?" open. ``before_data`` lets the caller write that
down first, and such a failure raises ``Unsure`` instead of a plain BackendError.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
from collections.abc import Callable

from rmdaemon.backends.smtp_net import Endpoint, explain, for_the_admin, tls_context
from rmdaemon.errors import BackendError

# Refusals about the login, not the message (RFC 4954: 530 authentication required, 534 mechanism
# too weak, 535 credentials invalid, 538 encryption required; Microsoft 365's 5.7.57 "client not
# authenticated" and 5.7.60 "no permission to send as this sender"; Gmail's 5.4.5 daily sending
# limit): the same for every message, so they wait for the admin's fix (or the next day).
SETUP_CODES = (530, 534, 535, 538)
SETUP_STATUS = ("5.7.57", "5.7.60", "5.4.5")


class Unreachable(BackendError):
    """Connecting, TLS or login failed: nothing can be sent until that is fixed or back."""


class Unsure(BackendError):
    """The message's bytes went out but no final answer came back: it may have been accepted."""


class SmtpTransport:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._conn: smtplib.SMTP | None = None

    def transmit(self, sender: str, recipients: list[str], raw: bytes, before_data: Callable[[], None]) -> None:
        """Deliver ``raw`` to all ``recipients`` or to none; see the module doc for the errors."""
        conn = self._ready()
        try:
            self._envelope(conn, sender, recipients, raw)
        except smtplib.SMTPServerDisconnected:
            self._drop()  # an idle connection the server closed: nothing was sent yet, so try once more
            conn = self._ready()
            try:
                self._envelope(conn, sender, recipients, raw)
            except smtplib.SMTPServerDisconnected as e:
                self._drop()
                raise Unreachable(explain(e, self.endpoint), setup=for_the_admin(e)) from e
        before_data()
        try:
            code, reply = conn.data(raw)
        except smtplib.SMTPDataError as e:  # DATA itself refused: the bytes never left
            self._reset(conn)
            raise self._refusal("message", e.smtp_code, e.smtp_error) from e
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            self._drop()
            raise Unsure(f"{self.endpoint.where}: connection lost while the message was being accepted ({e}); "
                         "it will be looked for over IMAP before it is sent again") from e
        if code != 250:
            self._reset(conn)
            raise self._refusal("message", code, reply)

    def _envelope(self, conn: smtplib.SMTP, sender: str, recipients: list[str], raw: bytes) -> None:
        options = ["BODY=8BITMIME"] if not raw.isascii() and conn.has_extn("8bitmime") else []
        code, reply = conn.mail(sender, options)
        if code != 250:
            self._reset(conn)
            raise BackendError(f"{self.endpoint.where}: sender {sender} refused: {_text(code, reply)}; the login "
                               "must be allowed to send as [program] organizer", setup=True)
        for address in recipients:
            code, reply = conn.rcpt(address)
            if code not in (250, 251):
                self._reset(conn)
                raise self._refusal(f"recipient {address}", code, reply)

    def _refusal(self, what: str, code: int, reply: bytes | str) -> BackendError:
        """5xx is permanent, 4xx temporary, and a refusal of the login (SETUP_*) waits for the admin."""
        text = _text(code, reply)
        status = text.split()[1] if len(text.split()) > 1 else ""  # the enhanced status code, when given
        setup = code in SETUP_CODES or status in SETUP_STATUS
        return BackendError(f"{self.endpoint.where}: {what} refused: {text}", permanent=500 <= code < 600, setup=setup)

    def _ready(self) -> smtplib.SMTP:
        if self._conn is None:
            try:
                self._conn = self.connect()
            except (OSError, smtplib.SMTPException) as e:
                raise Unreachable(explain(e, self.endpoint), setup=for_the_admin(e)) from e
        return self._conn

    def connect(self) -> smtplib.SMTP:
        """A logged-in connection; raises the library's own exceptions (``explain`` reads them)."""
        ep = self.endpoint
        context = tls_context(ep.ca_file)
        helo = socket.gethostname()  # not getfqdn(): that is a DNS lookup, which may hang
        if ep.tls == "implicit":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(ep.host, ep.port, local_hostname=helo, timeout=ep.timeout, context=context)
        else:
            conn = smtplib.SMTP(ep.host, ep.port, local_hostname=helo, timeout=ep.timeout)
        try:
            conn.ehlo()
            if ep.tls == "starttls":
                conn.starttls(context=context)
                conn.ehlo()
            if ep.password:
                conn.login(ep.username, ep.password)
        except BaseException:
            conn.close()
            raise
        return conn

    def _reset(self, conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._conn.quit()
        self._drop()


def _text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}"
