"""``rmdaemon check``: every problem in config, roster and templates at once, then (``--online``)
one real request to the backend. Returns problems instead of raising so nothing hides another."""

from __future__ import annotations

from rmdaemon import compose, roster
from rmdaemon.backends.factory import open_backend
from rmdaemon.clock import system_clock
from rmdaemon.config import find_config, load_settings
from rmdaemon.errors import UserError


def check_all(config_arg: str | None, *, online: bool = False) -> tuple[list[str], str]:
    try:
        settings = load_settings(find_config(config_arg))
    except UserError as e:
        return (e.problems or [e.message]), ""
    problems: list[str] = []
    pairs, roster_problems = roster.read_roster(settings.roster_path, settings.program)
    problems += roster_problems
    problems += compose.check_templates(settings.templates_dir)
    if online and not problems:
        try:
            backend = open_backend(settings, system_clock)
        except UserError as e:
            problems.append(str(e))
        else:
            try:
                problems += backend.check_online()
            finally:
                backend.close()
    active = sum(1 for p in pairs if p.status == "active")
    summary = (f"{settings.config_path}: OK — {len(pairs)} pairs ({active} active), backend {settings.backend.kind}"
               + (", online check passed" if online else ""))
    return problems, summary
