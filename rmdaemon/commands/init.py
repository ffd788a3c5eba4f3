"""``rmdaemon init DIR [--templates]``: a working starting point from the installed package alone —
the commented example config (as ``rmdaemon.toml``), the example roster, the data folders of the
local backend and, to customise, a copy of the shipped templates. Nothing that exists is touched.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from rmdaemon import compose
from rmdaemon.errors import UserError

CONFIG_NAME = "rmdaemon.toml"
ROSTER_NAME = "roster.csv"
TEMPLATES_NAME = "templates"
# The example config as shipped names the checkout's files; in DIR they sit beside the config.
EDITS = (
    ('path = "examples/roster.csv"', f'path = "{ROSTER_NAME}"'),
    ("# Copy it to start your own:  cp config.example.toml rmdaemon.toml",
     "# Written by 'rmdaemon init'; after editing it, run: rmdaemon check"),
)
TEMPLATES_EDIT = ('# dir = "my-templates"', f'dir = "{TEMPLATES_NAME}"')
MAILDIRS = ("var/outbox", "var/inbox")


def example(name: str) -> str:
    """A file of the package's examples/ (the example config and roster)."""
    return (resources.files("rmdaemon") / "examples" / name).read_text(encoding="utf-8")


def config_text(with_templates: bool) -> str:
    text = example("config.example.toml")
    for old, new in (*EDITS, *((TEMPLATES_EDIT,) if with_templates else ())):
        if old not in text:  # the example changed: keep this in step (tests/test_install.py notices)
            raise RuntimeError(f"config.example.toml no longer contains {old!r}")
        text = text.replace(old, new, 1)
    return text


def init(target: Path, *, templates: bool = False) -> list[str]:
    """Write what is missing under ``target``; return one line per file or folder, written or kept."""
    if target.exists() and not target.is_dir():
        raise UserError(f"{target}: exists and is not a folder; give a new or existing folder to 'rmdaemon init'")
    target.mkdir(parents=True, exist_ok=True)
    files = {CONFIG_NAME: config_text(templates), ROSTER_NAME: example("roster.csv")}
    lines = [_write(target / name, text) for name, text in files.items()]
    if templates:
        root = compose.shipped_templates()
        shipped = [p for p in sorted(root.rglob("*")) if p.is_file()]  # with the translations' folders (de/, ja/, ...)
        done = [_write(target / TEMPLATES_NAME / p.relative_to(root), p.read_text(encoding="utf-8")) for p in shipped]
        kept = [line for line in done if line.startswith("kept")]
        lines.append(f"wrote {len(done) - len(kept)} templates to {target / TEMPLATES_NAME}")
        lines += kept
    for maildir in MAILDIRS:  # the state and the mail hold private notes: only the daemon's user reads them
        for sub in ("new", "cur", "tmp"):
            (target / maildir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(target / "var", 0o700)
    lines.append(f"data folder {target / 'var'} (state file and the local backend's Maildirs)")
    return lines


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as f:  # "x": never overwrite, even racing another init
            f.write(text)
    except FileExistsError:
        return f"kept {path} (exists; not overwritten)"
    return f"wrote {path}"


def next_steps(target: Path) -> str:
    config = target / CONFIG_NAME
    return (f"next: edit {config} and {target / ROSTER_NAME}, then\n"
            f"  rmdaemon --config {config} check\n"
            f"  rmdaemon --config {config} run --dry-run")
