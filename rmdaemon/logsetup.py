"""Logging to stderr (systemd's journal reads it) without credentials in it, also with ``--verbose``.

Measured: exchangelib logs every request's headers at DEBUG — the Basic ``Authorization``
header is the service account's password in base64 — and its XML logger dumps whole requests
and responses, which carry people's replies. So with ``--verbose`` our own modules say more, but
the wire-level libraries stay at INFO, and every record passes a filter that blanks
``Authorization`` values wherever they appear (message, arguments or traceback).
"""

from __future__ import annotations

import logging
import re
import sys

# Libraries whose DEBUG output is the wire itself: headers, tokens, message bodies.
WIRE_LOGGERS = ("exchangelib", "requests_oauthlib", "oauthlib", "urllib3", "requests_ntlm", "msal", "imapclient")
_AUTH_VALUE = re.compile(r"(?i)(\b(?:proxy-)?authorization['\"]?\s*[:=]\s*['\"]?)([^'\"\r\n,}]+)")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def redact(text: str) -> str:
    """Blank the value of every Authorization header written in ``text``."""
    return _AUTH_VALUE.sub(r"\1[redacted]", text)


class RedactCredentials(logging.Filter):
    """Rewrites a record whose text (or traceback) holds an Authorization value."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def configure(verbose: bool) -> None:
    """Once, from the command line: INFO (or DEBUG for our own code) to stderr, redacted."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr, format=FORMAT)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactCredentials())
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
