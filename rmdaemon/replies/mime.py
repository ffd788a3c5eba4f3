"""Raw RFC 5322 bytes → decoded headers and the best readable body, never raising.

The stdlib parser with the ``compat32`` policy is used because it is the most forgiving (and
the fastest) with the broken MIME that real clients and bounces produce; everything it hands
back is then decoded by hand: RFC 2047 words, raw 8-bit headers, transfer encodings, and
charsets that are missing, unknown or wrong (``iso-8859-1`` that is really ``windows-1252``,
``us-ascii`` that is really UTF-8). Each fallback leaves a warning instead of an exception.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from urllib.parse import unquote, unquote_to_bytes

from rmdaemon.replies import htmltext

_MAX_DEPTH = 12
_MAX_PARTS = 200
_LATIN = {"ascii", "latin_1", "cp1252"}
_STATEFUL_7BIT = ("iso2022", "utf_7", "hz")
_FORBIDDEN_CODECS = {"undefined", "unicode_escape", "raw_unicode_escape", "idna", "punycode"}
# WHATWG-style supersets: the label people write → the codec that decodes what they meant.
_ALIASES = {
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "ansi_x3.4-1968": "cp1252",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "ks_c_5601": "cp949", "gb2312": "gb18030",
    "gbk": "gb18030", "x-gbk": "gb18030", "shift_jis": "cp932", "shift-jis": "cp932",
    "sjis": "cp932", "x-sjis": "cp932", "windows-31j": "cp932", "big5": "big5hkscs",
    "tis-620": "cp874", "iso-8859-11": "cp874", "iso-8859-9": "cp1254", "utf8": "utf-8",
    "iso-2022-jp": "iso2022_jp_ext", "csiso2022jp": "iso2022_jp_ext",
}
_META_CHARSET_RE = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?([\w.:\-]{1,40})", re.I)
_FOLD_RE = re.compile(r"\r?\n[ \t]")
_MSGID_RE = re.compile(r"<[^<>\s]{1,500}>")
_NAME_PARAM_RE = re.compile(r"""(?:^|;)\s*(?:file)?name(\*)?(?:\*0\*?)?\s*=\s*("[^"]*"|[^;]*)""", re.I)


@dataclass
class Body:
    """The readable text of a message and what was noticed on the way."""

    text: str = ""
    warnings: list[str] = field(default_factory=list)
    parts: int = 0

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def parse_message(raw: bytes) -> Message:
    """The message tree, as leniently as the stdlib can parse it."""
    return BytesParser(policy=compat32).parsebytes(raw)


def header(msg: Message, name: str) -> str:
    """The first ``name`` header, unfolded and decoded to text (RFC 2047 and raw 8-bit)."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted and isinstance(value, str):
            return decode_header_value(value)
    return ""


def decode_header_value(value: str) -> str:
    """RFC 2047 words and raw 8-bit bytes of one header value → text; never raises."""
    if "\n" in value or "\r" in value:  # unfold (most values are on one line)
        value = _FOLD_RE.sub(" ", value).replace("\r", "").replace("\n", "")
    value = _fix_surrogates(value)
    if "=?" not in value:
        return value.strip()
    try:
        chunks = decode_header(value)
    except Exception:  # noqa: BLE001 - a malformed encoded word keeps its raw text
        return value.strip()
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            out.append(decode_bytes(chunk, charset)[0])
    return "".join(out).strip()


def _fix_surrogates(value: str) -> str:
    """The parser keeps raw 8-bit header bytes as surrogates; decode them as UTF-8 or cp1252."""
    if value.isascii() or not any("\udc80" <= c <= "\udcff" for c in value):
        return value
    data = value.encode("utf-8", "surrogateescape")
    return decode_bytes(data, None)[0]


def message_ids(value: str) -> tuple[str, ...]:
    """Every ``<id>`` in a Message-ID / In-Reply-To / References value, in order."""
    return tuple(_MSGID_RE.findall(value))


# --- charsets ------------------------------------------------------------------------------------


def codec_for(label: str | None) -> str | None:
    """A Python text codec for a MIME charset label, or None when unknown or absent."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _FORBIDDEN_CODECS:
        return None
    return info.name


def decode_bytes(data: bytes, label: str | None) -> tuple[str, str | None]:
    """Decode ``data`` labelled ``label``; falls back instead of failing. Returns (text, warning)."""
    codec = codec_for(label)
    if data.isascii() and not (codec or "").startswith(_STATEFUL_7BIT):
        return data.decode("ascii"), None
    if codec is None or codec in _LATIN:
        return _decode_guess(data, label, codec)
    try:
        return data.decode(codec), None
    except UnicodeDecodeError:
        pass
    for other in _second_choices(codec):
        try:
            return data.decode(other), f"charset: declared {label} but decoded as {other}"
        except UnicodeDecodeError:
            continue
    return data.decode(codec, "replace"), f"charset: {label} with undecodable bytes replaced"


def _decode_guess(data: bytes, label: str | None, codec: str | None) -> tuple[str, str | None]:
    """No usable label, or a Latin one: UTF-8 if the bytes are UTF-8, else Windows-1252."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        text = data.decode("utf-8", "replace")
        cut_utf8 = error.reason == "unexpected end of data" and not data[:error.start].isascii()
        if not cut_utf8:  # UTF-8 text whose last character was cut off stays UTF-8
            warning = None if codec else (
                f"charset: unknown {label!r}, decoded as windows-1252" if label else None
            )
            return data.decode("cp1252", "replace"), warning
    return text, (f"charset: declared {label} but the text is UTF-8" if label else None)


def _second_choices(codec: str) -> tuple[str, ...]:
    if codec.startswith("iso2022_jp"):
        return ("iso2022_jp_2", "iso2022_jp_3", "cp932", "utf-8")
    if codec == "utf-8":
        return ("cp1252",)
    return ("utf-8",)


# --- choosing the body ---------------------------------------------------------------------------


def best_body(msg: Message) -> Body:
    """The text a person reads: text/plain, else HTML made readable; attachments left out."""
    body = Body()
    texts: list[str] = []
    _collect(msg, texts, body, 0)
    body.text = "\n\n".join(t for t in texts if t.strip())
    return body


def _collect(part: Message, texts: list[str], body: Body, depth: int) -> None:
    body.parts += 1
    if depth > _MAX_DEPTH or body.parts > _MAX_PARTS:
        body.warn("mime: nesting too deep, the rest was ignored")
        return
    ctype = _content_type(part)
    if ctype.startswith("message/") and depth > 0:  # the parser nests it like a multipart
        body.warn(f"mime: attached {ctype} ignored (a forwarded message is not the reply)")
    elif part.is_multipart():
        _collect_multipart(part, ctype, texts, body, depth)
    elif _is_attachment(part, ctype):
        _warn_attachment(part, ctype, body)
    elif ctype in ("text/plain", "text/html") or ctype == "text/enriched":
        texts.append(_text_of(part, ctype, body))
    elif ctype == "text/calendar":
        body.warn("mime: text/calendar part ignored")
    elif not ctype.startswith("image/"):
        _warn_attachment(part, ctype, body)


def _collect_multipart(part: Message, ctype: str, texts: list[str], body: Body, depth: int) -> None:
    children = [c for c in part.get_payload() if isinstance(c, Message)]
    if ctype == "multipart/alternative":
        choice = _choose_alternative(children)
        if choice is not None:
            _collect(choice, texts, body, depth + 1)
        return
    if ctype == "multipart/report":
        body.warn("bounce: delivery status report (multipart/report)")
        children = children[:1]
    elif ctype in ("multipart/signed", "multipart/encrypted"):
        if ctype == "multipart/encrypted":
            body.warn("mime: encrypted message cannot be read")
        children = children[:1]
    for child in children:
        _collect(child, texts, body, depth + 1)


def _choose_alternative(children: list[Message]) -> Message | None:
    """Plain text when it has content, else HTML, else a nested multipart holding HTML."""
    ranked: dict[str, Message] = {}
    for child in children:
        ctype = _content_type(child)
        if ctype == "text/plain" and _payload(child).strip():
            ranked.setdefault("plain", child)
        elif ctype == "text/html":
            ranked.setdefault("html", child)
        elif child.is_multipart():
            ranked.setdefault("multi", child)
    return ranked.get("plain") or ranked.get("html") or ranked.get("multi")


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except Exception:  # noqa: BLE001 - a broken Content-Type reads as plain text (RFC 2045)
        return "text/plain"


def _is_attachment(part: Message, ctype: str) -> bool:
    disposition = (part.get("Content-Disposition") or "")
    if isinstance(disposition, str) and disposition.strip().lower().startswith("attachment"):
        return True
    return bool(_filename(part)) and ctype not in ("text/plain", "text/html")


def _filename(part: Message) -> str:
    """The attachment's name, from the raw headers so that 8-bit and RFC 2231 names survive."""
    for name in ("Content-Disposition", "Content-Type"):
        found = _NAME_PARAM_RE.search(header(part, name))
        if found:
            return _rfc2231(found.group(2).strip().strip('"')) if found.group(1) else found.group(2).strip().strip('"')
    return ""


def _rfc2231(value: str) -> str:
    """``utf-8''%D0%9A.txt`` → its text."""
    charset, _, rest = value.partition("''")
    if not rest:
        return unquote(value)
    return decode_bytes(unquote_to_bytes(rest), charset or None)[0]


def _warn_attachment(part: Message, ctype: str, body: Body) -> None:
    name = _filename(part)
    if ctype == "application/ms-tnef" or name.lower() == "winmail.dat":
        body.warn(f"mime: winmail.dat (Outlook TNEF) attachment ignored{f': {name}' if name else ''}")
    else:
        body.warn(f"mime: attachment ignored: {name or ctype}")


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001 - a broken transfer encoding yields the raw payload
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _text_of(part: Message, ctype: str, body: Body) -> str:
    data = _payload(part)
    label = _charset(part)
    if ctype == "text/html" and not label:
        found = _META_CHARSET_RE.search(data[:4096])
        label = found.group(1).decode("ascii", "replace") if found else None
    text, warning = decode_bytes(data, label)
    if warning:
        body.warn(warning)
    if ctype == "text/html":
        return htmltext.to_text(text)
    if _param(part, "format").lower() == "flowed":
        return unflow(text, delsp=_param(part, "delsp").lower() == "yes")
    return text


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:  # noqa: BLE001 - a malformed parameter is as good as none
        return ""
    return value if isinstance(value, str) else ""


def unflow(text: str, delsp: bool = False) -> str:
    """Undo RFC 3676 ``format=flowed``: rejoin lines a client wrapped (they end in a space)."""
    out: list[str] = []
    carry: tuple[int, str] | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        content = content[1:] if content.startswith(" ") else content  # space-stuffing
        if carry and carry[0] == depth:
            content = carry[1] + content
        elif carry:
            out.append(_flowed_line(*carry))
        carry = None
        if content.endswith(" ") and content != "-- ":
            carry = (depth, content[:-1] if delsp else content)
        else:
            out.append(_flowed_line(depth, content))
    if carry:
        out.append(_flowed_line(*carry))
    return "\n".join(out)


def _flowed_line(depth: int, content: str) -> str:
    return ("> " * depth + content) if depth else content


def _charset(part: Message) -> str | None:
    try:
        value = part.get_content_charset()
    except Exception:  # noqa: BLE001 - a malformed parameter is as good as none
        return None
    return value if isinstance(value, str) else None
