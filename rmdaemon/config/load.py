"""Finding, reading and checking config.toml, and building the frozen ``Settings``.

``load_settings`` walks the TOML against ``schema.OPTIONS``, collects *every* problem (unknown
keys with a did-you-mean, wrong types, secrets, cross-key rules) with its line, and only then
builds the frozen dataclasses, so the rest of the code never touches a raw dict.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rmdaemon.config.backend_sections import BY_KIND, LocalBackendSettings
from rmdaemon.config.convert import REQUIRED, SameAs, toml_quote
from rmdaemon.config.parse import FileTooLarge, Invalid, did_you_mean, display_path, read_bounded
from rmdaemon.config.schema import BACKEND_KINDS, OPTIONS, SECTIONS, available_backends, options_by_section, table_names
from rmdaemon.config.values import (
    BackendSettings,
    DigestSettings,
    NudgeSettings,
    PrivacySettings,
    ProgramSettings,
    ScheduleSettings,
    SecuritySettings,
    Settings,
)
from rmdaemon.errors import UserError

CONFIG_ENV = "RMDAEMON_CONFIG"
DEFAULT_CONFIG = "rmdaemon.toml"
MAX_CONFIG_BYTES = 1024 * 1024  # a real config is a few KB


def find_config(arg: str | None) -> Path:
    """``--config``, else ``$RMDAEMON_CONFIG``, else ``./rmdaemon.toml``; it must exist."""
    if arg:
        path, source = Path(arg), "given with --config"
    elif os.environ.get(CONFIG_ENV):
        path, source = Path(os.environ[CONFIG_ENV]), f"from ${CONFIG_ENV}"
    else:
        path, source = Path(DEFAULT_CONFIG), "the default"
    path = path.expanduser()
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a config file ({source}); give the .toml file in it")
    if not path.is_file():
        fix = ("check the path" if source != "the default" else
               f"give --config PATH or set ${CONFIG_ENV}, or start one here with: rmdaemon init .")
        raise UserError(f"not found: {path} (the config file, {source}); {fix}")
    return path


def _read_text(path: Path) -> str:
    name = display_path(path)
    try:
        data = read_bounded(path, MAX_CONFIG_BYTES)
    except OSError as exc:
        raise UserError(f"cannot read {name}", [f"{name}: {exc.strerror}; check the path and its permissions"]) from None
    except FileTooLarge as exc:
        raise UserError(f"{name} is too large", [f"{name}: {exc}; is --config pointing at the right file?"]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(f"{name} is not UTF-8", [f"{name}: line {line}: byte {exc.start} is not UTF-8; save the file as UTF-8"]) from None


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        name = display_path(path)
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        reason = re.sub(r"\s*\(at line.*\)$", "", str(exc)) or "invalid TOML"
        where = f"line {found[1]}, column {found[2]}: " if found else ""
        raise UserError(f"{name} is not valid TOML", [f"{name}: {where}TOML syntax error: {reason}; fix the syntax there"]) from None


# --- collecting problems ------------------------------------------------------------------


def _line_of(lines: list[str], section: str, key: str | None) -> int | None:
    """Best-effort line number of ``key`` under ``[section]`` (or of the header itself)."""
    header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(map(re.escape, section.split("."))) + r"\s*\]") if section else None
    key_line = re.compile(r'^\s*"?' + re.escape(key or "") + r'"?\s*=') if key else None
    inside = header is None
    for number, line in enumerate(lines, start=1):
        if header is not None and header.match(line):
            if key_line is None:
                return number
            inside = True
        elif re.match(r"^\s*\[", line):
            inside = False
        elif inside and key_line is not None and key_line.match(line):
            return number
    if key:  # dotted keys or inline tables: any line that assigns the key
        anywhere = re.compile(r'(^|[\s{,.])"?' + re.escape(key) + r'"?\s*=')
        return next((n for n, line in enumerate(lines, start=1) if anywhere.search(line)), None)
    return None


@dataclass
class _Report:
    """Problems found so far, each with its best-effort line; raised all at once."""

    path: Path
    lines: list[str]
    found: list[tuple[int | None, str]] = field(default_factory=list)

    def add(self, section: str, key: str | None, message: str, *, locate: bool = True) -> None:
        where = f"[{section}] {key}" if section and key else f"[{section}]" if section else str(key)
        line = _line_of(self.lines, section, key) if locate else None
        self.found.append((line, f"{where}: {message}"))

    def raise_if_any(self) -> None:
        if not self.found:
            return
        name = display_path(self.path)
        ordered = sorted(self.found, key=lambda item: item[0] or sys.maxsize)
        problems = [f"{name}: line {line}: {text}" if line else f"{name}: {text}" for line, text in ordered]
        plural = "" if len(problems) == 1 else "s"
        raise UserError(f"{name} has {len(problems)} problem{plural}", problems)


_SECRET_KEY = re.compile(r"pass(word|wd|phrase)|secret|token|api_?key|credential", re.IGNORECASE)


def _find_secrets(table: Mapping[str, Any], section: str, report: _Report) -> None:
    """A key like ``password`` holding a value: secrets belong in the environment or a file."""
    for key, value in table.items():
        if isinstance(value, dict):
            _find_secrets(value, f"{section}.{key}" if section else key, report)
        elif _is_secret(key, value):
            report.add(section, key, f"secrets never go in the config file; put it in an environment variable "
                                     f'and name that instead: {key}_env = "RMDAEMON_{key.upper()}" (or {key}_file = "/path/to/file")')


def _is_secret(key: str, value: Any) -> bool:
    named = bool(_SECRET_KEY.search(key)) and not key.endswith(("_env", "_file"))
    return named and isinstance(value, str) and bool(value.strip())


def _collect(table: Mapping[str, Any], section: str, report: _Report, into: dict[tuple[str, str], Any]) -> None:
    """Walk one table: known keys go ``into``, sub-tables recurse, anything else is a problem."""
    options, tables = options_by_section(), table_names()
    for key, value in table.items():
        name = f"{section}.{key}" if section else key
        if _is_secret(key, value):
            continue  # reported by _find_secrets
        if name in tables:
            if isinstance(value, dict):
                _collect(value, name, report, into)
            else:
                report.add(section, key, f"expected a table [{name}], got {toml_quote(value)}")
        elif key in options.get(section, {}):
            into[(section, key)] = value
        else:
            _unknown(section, key, value, report)
            if not section:
                into[("", key)] = value  # a stray key; its "missing" twin is not reported again


def _unknown(section: str, key: str, value: Any, report: _Report) -> None:
    name = f"{section}.{key}" if section else key
    if section == "backend" and key in BACKEND_KINDS:
        usable = ", ".join(f"[backend.{k}]" for k in available_backends())
        report.add(name, None, f"backend kind {key!r} is not available in this version; remove this table (available: {usable})")
    elif not section and isinstance(value, dict):
        hint = did_you_mean(f"[{key}]", [f"[{s}]" for s in SECTIONS]) or f"; known sections: {', '.join(SECTIONS)}"
        report.add(key, None, f"unknown section{hint}")
    elif not section:
        homes = [s for s, keys in options_by_section().items() if key in keys]
        hint = f"; move it under [{homes[0]}]" if homes else f"; keys belong in a section: {', '.join(SECTIONS)}"
        report.add("", key, f"key outside any section{hint}")
    else:
        known = [*options_by_section().get(section, {}), *(t.rsplit(".", 1)[1] for t in SECTIONS if t.startswith(section + "."))]
        hint = did_you_mean(key, known) or f"; known keys: {', '.join(known)}"
        report.add(section, key, f"unknown key{hint}")


# --- converting and cross-checking ---------------------------------------------------------


def _section_active(section: str, raw: Mapping[tuple[str, str], Any]) -> bool:
    """``[backend.<kind>]`` only matters when ``kind`` names it; every other section always does."""
    if not section.startswith("backend."):
        return True
    return bool(section.split(".", 1)[1] == raw.get(("backend", "kind"), "local"))


def _convert(raw: Mapping[tuple[str, str], Any], base: Path, report: _Report) -> dict[str, dict[str, Any]]:
    """Every option → its typed value (defaults converted like input); problems into ``report``."""
    values: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for option in OPTIONS:
        given = (option.section, option.key) in raw
        value = raw[(option.section, option.key)] if given else option.default
        if value is REQUIRED:
            if _section_active(option.section, raw) and ("", option.key) not in raw:
                report.add(option.section, option.key, f"missing; add {option.key} = {option.example}", locate=False)
            continue
        if value is None or isinstance(value, SameAs):
            values[option.section][option.key] = value
            continue
        try:
            values[option.section][option.key] = option.convert.parse(value, base)
        except Invalid as exc:
            report.add(option.section, option.key, exc.render(toml_quote))
    for section in values.values():
        for key, value in section.items():
            if isinstance(value, SameAs):
                section[key] = section.get(value.key)
    return values


def _check_rules(raw: Mapping[tuple[str, str], Any], values: dict[str, dict[str, Any]], report: _Report) -> None:
    """Rules that span keys; judged on what the user wrote, so one typo is not reported twice."""
    has_sessions, has_end = ("program", "sessions") in raw, ("program", "end_date") in raw
    if has_sessions and has_end:
        report.add("program", "end_date", "set either sessions or end_date, not both; remove one of them")
    elif not has_sessions and not has_end:
        report.add("program", None, "set how long the programme runs: sessions = 6 or end_date = 2027-06-30")
    start, end = values["program"].get("start_date"), values["program"].get("end_date")
    if start and end and end < start:
        report.add("program", "end_date", f"end_date {end} is before start_date {start}; move one of them")
    kind = values["backend"].get("kind")
    if kind and kind not in available_backends():
        usable = " or ".join(f'"{k}"' for k in available_backends())
        report.add("backend", "kind", f"backend kind {kind!r} is not available in this version; use kind = {usable}")
    _check_prune_window(values, report)
    if values["security"].get("trust_authentication_results") and not values["security"].get("authserv_id"):
        report.add("security", "authserv_id", "is needed with trust_authentication_results = true: set it to the name "
                   "your mail server writes first in its Authentication-Results headers, e.g. \"mx.example.com\"")


MIN_PRUNE_DAYS = 30  # a copy of a handled message or a late reply can still turn up weeks later


def _check_prune_window(values: dict[str, dict[str, Any]], report: _Report) -> None:
    """A pruning window must outlast everything that could make a pruned key or id matter again:
    an agenda's lead time, a log's window and a month for delayed or re-delivered mail."""
    days = values["storage"].get("prune_after_days")
    lead, window = values["program"].get("agenda_lead_hours"), values["nudges"].get("log_window_hours")
    if not days or lead is None or window is None:
        return
    needed = max(MIN_PRUNE_DAYS, math.ceil((lead + window) / 24) + 7)
    if days < needed:
        report.add("storage", "prune_after_days", f"{days} days is shorter than the {needed} days rmdaemon must "
                   f"remember sent keys and read messages so nothing is sent or read twice; set "
                   f"prune_after_days = {needed} or more, or 0 to never prune")


STATE_FILES = {"exchange": "exchange-state.json", "smtp": "smtp-state.jsonl", "graph": "graph-state.json",
               "google": "google-state.json"}


def _backend_values(kind: str, values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``[backend.<kind>]`` with the defaults that come from other sections filled in."""
    section = dict(values[f"backend.{kind}"])
    if kind in STATE_FILES and section["state_path"] is None:
        section["state_path"] = values["storage"]["path"].with_name(STATE_FILES[kind])
    if kind == "exchange":
        section |= {"mailbox": values["program"]["organizer"], "timezone": values["program"]["timezone"]}
    if kind == "graph" and section["mailbox"] is None:
        section["mailbox"] = values["program"]["organizer"]
    if kind == "google" and section["user"] is None:
        section["user"] = values["program"]["organizer"]
    return section


def _build_backend(values: dict[str, dict[str, Any]]) -> BackendSettings:
    """``[backend.local]`` is always built (all its keys have defaults), the chosen kind's section besides."""
    kind = values["backend"]["kind"]
    chosen = {} if kind == "local" else {kind: BY_KIND[kind](**_backend_values(kind, values))}
    return BackendSettings(kind=kind, local=LocalBackendSettings(**values["backend.local"]), **chosen)


def _build(path: Path, values: dict[str, dict[str, Any]]) -> Settings:
    schedule = dict(values["schedule"])
    tick = schedule.pop("tick_seconds")
    return Settings(
        config_path=path,
        program=ProgramSettings(**values["program"]),
        roster_path=values["roster"]["path"],
        templates_dir=values["templates"]["dir"],
        storage_path=values["storage"]["path"],
        backend=_build_backend(values),
        schedule=ScheduleSettings(tick_seconds=tick, jobs=schedule),
        nudges=NudgeSettings(**values["nudges"]),
        digest=DigestSettings(**values["digest"]),
        privacy=PrivacySettings(**values["privacy"]),
        security=SecuritySettings(**values["security"]),
        prune_after_days=values["storage"]["prune_after_days"],
    )


def load_settings(path: Path) -> Settings:
    """Read, validate and freeze the config; every problem is reported in one UserError."""
    text = _read_text(path)
    table = _parse_toml(path, text)
    report = _Report(path, text.splitlines())
    raw: dict[tuple[str, str], Any] = {}
    _find_secrets(table, "", report)
    _collect(table, "", report, raw)
    values = _convert(raw, path.resolve().parent, report)
    _check_rules(raw, values, report)
    report.raise_if_any()
    return _build(path.resolve(), values)
