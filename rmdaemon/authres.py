"""Authentication-Results (RFC 8601): did the receiving server find the sender's domain forged?

A From address is only a claim. The company's mail server checks SPF, DKIM and DMARC on the way in
and writes its verdict into an ``Authentication-Results`` header, naming itself by its
authserv-id. Anyone can *also* write such a header into the message they send, so only headers
carrying our own server's authserv-id count (RFC 8601 section 5), and they count only when the
admin says the server adds them (``[security] trust_authentication_results``).

Pure: raw header bytes (or their compat32 fields) in, verdicts out; never raises on hostile input.
"""

from __future__ import annotations

import re
from email import policy
from email.message import Message
from email.parser import BytesHeaderParser

CHECKED = ("dmarc", "spf", "dkim")  # a fail of one of these for the From domain: the domain did not send it
# The property naming the domain each method checked: a fail for another domain (a mailing list's
# broken signature, a bounce address) says nothing about the From. DKIM without d= says nothing at all.
_DOMAIN_PROPS = {"dmarc": ("header.from",), "spf": ("smtp.mailfrom", "smtp.helo"), "dkim": ("header.d", "header.i")}
_NEEDS_DOMAIN = {"dkim"}
_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=\s*([A-Za-z0-9_-]+)")
_PROP = re.compile(r"([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\s*=\s*(\S+)")


def _headers(source: bytes | Message) -> list[str]:
    try:
        if isinstance(source, bytes):
            head = source.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
            source = BytesHeaderParser(policy=policy.compat32).parsebytes(head + b"\n\n")
        return [str(v) for v in source.get_all("Authentication-Results", [])]
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
    serv, results = parse_full(value)
    return serv, {method: result for method, (result, _) in results.items()}


def parse_full(value: str) -> tuple[str, dict[str, tuple[str, dict[str, str]]]]:
    """Like ``parse``, with each result's properties (``header.from``, ``smtp.mailfrom``, ...)."""
    parts = _uncommented(" ".join(value.split())).split(";")
    serv = (parts[0].split() or [""])[0].casefold()
    results: dict[str, tuple[str, dict[str, str]]] = {}
    for part in parts[1:]:
        found = _RESULT.match(part)
        if found and found[1].casefold() not in results:
            props = {k.casefold(): v.strip('"').casefold() for k, v in _PROP.findall(part[found.end():])}
            results[found[1].casefold()] = (found[2].casefold(), props)
    return serv, results


def _domain(value: str) -> str:
    return value.rpartition("@")[2].strip(".").casefold()


def _same_domain(checked: str, from_domain: str) -> bool:
    """``mail.example.com`` is aligned with ``example.com`` and the other way round (relaxed DMARC)."""
    return checked == from_domain or checked.endswith("." + from_domain) or from_domain.endswith("." + checked)


def failures(message: bytes | Message, authserv_id: str, from_address: str | None = None) -> list[str]:
    """``["dmarc=fail", ...]`` from the headers our own server (``authserv_id``) added, in the raw
    message or in its compat32 header fields (the inbox's ``Inbound.headers``: parsed once).

    With ``from_address``, a result labelled with another domain does not count, except DMARC:
    our server checking DMARC for a different From than the one we read means the two of us read
    the message differently (two From headers, an encoded name): that is reported too.
    """
    wanted = authserv_id.strip().casefold()
    from_domain = _domain(from_address or "")
    found: list[str] = []
    for value in _headers(message):
        serv, results = parse_full(value)
        if serv != wanted:
            continue  # written by someone else, maybe by the sender: never trusted
        for method in CHECKED:
            result, props = results.get(method, ("", {}))
            named = [_domain(props[p]) for p in _DOMAIN_PROPS[method] if props.get(p)]
            if from_domain and method == "dmarc" and named and not _same_domain(named[0], from_domain):
                note = f"dmarc checked {named[0]}, not {from_domain}"
                if note not in found:
                    found.append(note)
                continue
            if result != "fail" or f"{method}={result}" in found:
                continue
            if method in _NEEDS_DOMAIN and not named:
                continue
            if from_domain and named and not _same_domain(named[0], from_domain):
                continue
            found.append(f"{method}=fail")
    return found
