"""What the sender wrote: a reply's text without quoted history, signature and legal footer.

Works line by line in one pass (no regex ever sees more than a few lines), so its cost is linear
in the size of the message. History starts at the first of: a line the HTML converter marked as
a cut, an "original/forwarded message" separator, an Outlook ``From: … Sent: …`` block, or an
"On <date>, <name> wrote:" header that is *not* followed by ``>``-quoted lines. A header that is
followed by quoted lines only introduces a quote: the quote is dropped and unquoted text after
it is kept, because people answer inline ("> Topics?" / "pricing, hiring"). The signature and
footers are then taken off the end of what is left. One exception: a header block that opens the
message and names the sender as its From (their own notes forwarded from Sent Items, nothing typed
above) introduces their own words, so reading starts under it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rmdaemon.replies import lexicon as lx
from rmdaemon.replies.fields import looks_like_field

CUT_MARK = "\x1e"  # a line the HTML converter writes where client markup says history begins
_MAX_LINE_FOR_PATTERNS = 400
_SIGNATURE_MAX_LINES = 8
# Characters that carry no text: zero-width and bidi controls, soft hyphen, the combining
# grapheme joiner that newsletters pad preheaders with, Hangul fillers used as blanks, and the
# object-replacement character Apple Mail leaves where an inline image was.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                                    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u034f"
                                    "\u061c\u115f\u1160\u180e\u3164\uffa0\ufeff\ufffc\u00ad"), None)
# Decorative marks that mail add-ons append on their own: Gmail trackers (Mailtrack, Streak...)
# write U+1427 "ᐧ" where their pixel sits. Only a mark standing alone (a line of its own, or
# after a space at the end of a line) goes: inside a word it is Canadian syllabics.
_DEBRIS_RE = re.compile(r"(?:(?<=\n)|^|[ \t]+)[\u1427\u00b7\u2027\u30fb]+[ \t]*(?=\n|$)")
_SPACES_RE = re.compile(r"[\u00a0\u2007\u202f\t]")
_ADDRESS_AT_END_RE = re.compile(r"<[^<>\s]+@[^<>\s]+>\s*[:：]$")
_FROM_WITH_ADDRESS_RE = re.compile(r"<[^<>\s]+@[^<>\s]+>|\[mailto:")
_DATED_LABEL_RE = re.compile(r"^[^:：]{1,30}[:：].*(?:\b(?:19|20)\d\d\b|\b\d{1,2}[./]\d{1,2}[./]\d{2}\b)")
_MAILTO_RE = re.compile(r"\s*[<\[]mailto:[^<>\[\]\s]{1,200}[>\]]")
_DATE_START_RE = re.compile(r"\d{4}\s*[-/.年]|\d{1,2}[./]\d{1,2}[./]")
_MESSAGE_LABEL_RE = re.compile(
    r"^(?:message|mensaje|mensagem|nachricht|messaggio|bericht|wiadomość|mail|e-mail|courriel"
    r"|date|datum|fecha|data|sent|gesendet|envoyé|enviado|verzonden)\b", re.IGNORECASE)
_DIGIT_RE = re.compile(r"\d")
_LETTERS_RE = re.compile(r"[^\W\d_]")
_ZONE_RE = re.compile(r"\b(?:GMT|UTC|CES?T|[AP]M)\b", re.IGNORECASE)
_RULE_RE = re.compile(r"^[\s>]*[-=_*~#]{3,}\s*$")
_DASHES_RE = re.compile(r"^[-–—_*=]{2,}$")
_DATE_IN_TEXT_RE = re.compile(r"\d{1,2}:\d\d|\b(?:19|20)\d\d\b|\d{4}年")
_LINKS_RE = re.compile(r"<[^>]*>|\(https?:[^)]*\)|https?://\S+")
_ADDRESS_RE = re.compile(r"[^\s<>\[\]():;,\"']+@[^\s<>\[\]():;,\"']+")
_HEADER_BLOCK_MAX_LINES = 14


@dataclass(frozen=True)
class Visible:
    """The new text of a reply and what was learnt while finding it."""

    text: str
    answers: tuple[tuple[str, str], ...] = ()  # (quoted prompt, the answer written under it)
    quoted: bool = False  # history was found and left out
    forwarded: bool = False  # a forwarded message was found and left out
    warnings: tuple[str, ...] = ()


@dataclass
class _Scan:
    kept: list[str] = field(default_factory=list)
    answers: list[list[str]] = field(default_factory=list)  # [prompt, line, line, ...]
    quoted: bool = False
    forwarded: bool = False
    prompt: str = ""
    after_quote: bool = False
    segments: list[int] = field(default_factory=list)  # where in ``kept`` text resumes after a quote


def extract(text: str, sender: str | None = None) -> Visible:
    """The sender's own text of ``text`` (a decoded, plain-text message body); ``sender`` is the
    envelope's From address, which tells the sender's own earlier message from someone else's."""
    lines = normalise(text).split("\n")
    start = _own_message_start(lines, sender) if sender else 0
    scan = _scan(lines, start)
    kept, rescued = _strip_segments(scan.kept, scan.segments)
    body = tidy(kept)
    answers = tuple((a[0], text) for a in scan.answers
                    if a[0] and (text := tidy(strip_tail(a[1:]))) and text in body)
    warnings: tuple[str, ...] = ()
    if rescued:
        warnings += ("body: the text below a signature mark was kept, as it was all the sender wrote",)
    if start and body:
        warnings += (f"body: the message opens with the sender's own earlier message (From: {sender}) "
                     "and nothing above it; its text was read as theirs",)
    return Visible(body, answers, scan.quoted, scan.forwarded, warnings)


def _own_message_start(lines: list[str], sender: str) -> int:
    """Where the sender's text starts when the message opens with the header block of their own
    earlier message and nothing above it (their sent notes forwarded from Sent Items, or pasted
    with the headers they were printed with): the line after the block, else 0.

    Anywhere else a header block opens someone else's message. Here the block names the sender,
    so what is under it is what they wrote; reading it is what keeps "never lose the sender's
    words" true for them, while an agenda forwarded with nothing typed stays empty.
    """
    i = _next_nonblank(lines, 0)
    first = lines[i].strip() if i < len(lines) else ""
    if ":" not in first[:60] and "：" not in first[:60] and first[:1] not in ("-", "_", "=", "*"):
        return 0  # most messages open with text, decided without a pattern
    head = "\n".join(lines[i:i + _HEADER_BLOCK_MAX_LINES + 2])
    if len(first) > _MAX_LINE_FOR_PATTERNS or sender.casefold() not in head.casefold():
        return 0
    if lx.SEPARATOR_RE.match(first) or lx.UNDERSCORE_RULE_RE.match(first) or lx.FORWARD_INTRO_RE.match(first):
        i = _next_nonblank(lines, i + 1)
    if i >= len(lines) or not header_block_at(lines, i):
        return 0
    own = False
    for j in range(i, min(len(lines), i + _HEADER_BLOCK_MAX_LINES)):
        s = lines[j].strip()
        if lx.FROM_LINE_RE.match(s):
            own = own or any(a.casefold() == sender.casefold() for a in _ADDRESS_RE.findall(s))
        elif not s:  # the block ends at a blank line not followed by another header line
            k = _next_nonblank(lines, j)
            if k >= len(lines) or not lx.HEADER_LINE_RE.match(lines[k].strip()):
                return j if own else 0
    return 0


def _strip_segments(kept: list[str], starts: list[int]) -> tuple[list[str], bool]:
    """Signatures and footers off each run of new text between quotes (an interleaved or
    bottom-posted reply has several: "Sent from my iPhone" above the quote must not take the
    answer below it along). True when stripping would have left nothing but kept the text."""
    bounds = [0, *starts, len(kept)]
    out: list[str] = []
    for a, b in zip(bounds, bounds[1:]):
        segment = kept[a:b]
        stripped = strip_tail(segment)
        while stripped and not stripped[-1].strip():
            stripped.pop()
        if stripped:  # the blank lines the sender left before the next quote, as written
            k = len(segment)
            while k and not segment[k - 1].strip():
                k -= 1
            stripped.extend(segment[k:] if len(stripped) == k else [""])
        out.extend(stripped)
    if any(s.strip() for s in out) or not any(s.strip() for s in kept):
        return out, False
    rest = [s for s in _drop_disclaimers(kept) if not _signature_mark(s)]
    if _only_signature(rest):
        return [], False
    return rest, True


def _signature_mark(line: str) -> bool:
    return bool(lx.SIG_DELIMITER_RE.match(line) or _sent_from([line]) == 0)


def _only_signature(lines: list[str]) -> bool:
    """Is this what a signature holds (a name, title, phone, link), not notes or answers?"""
    nonblank = [s.strip() for s in lines if s.strip()]
    return len(nonblank) <= _SIGNATURE_MAX_LINES and all(
        _signature_like(s) and len(s.split()) <= 8 for s in nonblank)


def normalise(text: str) -> str:
    """One newline convention, no invisible characters, ordinary spaces."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_INVISIBLE)
    if "\u1427" in text or "\u00b7" in text or "\u2027" in text or "\u30fb" in text:
        text = _DEBRIS_RE.sub("", text)
    return _SPACES_RE.sub(" ", text)


def is_quoted(line: str) -> bool:
    return line.lstrip(" ").startswith(">")


def unquote(line: str) -> str:
    """The text of a quoted line without its ``>`` markers (linear: a line may be all ``>``)."""
    return line.lstrip("> ")


def _scan(lines: list[str], start: int = 0) -> _Scan:
    """Walk the lines once from ``start``, keeping the sender's, stopping where history begins."""
    scan = _Scan()
    i: int | None = start
    while i is not None and i < len(lines):
        i = _step(scan, lines, i)
    return scan


def _step(scan: _Scan, lines: list[str], i: int) -> int | None:
    """Take line ``i``; the index of the next line to look at, or None where history begins."""
    line = lines[i]
    if is_quoted(line):
        scan.quoted = scan.after_quote = True
        scan.prompt = unquote(line).strip() or scan.prompt
        return i + 1
    if not line.strip():
        scan.kept.append("")
        if scan.answers and not scan.after_quote:
            scan.answers[-1].append("")
        return i + 1
    if _continues_quote(lines, i):
        return i + 1
    if _flattened_header(scan, line):
        return None
    cut = _history_starts(lines, i)
    if cut == "history" and not any(s.strip() for s in scan.kept):
        j = _quote_after_header(lines, i)
        if j:  # the header block of a quote answered inline below: not the end
            scan.quoted = True
            return j
    if cut:
        _history(scan, cut)
        return None
    span = attribution_span(lines, i)
    if span:
        scan.quoted = True
        j = _next_nonblank(lines, i + span)
        return i + span if j < len(lines) and is_quoted(lines[j]) else None
    return None if _keep_until_glued(scan, line) else i + 1


def _keep_until_glued(scan: _Scan, line: str) -> bool:
    """Keep the sender's line up to a separator written onto its end ("…a new card.-----Original
    Message-----", Outlook XP); True when there was one, so history starts there."""
    glued = None
    if "--" in line or "__" in line or "==" in line or "**" in line:
        glued = lx.GLUED_SEPARATOR_RE.search(line[:_MAX_LINE_FOR_PATTERNS])
    if glued is None:
        _keep(scan, line)
        return False
    if line[:glued.start()].strip():
        _keep(scan, line[:glued.start()])
    scan.quoted = True
    scan.forwarded = scan.forwarded or _is_forward_words(glued.group())
    return True


def _flattened_header(scan: _Scan, line: str) -> bool:
    """ "Thanks From: … Sent: …": a header flattened onto the end of the sender's line."""
    head = line[:_MAX_LINE_FOR_PATTERNS]
    flat = lx.FLAT_HEADER_RE.search(head) if ":" in line and _two_colons(head) else None
    if not (flat and flat.start() > 0 and line[:flat.start()].strip()):
        return False
    _keep_until_glued(scan, line[:flat.start()])
    scan.quoted = True
    return True


def _history(scan: _Scan, cut: str) -> None:
    scan.quoted = True
    scan.forwarded = scan.forwarded or cut == "forward"
    _drop_header_leftovers(scan.kept)


def _quote_after_header(lines: list[str], i: int) -> int:
    """The first ``>``-quoted line right after the separator or header block at ``i`` (Outlook
    with "prefix each line of the original message", answered inline), or 0."""
    for j in range(i, min(len(lines), i + 14)):
        s = lines[j].strip()
        if is_quoted(lines[j]):
            return j if j > i else 0
        if s and not (lx.HEADER_LINE_RE.match(s) or lx.SEPARATOR_RE.match(s)
                      or lx.UNDERSCORE_RULE_RE.match(s) or lines[j][:1] in " \t"):
            return 0
    return 0


def _continues_quote(lines: list[str], i: int) -> bool:
    """A quoted line that a client re-wrapped without its ``>``: lower-case text glued between
    a long quoted line and the next quoted line ("> … pharetra d" / "ignissim odio?" / "> …").
    An answer is not: it follows a question or a prompt, or is the last thing written."""
    if i == 0 or not is_quoted(lines[i - 1]) or len(lines[i - 1]) < 55:
        return False
    if not lines[i].lstrip()[:1].islower() or lines[i - 1].rstrip().endswith(("?", ":", "：", "？")):
        return False
    return i + 1 < len(lines) and is_quoted(lines[i + 1])


def _drop_header_leftovers(kept: list[str]) -> None:
    """Lines just above a history cut that belong to it: a dated "message" label glued to it
    ("Message du : 12/12/2016 13:20") and rule lines ("===="). A note of the sender's that
    has a date in it ("FYI: Sam's notes from 3 March 2025") stays."""
    last = kept[-1].strip() if kept else ""
    if (last and _DATED_LABEL_RE.match(last) and _MESSAGE_LABEL_RE.match(last)
            and not looks_like_field(last)):
        kept.pop()
    while kept and (not kept[-1].strip() or _RULE_RE.match(kept[-1])):
        kept.pop()


def _keep(scan: _Scan, line: str) -> None:
    """Keep one line of new text; after a quote it also starts or extends an inline answer."""
    line = line.rstrip()
    if scan.after_quote:
        scan.answers.append([scan.prompt])
        scan.after_quote = False
        scan.segments.append(len(scan.kept))
    if scan.answers:
        scan.answers[-1].append(line)
    scan.kept.append(line)


def _next_nonblank(lines: list[str], i: int) -> int:
    while i < len(lines) and not lines[i].strip():
        i += 1
    return i


def _history_starts(lines: list[str], i: int) -> str:
    """'forward', 'history' or '' for the line at ``i``: does all that follows belong to others?"""
    line = lines[i]
    stripped = line.strip()
    if stripped == CUT_MARK:
        return "history"
    if len(stripped) > _MAX_LINE_FOR_PATTERNS:
        return ""
    if lx.FORWARD_INTRO_RE.match(stripped):
        return "forward"
    if lx.SEPARATOR_RE.match(stripped):
        return "forward" if _is_forward_words(stripped) else "history"
    if lx.UNDERSCORE_RULE_RE.match(stripped):
        j = _next_nonblank(lines, i + 1)
        return "history" if j < len(lines) and header_block_at(lines, j) else ""
    if header_block_at(lines, i):
        return "history"
    if lx.FROM_LINE_RE.match(stripped) and _FROM_WITH_ADDRESS_RE.search(stripped):
        return "history"  # a lone "From: Name <address>" opens a quoted message too
    return ""


def _is_forward_words(line: str) -> bool:
    low = line.casefold()
    return any(w in low for w in ("forward", "weitergeleitet", "transf", "transmis", "reenviado",
                                  "encaminhad", "doorgestuurd", "inoltrat", "videresendt",
                                  "vidarebefordrat", "przekazan", "転送", "转发"))


def header_block_at(lines: list[str], i: int) -> bool:
    """Does an Outlook-style block of pseudo-headers (From/Sent/To/Subject) start at ``i``?"""
    first = lines[i].strip()
    if ":" not in first[:40] and "：" not in first[:40]:
        return False
    if _two_colons(first) and lx.FLAT_HEADER_RE.match(first):
        return True
    if not lx.HEADER_LINE_RE.match(first):
        return False
    has_from = bool(lx.FROM_LINE_RE.match(first))
    count, seen, j = 1, 0, i + 1
    while j < len(lines) and seen < 8:
        s = lines[j].strip()
        j += 1
        if not s:
            continue
        seen += 1
        if lx.HEADER_LINE_RE.match(s):
            count += 1
            has_from = has_from or bool(lx.FROM_LINE_RE.match(s))
        elif count >= 2 and has_from:
            break
    return has_from and count >= 2


def attribution_span(lines: list[str], i: int) -> int:
    """How many lines (1–3) an "On <date>, <name> wrote:" header at ``i`` takes; 0 if none.

    Clients wrap long headers, so a header may continue on the next lines; it must then open
    like one ("On"/"Am"/"Le"..., a date) or be cut inside the sender's name or address
    ("Max Mustermann <" / "<max@example.com> schrieb am …:", "<mailto:…>" on the next line),
    which keeps "On the other hand, …" and a note's last line safe.
    """
    first = lines[i].strip()
    if len(first) > _MAX_LINE_FOR_PATTERNS:
        return 0
    joined = first
    for span in range(1, 4):
        if span > 1:
            if i + span - 1 >= len(lines) or not lines[i + span - 1].strip():
                return 0
            nxt = unquote(lines[i + span - 1]).strip()
            if not _header_may_continue(first, nxt, span) or _history_starts(lines, i + span - 1):
                return 0  # "Begin forwarded message:" / "From: …" open history, never go on a header
            joined = _join_wrapped(joined, nxt)
            if len(joined) > _MAX_LINE_FOR_PATTERNS:
                return 0
        if is_attribution(joined, _followed_by_quote(lines, i + span)):
            return 0 if span > 1 and _name_starts_below(lines, i, joined) else span
    return 0


def _name_starts_below(lines: list[str], i: int, joined: str) -> bool:
    """A header that names the sender before its date ("Max <max@…> schrieb am Fr., 25. März 2016
    um 10:00 Uhr:", Gmail for Android) starts with the name: on the address's line or just above
    a line that opens with the address. A line above that ("2025 ads", "On 3 ads") is the sender's."""
    if "<" in lines[i] or unquote(lines[i + 1]).strip().startswith(("<", "(<", "[mailto:")):
        return False
    at = joined.find(">")
    return at > 0 and _has_date(joined[at:])


def _header_may_continue(first: str, nxt: str, span: int) -> bool:
    """May a quote header that starts with ``first`` go on with ``nxt``?

    Never when ``nxt`` opens a header itself ("On …", a date, or a whole "Sam <sam@…> wrote:")
    unless ``first`` plainly opens one: then ``first`` is the sender's ("On Monday we met").
    """
    head = lx.WROTE_HEAD_RE.match(first)
    address = "<" in first or "@" in first or nxt.startswith(("<", "(<", "[mailto:"))
    dated = _has_date(first)
    if not (head or address or dated):
        return False  # most lines: plain text
    if first.count("<") > first.count(">") or first.endswith(("(", "\"")):
        return True  # cut inside the address: "Max Mustermann <" / "max@example.com"
    if lx.WROTE_HEAD_RE.match(nxt) or _DATE_START_RE.match(nxt):
        return False
    if head and _DIGIT_RE.search(first):
        return True  # "On Mon, 3 Mar 2025 at 09:00, Reverse" / "Em sex., 25 de mar. de"
    sentence_end = first.endswith((".", "!", "?"))
    if nxt.startswith(("<", "(<", "[mailto:")) and not sentence_end:
        return len(first) <= 80  # "Max Mustermann" / "<max@example.com> schrieb am …:"
    if dated and (_DATE_START_RE.match(first) or not _LETTERS_RE.search(_ZONE_RE.sub("", first))):
        return True  # "2016/03/25 10:00、Max" / "2016-03-03 17:21 GMT+01:00"
    if head or dated:
        may = True
    elif sentence_end or len(first) > 160 or "@" not in first:
        return False
    else:  # "Max Mustermann <max@example.com> schrieb am Fr.," / "Max <max@…>" + "schrieb …"
        may = bool(lx.WROTE_ANY_RE.search(first) or lx.WROTE_ANY_RE.match(nxt) or span > 2)
    # "2025 ads" / "On Monday we met" above a whole "Sam <sam@example.com> wrote:"
    return may and not is_attribution(nxt, False)


def _join_wrapped(joined: str, nxt: str) -> str:
    """Two lines of one wrapped header as one: no space inside "<…>" cut at the wrap."""
    if joined.endswith(("<", "(")) or nxt.startswith((">", ")")):
        return joined + nxt
    return f"{joined} {nxt}"


def _followed_by_quote(lines: list[str], i: int) -> bool:
    j = _next_nonblank(lines, i)
    return j < len(lines) and is_quoted(lines[j])


def _has_date(text: str) -> bool:
    # Every form has a digit: most lines have none, and one digit is found far faster than the pattern.
    return bool(_DIGIT_RE.search(text) and _DATE_IN_TEXT_RE.search(text))


def _two_colons(text: str) -> bool:
    """Can ``lx.FLAT_HEADER_RE`` match here? It needs two labels with a colon each; most lines
    have fewer colons and are spared the pattern, which looks ahead 200 characters from each."""
    return text.count(":") + text.count("：") >= 2


def _other_attribution(text: str) -> bool:
    """``lx.WROTE_OTHER_RE``, tried only where it can match: each of its headers ends in a colon,
    holds an address or says 写道. Its leading ``.{4,120}`` made it the costliest pattern a line."""
    may = "@" in text or "写道" in text or text.rstrip("\n")[-1:] in (":", "：")
    return bool(may and lx.WROTE_OTHER_RE.match(text))


def is_attribution(text: str, before_quote: bool) -> bool:
    """Is ``text`` (one header, possibly joined from wrapped lines) a reply attribution?

    Before ``>``-quoted lines any "… wrote:" will do. Before unquoted text (which is then cut
    away) the header must also carry a date or an address, so a sentence like "On Monday Sam
    wrote:" in someone's notes stays.
    """
    text = text.strip().strip("*_-=").strip()
    if not text or len(text) > _MAX_LINE_FOR_PATTERNS:
        return False
    if "mailto:" in text:  # "<max@example.com<mailto:max@example.com>>" from an HTML link
        text = _MAILTO_RE.sub("", text)
    if _other_attribution(text):
        return True
    specific = _has_date(text) or "@" in text
    colon = text.endswith((":", "："))
    if not before_quote and not (specific and (colon or lx.WROTE_HEAD_RE.match(text))):
        return False  # what follows could not say yes: spares most lines the costly tail search
    if lx.WROTE_TAIL_RE.search(text[-160:]):
        return before_quote or (specific and (colon or bool(lx.WROTE_HEAD_RE.match(text))))
    if not (colon and specific):
        return False
    return bool(lx.WROTE_ANY_RE.search(text) or _ADDRESS_AT_END_RE.search(text))


# --- signatures and footers ---------------------------------------------------------------------


def strip_tail(lines: list[str]) -> list[str]:
    """Take footers, a ``-- `` signature, "Sent from my …" and a sign-off block off the text."""
    lines = _drop_disclaimers(lines)
    for cut in (_sig_delimiter, _sent_from, _list_footer, _sign_off, _dash_name):
        at = cut(lines)
        content_cut = cut in (_sign_off, _dash_name)  # "Thanks!" alone is still the message
        if at is not None and (not content_cut or any(s.strip() for s in lines[:at])):
            lines = lines[:at]
    return lines


def _sig_delimiter(lines: list[str]) -> int | None:
    return next((k for k, s in enumerate(lines) if lx.SIG_DELIMITER_RE.match(s)), None)


def _sent_from(lines: list[str]) -> int | None:
    for k, s in enumerate(lines):
        t = _LINKS_RE.sub("", s).strip()
        if lx.SENT_FROM_RE.match(t) and "," not in t and len(t.split()) <= 7:
            return k
    return None


def _list_footer(lines: list[str]) -> int | None:
    """A rule line followed by a short block to the end: a mailing-list or company footer."""
    nonblank = [k for k, s in enumerate(lines) if s.strip()]
    for pos in range(max(0, len(nonblank) - _SIGNATURE_MAX_LINES - 1), len(nonblank)):
        k = nonblank[pos]
        if _RULE_RE.match(lines[k]) and len(lines[k].strip()) >= 10:
            if any(looks_like_field(s) for s in lines[k + 1:]):
                return None  # "----------" between the sender's answers, not above a footer
            return k
    return None


def _dash_name(lines: list[str]) -> int | None:
    """ "-Abhishek Kona" as the last line, after a blank line."""
    nonblank = [k for k, s in enumerate(lines) if s.strip()]
    if len(nonblank) >= 2 and lx.DASH_NAME_RE.match(lines[nonblank[-1]].strip()):
        k = nonblank[-1]
        return k if not lines[k - 1].strip() else None
    return None


def _sign_off(lines: list[str]) -> int | None:
    """Where a closing like "Best regards,\\nAlex\\nHead of Sales" begins, if the text ends with one."""
    nonblank = [k for k, s in enumerate(lines) if s.strip()]
    for pos in range(len(nonblank) - 1, max(-1, len(nonblank) - _SIGNATURE_MAX_LINES - 2), -1):
        k = nonblank[pos]
        s = lines[k].strip()
        if len(s) <= 60 and lx.SIGN_OFF_RE.match(s):
            tail = [lines[m].strip() for m in nonblank[pos + 1:]]
            if all(_signature_like(t) for t in tail):
                return k
            return None
    return None


def _signature_like(line: str) -> bool:
    """A name, title, phone or link line; not notes (no list items, no long sentences)."""
    if _DASHES_RE.match(line):
        return True
    return len(line) <= 80 and not line.startswith(("- ", "* ", "•")) and not looks_like_field(line)


def _drop_disclaimers(lines: list[str]) -> list[str]:
    """Drop paragraphs that are legal footers or "external sender" banners.

    A footer at the end takes everything after it along (more footer); a banner at the start
    goes alone.
    """
    paragraphs: list[list[str]] = [[]]
    for s in lines:
        if s.strip():
            paragraphs[-1].append(s)
        elif paragraphs[-1]:
            paragraphs.append([])
    out: list[str] = []
    for para in paragraphs:
        text = " ".join(para)[:2000]
        after_text = any(x.strip() for x in out)
        if para and (lx.BANNER_RE.search(text) or (after_text and lx.DISCLAIMER_RE.search(text))):
            if after_text and not lx.BANNER_RE.search(text):
                break
            continue
        out.extend([*para, ""])
    return out


def tidy(lines: list[str]) -> str:
    """Lines joined with single blank lines between paragraphs, no trailing space, no edges."""
    out: list[str] = []
    for s in lines:
        s = s.rstrip()
        if not s and (not out or not out[-1]):
            continue
        out.append(s)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)
