"""What the SMTP and IMAP halves of the ``smtp`` backend share: where a server is, how its TLS is
set up, and how a failure to reach it reads to the admin who must fix it.

``explain`` turns the many exception types of ssl, socket, smtplib and IMAPClient into one sentence
naming the cause (DNS, refused, timeout, TLS, login) and the config key that fixes it, so
``check --online``, the run summary and the log all say the same thing.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from imapclient.exceptions import IMAPClientError, LoginError

SECTION = "[backend.smtp]"


@dataclass(frozen=True)
class Endpoint:
    """One server login. ``password`` is the secret itself: never logged, never in a repr."""

    service: str  # "SMTP" | "IMAP"
    host: str
    port: int
    tls: str  # implicit | starttls | none
    username: str
    password: str | None = field(repr=False)
    ca_file: Path | None = None
    timeout: float = 30.0
    # for messages: the config key of the login and where the password came from
    username_key: str = "username"
    password_source: str = "$RMDAEMON_MAIL_PASSWORD"

    @property
    def where(self) -> str:
        return f"{self.service} {self.host}:{self.port}"

    @property
    def prefix(self) -> str:
        """Config keys are smtp_host / imap_host ..., so messages can name the exact key."""
        return self.service.lower()


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verified TLS; a private CA replaces the system's trust store rather than adding to it."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def for_the_admin(exc: BaseException) -> bool:
    """A failure to reach or log in to the server that only the admin can fix (TLS, the login, AUTH
    not offered), unlike an outage that passes by itself; either way nothing is refused for good."""
    return isinstance(exc, (ssl.SSLError, smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError, LoginError))


def explain(exc: BaseException, endpoint: Endpoint) -> str:
    """One sentence an admin can act on; never contains the password."""
    where, key = endpoint.where, endpoint.prefix
    if isinstance(exc, socket.gaierror):
        return f"{where}: cannot resolve host name {endpoint.host!r} (DNS); check {SECTION} {key}_host"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"{where}: TLS certificate not trusted ({exc.verify_message}); if the server uses a private CA, "
                f"set {SECTION} ca_file to its PEM file")
    if isinstance(exc, ssl.SSLError):
        other = {"implicit": "starttls", "starttls": "implicit"}.get(endpoint.tls, "implicit")
        return (f"{where}: TLS handshake failed ({exc.reason or exc}); is the port right for {key}_tls = "
                f"\"{endpoint.tls}\"? (try {key}_tls = \"{other}\" or the other port)")
    if isinstance(exc, (smtplib.SMTPAuthenticationError, LoginError)):
        detail = _smtp_text(exc) if isinstance(exc, smtplib.SMTPAuthenticationError) else str(exc)
        return (f"{where}: login refused for {endpoint.username!r} ({detail}); check {SECTION} "
                f"{endpoint.username_key} and the password in {endpoint.password_source} "
                "(Google and Fastmail need an app password)")
    if isinstance(exc, smtplib.SMTPNotSupportedError) and "STARTTLS" in str(exc):
        return f"{where}: the server offers no STARTTLS on this port; use smtp_tls = \"implicit\" (port 465) or the submission port 587"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{where}: {exc}; set {SECTION} smtp_tls = \"starttls\" (AUTH is usually offered only after STARTTLS)"
    if isinstance(exc, ConnectionRefusedError):
        return f"{where}: connection refused; check {SECTION} {key}_host and {key}_port, and that the server is up"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"{where}: no answer within {endpoint.timeout:g} s; check {key}_host, {key}_port and any firewall"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{where}: server said {_smtp_text(exc)}"
    if isinstance(exc, (smtplib.SMTPException, IMAPClientError, OSError)):
        return f"{where}: {type(exc).__name__}: {exc or 'connection lost'}"
    return f"{where}: unexpected {type(exc).__name__}: {exc}"


def _smtp_text(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    return f"{exc.smtp_code} {' '.join(text.split())}"
