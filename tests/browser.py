"""The HTML report opened in a real headless Chromium, as the champion opens it: screenshots to
look at, and what the browser laid out, measured by a probe script the test adds to a copy (the
report itself has no script).

Screenshots go to ``var/screenshots/`` in the checkout (git-ignored), named by the test, so a
person can open them after a run; the test prints where.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from prerequisites import CHROMIUM, missing

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "var" / "screenshots"
A4_PX = 794  # 210 mm at 96 px per inch: the width a page is printed at
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")

# Every chart slot (a drawn chart or its one-line notice) and everything wider than the page.
PROBE = """<script>
const slots = [...document.querySelectorAll("[data-chart]")].map(el => {
  const svg = el.querySelector("svg"), box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const bars = svg ? [...svg.querySelectorAll("rect.rect")].filter(r => {
    const b = r.getBBox(); return b.width > 0 && b.height > 0; }).length : 0;
  return {chart: el.dataset.chart, width: box.width, height: box.height, bars,
          notice: svg ? "" : el.textContent.trim()};
});
const page = document.documentElement.clientWidth;
const wide = [...document.body.querySelectorAll("*")].filter(el => !el.closest("svg") || el.tagName === "svg")
  .filter(el => el.getBoundingClientRect().right > page + 1)
  .map(el => el.tagName + (el.id ? "#" + el.id : "") + " " + Math.round(el.getBoundingClientRect().right));
const out = document.createElement("pre"); out.id = "measured";
out.textContent = JSON.stringify({slots, wide, page, scroll: document.documentElement.scrollWidth});
document.body.appendChild(out);
</script>"""


# Each character drawn on a canvas in the page's default sans-serif: without a font that has the
# script, Chromium draws the same empty box (tofu) for every one of them.
GLYPHS_PROBE = """<!DOCTYPE html><html lang="ja"><body><script>
const canvas = document.createElement("canvas"); canvas.width = canvas.height = 64;
const pen = canvas.getContext("2d");
const drawn = [...CHARS].map(ch => {
  pen.clearRect(0, 0, 64, 64); pen.font = "48px sans-serif"; pen.fillText(ch, 4, 52);
  return pen.getImageData(0, 0, 64, 64).data.join("");
});
const out = document.createElement("pre"); out.id = "measured";
out.textContent = JSON.stringify({distinct: new Set(drawn).size, inked: drawn.filter(d => /[1-9]/.test(d)).length});
document.body.appendChild(out);
</script></body></html>"""


def distinct_glyphs(text: str, work: Path) -> dict:
    """How many of ``text``'s characters Chromium draws differently ({distinct, inked}): all of
    them when a font has the script, one (the tofu box) when none does. One browser start."""
    probe = work / "glyphs.html"
    probe.write_text(GLYPHS_PROBE.replace("CHARS", json.dumps(text)), encoding="utf-8")
    dom = _run([chromium(), *FLAGS, f"--user-data-dir={work / 'profile'}", "--dump-dom", probe.as_uri()])
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stdout[-2000:]
    return json.loads(found[1].replace("&quot;", '"'))


def chromium() -> str:
    found = shutil.which("chromium")
    if not found:
        missing(CHROMIUM)
    return found


def _run(args: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def screenshot(page: str, name: str, work: Path, width: int = 1280, height: int = 2400) -> Path:
    """The report as the browser shows it at ``width``, saved as ``var/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    source, target = work / f"{name}.html", SCREENSHOTS / f"{name}.png"
    source.write_text(page)
    _run([chromium(), *FLAGS, f"--user-data-dir={work / 'profile'}", f"--window-size={width},{height}",
          f"--screenshot={target}", source.as_uri()])
    png = target.read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    print(f"screenshot: {target}")
    return target


def measure(page: str, work: Path, width: int) -> dict:
    """The chart slots and the overflowing elements at a window ``width`` px wide."""
    probe = work / f"probe-{width}.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = _run([chromium(), *FLAGS, f"--user-data-dir={work / 'profile'}", f"--window-size={width},2000",
                "--dump-dom", probe.as_uri()])
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stdout[-2000:]
    return json.loads(found[1].replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def print_pdf(page: str, work: Path) -> bytes:
    """The report printed (``@page`` A4) to PDF."""
    source, target = work / "print.html", work / "report.pdf"
    source.write_text(page)
    _run([chromium(), *FLAGS, f"--user-data-dir={work / 'profile'}", "--no-pdf-header-footer",
          f"--print-to-pdf={target}", source.as_uri()])
    return target.read_bytes()


def check_layout(page: str, work: Path) -> dict[str, dict]:
    """Lay the page out on a screen and at A4 width: nothing wider than the page, and every chart
    slot either a drawn chart with bars or one line saying why there is none. Returns the slots."""
    slots: dict[str, dict] = {}
    for width in (1280, A4_PX):
        found = measure(page, work, width)
        assert found["wide"] == [] and found["scroll"] <= found["page"], (width, found["wide"])
        slots = {s["chart"]: s for s in found["slots"]}
        for name, slot in slots.items():
            drawn = slot["bars"] > 0 and slot["width"] > 200 and slot["height"] > 100
            assert drawn != bool(slot["notice"]), (width, name, slot)
            assert not slot["notice"] or len(slot["notice"].splitlines()) == 1, (name, slot["notice"])
    return slots
