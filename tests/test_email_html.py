"""Each kind of e-mail's HTML, as a phone and a desktop show it: headless Chromium lays every one
out at 375 and 1280 px and reports any horizontal overflow, a column wider than 600 px, or raw
template syntax; screenshots go to tests/screenshots/ (git-ignored) for a person to look at."""

from __future__ import annotations

import html
import json
import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from programme import Programme
from rmdaemon import compose
from test_colleague import ROSTER
from test_languages import GOLDEN_KINDS, LANGUAGES, _golden_context
from browser import FLAGS, chromium, distinct_glyphs
from prerequisites import CJK_FONTS, missing, partly_missing

SHOTS = Path(__file__).parent / "screenshots"
WIDTHS = {"phone": 375, "desktop": 1280}
T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)

PROBE = """<script>
window.addEventListener("load", () => {
  const found = [...document.querySelectorAll("iframe")].map(frame => {
    const doc = frame.contentDocument, root = doc.documentElement, card = doc.querySelector(".card");
    const text = doc.body ? doc.body.innerText : "";
    return {id: frame.id, scroll: root.scrollWidth, client: root.clientWidth,
            card: card ? card.getBoundingClientRect().width : null,
            raw: /\\{\\{|\\{%|%\\}|\\}\\}/.test(text), chars: text.length};
  });
  const out = document.createElement("pre"); out.id = "measured"; out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>"""


def _digest_html(tmp_path: Path) -> str:
    """A real digest: three weeks of a programme, as the champion gets it."""
    prog = Programme.create(tmp_path / "digest", roster=ROSTER)
    prog.run(T0)
    for kickoff in prog.outbox("kickoff"):
        prog.reply(kickoff, "YES", T0)
    prog.run(T0 + timedelta(hours=1))
    prog.run(T0 + timedelta(days=20))
    (digest,) = prog.outbox("digest")[:1]
    return digest.get_body(("html",)).get_content()


JAPANESE = "日本語のメールです"  # nine different kanji and kana


@pytest.fixture(scope="module")
def cjk(tmp_path_factory) -> bool:
    """Whether Chromium here has a font for Japanese: the screenshots of Japanese e-mails are
    worth looking at only then (one browser start to find out)."""
    found = distinct_glyphs(JAPANESE, tmp_path_factory.mktemp("glyphs"))
    return found["distinct"] == len(set(JAPANESE))


def test_japanese_is_drawn_in_a_cjk_font_not_as_empty_boxes(cjk, tmp_path):
    if not cjk:
        missing(CJK_FONTS, "every Japanese character is drawn as the same box")
    found = distinct_glyphs(JAPANESE, tmp_path)
    assert found == {"distinct": len(set(JAPANESE)), "inked": len(JAPANESE)}, found


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, str]:
    """kind/language → the e-mail's HTML part, for every kind in every language."""
    templates = compose.load_templates()
    found = {f"{kind}-{lang}": compose.render(templates, kind, _golden_context(templates, kind, lang), (lang,), "en").html
             for kind in GOLDEN_KINDS for lang in LANGUAGES}
    found["digest-en"] = _digest_html(tmp_path_factory.mktemp("programme"))
    return found


def _frame(page: str, width: int, height: int, name: str = "mail") -> str:
    """The e-mail in a frame exactly ``width`` px wide (headless windows have a minimum width, a
    phone is narrower), as a mail client's reading pane holds it."""
    return (f'<iframe id="{name}" style="display:block;width:{width}px;height:{height}px;border:0" '
            f'srcdoc="{html.escape(page, quote=True)}"></iframe>')


def _measure(pages: dict[str, str], width: int, where: Path) -> list[dict]:
    frames = "\n".join(_frame(page, width, 900, name) for name, page in pages.items())
    probe = where / f"probe-{width}.html"
    probe.write_text(f"<!DOCTYPE html><html><body style='margin:0'>{frames}{PROBE}</body></html>", encoding="utf-8")
    dom = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={where / 'profile'}", "--window-size=1400,900",
                          "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=300)
    assert dom.returncode == 0, dom.stderr[-2000:]
    measured = re.search(r'<pre id="measured">(.*?)</pre>', dom.stdout, re.S)
    assert measured, dom.stdout[-2000:]
    return json.loads(html.unescape(measured[1]))


@pytest.mark.parametrize("device", WIDTHS)
def test_every_email_fits_the_screen_with_no_raw_template_syntax(pages, tmp_path, device):
    width = WIDTHS[device]
    measured = _measure(pages, width, tmp_path)
    assert {m["id"] for m in measured} == set(pages)
    for m in measured:
        assert m["scroll"] <= m["client"], f"{m['id']} overflows at {width}px: {m['scroll']} > {m['client']}"
        assert m["card"] is not None and m["card"] <= 600, f"{m['id']}: the column is {m['card']}px wide"
        assert not m["raw"] and m["chars"] > 20, m


@pytest.mark.parametrize("device", WIDTHS)
def test_screenshots_of_each_kind(pages, cjk, tmp_path, device):
    """One screenshot per kind (English) and the Japanese agenda, invitation and digest, for a person
    to look at: tests/screenshots/<device>/<kind>-<lang>.png (the Japanese ones only where a CJK
    font draws them)."""
    width = WIDTHS[device]
    folder = SHOTS / device
    folder.mkdir(parents=True, exist_ok=True)
    japanese = ["agenda-ja", "invitation-ja", "digest-ja"]
    if not cjk:
        partly_missing(CJK_FONTS, "the Japanese screenshots")
        japanese = []
    for name in [f"{kind}-en" for kind in GOLDEN_KINDS] + japanese:
        page = tmp_path / f"{name}.html"
        page.write_text(f"<!DOCTYPE html><html><body style='margin:0'>{_frame(pages[name], width, 1400)}</body></html>",
                        encoding="utf-8")
        shot = folder / f"{name}.png"
        run = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                              f"--window-size={max(width, 500)},1400", f"--screenshot={shot}", page.as_uri()],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr[-2000:]
        assert shot.read_bytes().startswith(b"\x89PNG")
