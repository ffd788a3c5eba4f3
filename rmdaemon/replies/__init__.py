"""Raw reply bytes → what the sender wrote, the session-log fields, and any command.

This is the ``parse-reply`` contract (README, "Commands") and the one code path the daemon's inbox uses.
It is pure (bytes in, a frozen record out) and total: any bytes give a ``ParsedReply``; what
could not be read is said in ``warnings``, never raised.

The steps live in small modules: ``mime`` (headers, charsets, the best body), ``htmltext``
(HTML → text that keeps quote structure), ``visible`` (quoted history, signatures, footers),
``fields`` (attended/topics/learned/next steps/rating), ``commands`` (SKIP, PAUSE, ..., consent
and sharing answers), ``headers`` (sender, session token, auto-replies) and ``lexicon`` (the
words of every language, as data). ``inbound`` holds one message read once (tree, header fields,
sender, Date): the inbox hands the same ``Inbound`` to its checks, to ``read_reply`` and to ``itip``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message

from rmdaemon.replies import commands, headers, mime, visible
from rmdaemon.replies import fields as session_fields
from rmdaemon.replies.inbound import Inbound

MAX_TEXT_CHARS = 500_000  # longer bodies are cut for parsing (the raw message is kept elsewhere)
_MAX_RAW_FOR_TOKEN = 200_000


@dataclass(frozen=True)
class ParsedReply:
    """One reply as the session log needs it. Unknown values are None (or empty)."""

    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    from_addr: str | None
    subject: str
    session_token: str | None
    body: str
    fields: dict[str, object] = field(default_factory=session_fields.empty_fields, hash=False)
    command: str | None = None
    command_arg: str | None = None  # RESCHEDULE's "Thu 14:00", PAUSE's "until March"
    warnings: list[str] = field(default_factory=list, hash=False)
    auto_submitted: bool = False  # an auto-reply or bounce: never log or answer it
    share_notes: bool | None = None  # SHARE NOTES → True, PRIVATE → False
    consent: str | None = None  # "yes"/"no" for answers to the opt-in question
    sender_problem: str | None = None  # why the From cannot authorise anything (replies.sender)


def parse_reply(raw: bytes) -> ParsedReply:
    """Parse one raw RFC 5322 message. Never raises: unreadable input yields warnings."""
    if not isinstance(raw, bytes):
        raw = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
    return read_reply(Inbound(raw))


def read_reply(inbound: Inbound) -> ParsedReply:
    """``parse_reply`` of a message the caller reads too: the inbox hands the same ``Inbound`` to
    its checks, to this parser and to ``itip``, so the message is parsed and its sender read once."""
    try:
        return _parse(inbound)
    except Exception as exc:  # noqa: BLE001 - the contract: any bytes give JSON with warnings
        return ParsedReply(None, None, (), None, "", headers.session_token(_raw_text(inbound.raw)), "",
                           warnings=[f"unparseable: {type(exc).__name__}: {exc}"[:300]],
                           sender_problem="the message could not be parsed")


def _parse(inbound: Inbound) -> ParsedReply:
    raw, msg = inbound.raw, inbound.message
    subject = inbound.header("Subject")
    envelope = inbound.envelope
    from_addr = envelope.address
    ids = _ids(inbound.header)
    body = mime.best_body(msg)
    warnings = _defects(msg) + body.warnings + ([f"from: {envelope.problem}"] if envelope.problem else [])
    machine = headers.automatic(inbound.header, subject, from_addr)
    machine += [w for w in body.warnings if w.startswith("bounce:") and w not in machine]
    seen = visible.extract(body.text[:MAX_TEXT_CHARS], from_addr)
    warnings += _body_warnings(body.text, seen) + [w for w in machine if w not in warnings]
    token = headers.session_token(subject, ids[1] or "", " ".join(ids[2]), body.text,
                                  _raw_text(raw))
    command = None if machine else commands.find_command(seen.text)
    return ParsedReply(
        message_id=ids[0], in_reply_to=ids[1], references=ids[2], from_addr=from_addr,
        subject=subject, session_token=token, body=seen.text,
        fields=session_fields.extract(seen.text, seen.answers),
        command=command.name if command else None, command_arg=command.arg if command else None,
        warnings=warnings, auto_submitted=bool(machine),
        share_notes=commands.find_share(seen.text),
        consent=None if machine else commands.find_consent(seen.text),
        sender_problem=envelope.problem,
    )


def _ids(header: Callable[[str], str]) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(Message-ID, In-Reply-To, References); an id without angle brackets is kept as written."""
    raw_id = header("Message-ID")
    message_id = (mime.message_ids(raw_id) or (raw_id,))[0] or None
    in_reply_to = (mime.message_ids(header("In-Reply-To")) or (None,))[0]
    return message_id, in_reply_to, mime.message_ids(header("References"))


def _defects(msg: Message) -> list[str]:
    names = sorted({type(d).__name__ for part in msg.walk() for d in getattr(part, "defects", [])})
    return [f"mime: malformed message ({', '.join(names[:5])})"] if names else []


def _body_warnings(text: str, seen: visible.Visible) -> list[str]:
    found = []
    if len(text) > MAX_TEXT_CHARS:
        found.append(f"body: longer than {MAX_TEXT_CHARS} characters, the rest was not read")
    if not text.strip():
        found.append("body: no readable text")
    elif not seen.text:
        found.append("body: nothing new above the quoted text")
    if seen.forwarded:
        found.append("forward: a forwarded message was left out of the body")
    return found + list(seen.warnings)


def _raw_text(raw: bytes) -> str:
    return raw[:_MAX_RAW_FOR_TOKEN].decode("latin-1")


def to_contract_json(parsed: ParsedReply) -> dict[str, object]:
    """The SPEC's ``parse-reply --json`` object: exactly its keys, in its order."""
    f = parsed.fields
    return {
        "message_id": parsed.message_id,
        "in_reply_to": parsed.in_reply_to,
        "from": parsed.from_addr,
        "subject": parsed.subject,
        "session_token": parsed.session_token,
        "body": parsed.body,
        "fields": {
            "attended": f.get("attended"),
            "topics": list(f.get("topics") or []),
            "learned": f.get("learned"),
            "next_steps": list(f.get("next_steps") or []),
            "rating": f.get("rating"),
        },
        "command": parsed.command,
        "warnings": list(parsed.warnings),
    }


__all__ = ["Inbound", "ParsedReply", "parse_reply", "read_reply", "to_contract_json"]
