"""Who sent a message: the addr-spec of its one ``From`` header, read from the raw bytes by RFC
5322 rules, or the reason it cannot be trusted to name one person.

Everything that acts on a pair (a log, a command, a consent, a survey answer, a calendar answer,
the champion's commands) is authorised by this address, so it is read strictly:

- the header is parsed *before* any RFC 2047 decoding: an encoded word is display text and never
  becomes an address (``=?utf-8?q?richard=40example.com?= <mallory@evil.com>`` is mallory);
- a display name or comment that shows an address other than the addr-spec is refused (a mail
  client shows the name, so a person would believe the wrong sender);
- several ``From`` headers, several addresses or a group are refused (RFC 5322 allows one
  mailbox without a ``Sender``; clients disagree on which one they show).

Pure and total: bytes in, a ``From`` record out, never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rmdaemon.replies.mime import decode_header_value

_MAX_HEAD = 256 * 1024
_SHOWN_ADDRESS = re.compile(r"[^\s<>\"'(),;:@\[\]]+@[^\s<>\"'(),;:@\[\]]+\.[^\s<>\"'(),;:@\[\]]+")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+")
_DOT_ATOM = re.compile(rf"{_ATOM.pattern}(?:\.{_ATOM.pattern})*")


@dataclass(frozen=True)
class From:
    """``address`` lower-cased, or None; ``problem`` says why the message must not act (or None)."""

    address: str | None
    problem: str | None = None


def head_fields(raw: bytes) -> list[tuple[str, str]]:
    """(name, unfolded raw value) of every header field, in order, without decoding anything."""
    head = raw[:_MAX_HEAD].replace(b"\r\n", b"\n")
    head = head.split(b"\n\n", 1)[0]
    fields: list[tuple[str, str]] = []
    for line in head.split(b"\n"):
        text = line.decode("utf-8", "replace")
        if text[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + " " + text.strip())
            continue
        name, colon, value = text.partition(":")
        if colon and name and not any(map(str.isspace, name)):
            fields.append((name.strip(), value.strip()))
    return fields


def envelope_from(raw: bytes) -> From:
    """The sender of ``raw`` (see the module's rules)."""
    values = [v for n, v in head_fields(raw) if n.lower() == "from"]
    if not values:
        return From(None, "no From header")
    if len(values) > 1:
        return From(None, f"{len(values)} From headers; a message has one sender")
    return parse_from(values[0])


def parse_from(value: str) -> From:
    """One raw (undecoded) ``From`` value → its single mailbox's addr-spec."""
    try:
        tokens = _tokens(value)
    except ValueError as e:
        return From(None, f"From header cannot be read ({e})")
    if any(t in (":", ";") for t in tokens):
        return From(None, "From header is a group of addresses")
    mailboxes = _split(tokens, ",")
    mailboxes = [m for m in mailboxes if any(not _blank(t) for t in m)]
    if len(mailboxes) != 1:
        return From(None, f"From header has {len(mailboxes)} addresses; a message has one sender" if mailboxes
                    else "From header has no address")
    return _mailbox(mailboxes[0])


def _mailbox(tokens: list[str]) -> From:
    shown: list[str] = []  # display name and comments, decoded: what a mail client shows
    if "<" in tokens:
        opened, closed = tokens.index("<"), tokens.index(">") if ">" in tokens else -1
        if closed < opened or tokens.count("<") != 1 or tokens.count(">") != 1:
            return From(None, "From header has unbalanced angle brackets")
        name, spec, after = tokens[:opened], tokens[opened + 1:closed], tokens[closed + 1:]
        if any(not _blank(t) and not t.startswith("(") for t in after):
            return From(None, "From header has text after the address")
        if "@" in name:
            return From(None, "From header's display name holds an unquoted address")
        shown.append(_shown([t for t in name if not t.startswith("(")]))
    else:
        spec = tokens
    shown += [_shown([t[1:-1]]) for t in tokens if t.startswith("(")]
    address = _addr_spec([t for t in spec if not _blank(t)])
    if address is None:
        return From(None, "From header has no valid address")
    for text in shown:
        for other in _SHOWN_ADDRESS.findall(text):
            if other.strip(".").casefold() != address:
                return From(address, f"From header shows {other} in its name but the address is {address}")
    return From(address)


def _addr_spec(tokens: list[str]) -> str | None:
    """``local@domain`` from atoms, dots, quoted strings and one ``@``; None if anything else."""
    if tokens.count("@") != 1:
        return None
    at = tokens.index("@")
    local, domain = "".join(tokens[:at]), "".join(tokens[at + 1:])
    if not (local.startswith('"') and local.endswith('"') and len(local) > 1) and not _DOT_ATOM.fullmatch(local):
        return None
    if not _DOT_ATOM.fullmatch(domain) or "." not in domain:
        return None
    if "=?" in local + domain:  # an RFC 2047 word is never an address, not even a literal one
        return None
    return f"{local}@{domain}".casefold()


def _tokens(value: str) -> list[str]:
    """Quoted strings, comments (nested), specials and atoms; whitespace kept as " "."""
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c.isspace():
            out.append(" ")
            while i < n and value[i].isspace():
                i += 1
        elif c == '"':
            j = i + 1
            while j < n and value[j] != '"':
                j += 2 if value[j] == "\\" else 1
            if j >= n:
                raise ValueError("unclosed quote")
            out.append(value[i:j + 1])
            i = j + 1
        elif c == "(":
            depth, j = 0, i
            while j < n:
                if value[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(value[j], 0)
                j += 1
                if depth == 0:
                    break
            if depth:
                raise ValueError("unclosed comment")
            out.append(value[i:j])
            i = j
        elif c in '<>@,:;.[]\\':
            out.append(c)
            i += 1
        else:
            found = _ATOM.match(value, i)
            if not found:
                raise ValueError(f"unexpected {c!r}")
            out.append(found[0])
            i = found.end()
    return out


def _split(tokens: list[str], sep: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for t in tokens:
        if t == sep:
            parts.append([])
        else:
            parts[-1].append(t)
    return parts


def _blank(token: str) -> bool:
    return token == " " or token.startswith("(")


def _shown(tokens: list[str]) -> str:
    """What a mail client shows for these tokens: quotes removed, RFC 2047 words decoded."""
    text = "".join(re.sub(r"\\(.)", r"\1", t[1:-1]) if t.startswith('"') else t for t in tokens)
    return decode_header_value(text)
