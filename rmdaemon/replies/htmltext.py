"""HTML mail → readable plain text that keeps what the client's markup says about history.

lxml's HTML parser (libxml2) reads the markup; it is forgiving, fast, and already installed with
exchangelib. The tree is rendered to lines, keeping line breaks and list items, with three kinds
of knowledge about clients that plain text would lose:

- quotes (``<blockquote type="cite">``, Gmail's ``gmail_quote``) become ``> `` lines, so the
  plain-text rules treat HTML and plain replies alike, inline answers included;
- markers after which everything is history (Outlook's ``divRplyFwdMsg`` / ``appendonsend``,
  Yahoo's ``yahoo_quoted``, Thunderbird's forward container...) become one cut line;
- signature blocks that clients mark (``gmail_signature``, ``moz-signature``, OWA's
  ``Signature``) are left out, as are hidden elements, scripts and styles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import lxml.html
from lxml import etree

from rmdaemon.replies import lexicon as lx
from rmdaemon.replies.visible import CUT_MARK

_SKIP = frozenset({"script", "style", "head", "title", "meta", "link", "noscript", "template",
                   "svg", "object", "iframe", "button", "select", "option", "map", "area"})
_BLOCK = frozenset({"p", "div", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5",
                    "h6", "blockquote", "pre", "hr", "dl", "dt", "dd", "section", "article",
                    "header", "footer", "address", "center", "form", "fieldset", "tbody",
                    "thead", "tfoot", "main", "nav", "aside", "figure", "body", "html"})
_CUT_IDS = ("divrplyfwdmsg", "appendonsend", "stopspelling", "mail-editor-reference-message",
            "reference-message-container", "ymail_android_signature_quote")
_CUT_CLASSES = ("outlookmessageheader", "yahoo_quoted", "moz-forward-container",
                "zmail_extra", "protonmail_quote", "gmail_quote_forward")
_QUOTE_CLASSES = ("gmail_quote", "moz-cite-prefix", "gmail_attr", "quote", "cite")
_SIGNATURE_MARKS = ("gmail_signature", "moz-signature", "signature", "ms-outlook-mobile-signature",
                    "applemailsignature")
_HIDDEN_RE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all", re.I)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_XML_DECL_RE = re.compile(r"^\s*<\?xml[^>]*>", re.I)
_WS_RE = re.compile(r"\s+")
_TAG_RE = re.compile(r"<[^>]{0,2000}>")
_MAX_DEPTH = 200


@dataclass
class _Out:
    """Lines being written, each with the quote depth it belongs to."""

    lines: list[tuple[int, str]] = field(default_factory=list)
    buf: list[str] = field(default_factory=list)
    depth: int = 0
    pre: int = 0
    cut: bool = False
    lists: list[list[int]] = field(default_factory=list)  # counters, -1 for unordered

    def text(self, s: str) -> None:
        if not s:
            return
        if self.pre:
            parts = s.split("\n")
            self.buf.append(parts[0])
            for p in parts[1:]:
                self.newline()
                self.buf.append(p)
            return
        s = _WS_RE.sub(" ", s)
        if s == " " and (not self.buf or self.buf[-1].endswith(" ")):
            return
        self.buf.append(s)

    def newline(self) -> None:
        line = "".join(self.buf)
        self.lines.append((self.depth, line if self.pre else line.strip()))
        self.buf = []

    def block(self) -> None:
        """End the current line if it has text (a block starts or ends here)."""
        if "".join(self.buf).strip():
            self.newline()
        else:
            self.buf = []

    def blank(self) -> None:
        self.block()
        self.lines.append((self.depth, ""))


def to_text(html: str) -> str:
    """Readable text of an HTML body; quoted parts as ``> `` lines, history after a cut line."""
    root = _parse(html)
    if root is None:
        return _WS_RE.sub(" ", _TAG_RE.sub(" ", html)).strip()
    out = _Out()
    _render(root, out, 0)
    out.block()
    return "\n".join(("> " * d + s) if s else (">" * d) for d, s in out.lines)


def _parse(html: str) -> etree._Element | None:
    html = _CONTROL_RE.sub("", _XML_DECL_RE.sub("", html))
    if not html.strip():
        return None
    try:
        parser = lxml.html.HTMLParser(remove_comments=True, remove_pis=True)
        return lxml.html.document_fromstring(html, parser=parser)
    except (etree.ParserError, ValueError, TypeError):
        return None


def _render(el: etree._Element, out: _Out, level: int) -> None:
    tag = el.tag.lower() if isinstance(el.tag, str) else ""
    if not tag or tag in _SKIP or _hidden(el):
        return
    if level > _MAX_DEPTH:
        out.text(" ".join(el.itertext()))
        return
    marks = _marks(el)
    if not out.cut and any(m in marks for m in _CUT_IDS + _CUT_CLASSES):
        # Everything from here on is history; it is still rendered (after the cut line) so
        # that the session token in the quoted agenda can be found.
        out.block()
        out.lines.append((out.depth, CUT_MARK))
        out.cut = True
    if any(m in marks for m in _SIGNATURE_MARKS):
        out.block()
        return
    _render_element(el, tag, marks, out, level)


def _render_element(el: etree._Element, tag: str, marks: str, out: _Out, level: int) -> None:
    quote = _is_quote(el, tag, marks)
    if tag in _BLOCK or quote:
        out.block()
    if quote:
        out.depth += 1
    if tag == "pre":
        out.pre += 1
    lines_before = len(out.lines)
    # Gmail keeps an inline answer inside its quote container: the header and the first
    # <blockquote> are the quote, what the sender wrote between later blockquotes is not.
    container = quote and tag == "div" and _answered_inside(el, marks)
    _open(el, tag, out)
    out.text(el.text or "")
    for child in el:
        _render(child, out, level + 1)
        if container and _is_blockquote(child):
            out.block()
            out.depth -= 1
            quote = container = False
        out.text(child.tail or "")
    _close(el, tag, out)
    if tag == "p" and len(out.lines) == lines_before and not "".join(out.buf).strip():
        out.blank()  # Outlook writes blank lines as empty paragraphs (<p>&nbsp;</p>)
    if tag == "pre":
        out.pre -= 1
    if tag in _BLOCK or quote:
        out.block()
    if quote:
        out.depth -= 1


def _open(el: etree._Element, tag: str, out: _Out) -> None:
    if tag == "br":
        out.newline()
    elif tag in ("ul", "ol"):
        out.lists.append([0 if tag == "ol" else -1])
    elif tag == "li":
        indent = "  " * max(0, len(out.lists) - 1)
        counter = out.lists[-1] if out.lists else [-1]
        if counter[0] >= 0:
            counter[0] += 1
            out.text(f"{indent}{counter[0]}. ")
        else:
            out.text(f"{indent}- ")
    elif tag in ("td", "th") and out.buf:
        out.text(" ")
    elif tag == "hr":
        out.block()


def _close(el: etree._Element, tag: str, out: _Out) -> None:
    if tag in ("ul", "ol") and out.lists:
        out.lists.pop()
    elif tag == "p" and "msonormal" not in (el.get("class") or "").lower():
        out.blank()
    elif tag in ("h1", "h2", "h3", "h4", "h5", "h6", "table"):
        out.blank()  # a table is its own block (Exchange puts "external sender" banners in one)


def _marks(el: etree._Element) -> str:
    """The element's id and class, lower-cased, for recognising client markup."""
    return f"{el.get('id') or ''} {el.get('class') or ''} {el.get('data-smartmail') or ''}".lower()


def _is_quote(el: etree._Element, tag: str, marks: str) -> bool:
    if tag == "blockquote":
        style = (el.get("style") or "").replace(" ", "").lower()
        indent_only = "border:none" in style and not (el.get("type") or el.get("class"))
        return not indent_only
    if tag == "div":
        return any(c in marks.split() for c in _QUOTE_CLASSES) or "gmail_quote" in marks
    return False


def _answered_inside(el: etree._Element, marks: str) -> bool:
    """A Gmail quote container (not a forward's) with a <blockquote> of its own."""
    if "gmail_quote" not in marks or "forward" in marks:
        return False
    if not any(_is_blockquote(c) for c in el):
        return False
    head = " ".join((el.text or "").split())
    for c in el:
        if _is_blockquote(c):
            break
        head += " " + " ".join(" ".join(c.itertext()).split()) + " " + (c.tail or "")
    return not lx.SEPARATOR_RE.search(head) and not lx.FORWARD_INTRO_RE.search(head.strip()[:200])


def _is_blockquote(el: etree._Element) -> bool:
    return isinstance(el.tag, str) and el.tag.lower() == "blockquote"


def _hidden(el: etree._Element) -> bool:
    style = el.get("style")
    return bool(style and _HIDDEN_RE.search(style)) or el.get("hidden") is not None
