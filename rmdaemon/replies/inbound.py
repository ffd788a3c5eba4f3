"""One inbound message, read once: its raw bytes, the compat32 message tree, its sender and its Date.

The inbox asks many things of every message: its size and sender before anything reads it, then
what the person wrote (``replies``), which calendar answers it carries (``itip``), when it was
written, what our mail server said of its domain (``authres``). Each used to start again from
the raw bytes, so the stdlib parser ran three times on every message and the ``From`` was read
twice: more than a tenth of an ingest tick. An ``Inbound`` computes each view on first use and
keeps it, so they all read the same parse, and a message refused on its size is never parsed.

The views keep the rules of the readers they replace: the tree is ``mime.parse_message``'s (the
parser ``itip`` used too), the header fields are the ones compat32 reads before the body (so a
head parsed alone gives the same), the sender is ``sender.envelope_from``'s strict reading of the
raw bytes.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parsedate_to_datetime
from functools import cached_property

from rmdaemon.replies import mime, sender

_LINE_BREAK = re.compile(r"\n|\r")  # how policy.default unfolds a header before reading it


class Inbound:
    """Views of one raw RFC 5322 message, each computed when first asked for."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    @cached_property
    def _parsed(self) -> Message | Exception:
        """The tree, or what the parser raised (a message nested too deep): remembered either
        way, so a message that cannot be parsed costs one attempt, not one per reader."""
        try:
            return mime.parse_message(self.raw)
        except Exception as exc:  # noqa: BLE001 - untrusted bytes; each reader says what a failure means to it
            return exc

    @property
    def message(self) -> Message:
        """The message tree (compat32); raises what the parser raised."""
        if isinstance(self._parsed, Exception):
            raise self._parsed
        return self._parsed

    @property
    def tree(self) -> Message | None:
        """The message tree, or None when the parser could not build it."""
        return None if isinstance(self._parsed, Exception) else self._parsed

    @cached_property
    def headers(self) -> Message:
        """The header fields as compat32 reads them: the tree's, else those of the head parsed
        alone (the head of a message too deeply nested to parse still has a Date and a verdict)."""
        tree = self.tree
        if tree is not None:
            return tree
        head = self.raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        return BytesHeaderParser(policy=compat32).parsebytes(head + b"\n\n")

    def header(self, name: str) -> str:
        """``mime.header`` of the message: its first ``name`` field, decoded; "" if none. The parser
        asks for a dozen (subject, ids, the auto-reply marks), so the fields are walked once."""
        value = self._first_values.get(name.lower())
        return mime.decode_header_value(value) if value is not None else ""

    @cached_property
    def _first_values(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for key, value in self.message.raw_items():
            if isinstance(value, str):
                found.setdefault(key.lower(), value)
        return found

    @cached_property
    def envelope(self) -> sender.From:
        """Who sent it (``sender.envelope_from``): everything that acts on a pair is authorised by it."""
        return sender.envelope_from(self.raw)

    @cached_property
    def written(self) -> datetime | None:
        """The message's Date (aware), read as policy.default's DateHeader reads it, or None when
        it has none that can be read."""
        try:
            value = next((v for n, v in self.headers.raw_items() if n.lower() == "date"), None)
            value = "".join(_LINE_BREAK.split(value)) if value is not None else None
            moment = parsedate_to_datetime(value) if value else None
        except (AttributeError, ValueError, TypeError, IndexError):  # a broken Date is just not used
            return None
        return moment if moment is not None and moment.tzinfo is not None else None
