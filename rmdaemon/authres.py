"""Authentication-Results (RFC 8601): did the receiving server find the sender's domain forged?

A From address is only a claim. The company's mail server checks SPF and DMARC on the way in
and writes its verdict into an ``Authentication-Results`` header, naming itself by its
authserv-id. Anyone can *also* write such a header into the message they send, so only headers
carrying our own server's authserv-id count (RFC 8601 section 5), and they count only when the
admin says the server adds them (``[security] trust_authentication_results``).

Pure: raw header bytes in, verdicts out; never raises on hostile input.
"""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesHeaderParser

CHECKED = ("dmarc", "spf")  # a fail of either means the From domain did not send this message
_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=\s*([A-Za-z0-9_-]+)")


def _headers(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    try:
        msg = BytesHeaderParser(policy=policy.compat32).parsebytes(head + b"\n\n")
        return [str(v) for v in msg.get_all("Authentication-Results", [])]
    except Exception:  # noqa: BLE001 - hostile bytes: no verdict is better than a crash
        return []


def _uncommented(value: str) -> str:
    """Comments nest in RFC 5322; strip innermost first until none are left."""
    for _ in range(10):
        stripped = _COMMENT.sub(" ", value)
        if stripped == value:
            break
        value = stripped
    return value


def parse(value: str) -> tuple[str, dict[str, str]]:
    """``mx.example.com 1; spf=fail smtp.mailfrom=x; dmarc=fail (p=reject)`` →
    (``mx.example.com``, {"spf": "fail", "dmarc": "fail"}); the first result per method wins."""
    parts = _uncommented(" ".join(value.split())).split(";")
    serv = (parts[0].split() or [""])[0].casefold()
    results: dict[str, str] = {}
    for part in parts[1:]:
        found = _RESULT.match(part)
        if found:
            results.setdefault(found[1].casefold(), found[2].casefold())
    return serv, results


def failures(raw: bytes, authserv_id: str) -> list[str]:
    """``["dmarc=fail", ...]`` from the headers our own server (``authserv_id``) added."""
    wanted = authserv_id.strip().casefold()
    found: list[str] = []
    for value in _headers(raw):
        serv, results = parse(value)
        if serv != wanted:
            continue  # written by someone else, maybe by the sender: never trusted
        found += [f"{method}={results[method]}" for method in CHECKED
                  if results.get(method) == "fail" and f"{method}=fail" not in found]
    return found
