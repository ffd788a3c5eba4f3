"""docs/config-reference.md, rendered from the option table so the doc cannot drift from the code.

``python -m rmdaemon.config --reference > docs/config-reference.md`` regenerates it; a test
compares the file with ``reference_markdown()``.
"""

from __future__ import annotations

import sys

from rmdaemon.config.convert import REQUIRED, Option, SameAs, toml_quote
from rmdaemon.config.schema import BACKEND_KINDS, SECTIONS, available_backends, options_by_section


def _default_text(option: Option) -> str:
    if option.default is REQUIRED:
        return "**required**"
    if option.default is None:
        return "not set"
    if isinstance(option.default, SameAs):
        return f"same as `{option.default.key}`"
    return f"`{toml_quote(option.default)}`"


def reference_markdown() -> str:
    """docs/config-reference.md, rendered from OPTIONS so it cannot drift from the code."""
    out = [
        "# Configuration reference",
        "",
        "Generated from the option table in `rmdaemon/config/` by `python -m rmdaemon.config --reference`; do not edit by hand.",
        "",
        "Relative paths are relative to the config file. Secrets never go in the file: a key such as",
        "`password` holding a value is refused; name an environment variable (`password_env`) or a file",
        "(`password_file`) instead. Unknown sections and keys are errors. `rmdaemon check` reports every",
        "problem at once, with its line.",
    ]
    grouped = options_by_section()
    for section, about in SECTIONS.items():
        out += ["", f"## [{section}]", "", about, "", "| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for option in grouped.get(section, {}).values():
            out.append(f"| `{option.key}` | {option.convert.expects} | {_default_text(option)} | {option.help} |")
    out += ["", "`[program]` needs exactly one of `sessions` and `end_date`; `end_date` may not be before `start_date`.",
            f"`[backend] kind` accepts {', '.join(BACKEND_KINDS)}; available in this version: {', '.join(available_backends())}."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["--reference"]:
        print("usage: python -m rmdaemon.config --reference", file=sys.stderr)
        return 2
    sys.stdout.write(reference_markdown())
    return 0
