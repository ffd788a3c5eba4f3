"""Command line: parse arguments, call one function, present errors. Nothing else lives here.

``main`` is the one place a UserError becomes a message and exit code 2; anything else is a bug
and gets its traceback with a request to report it (exit 1).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from rmdaemon import __version__, logsetup
from rmdaemon.clock import fixed_clock, parse_now, system_clock
from rmdaemon.errors import UserError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; route it through UserError's wording
        raise UserError(f"{self.prog}: {message} (see '{self.prog} --help')")


def _global_options(defaults: bool) -> argparse.ArgumentParser:
    """--config and --verbose, accepted before or after the subcommand. After it they default to
    'not given' so they do not undo the same option given before it."""
    p = argparse.ArgumentParser(add_help=False)
    unset = {} if defaults else {"default": argparse.SUPPRESS}
    p.add_argument("--config", help="config file (default: $RMDAEMON_CONFIG, then ./rmdaemon.toml)", **unset)
    p.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr", **unset)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rmdaemon", description="Runs a reverse-mentoring programme over mail and calendar.",
                parents=[_global_options(defaults=True)])
    p.add_argument("--version", action="version", version=f"rmdaemon {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _commands(sub, _global_options(defaults=False))
    return p


def _commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    def add(name: str, **kw: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kw)

    c = add("check", help="validate config, roster and templates")
    c.add_argument("--online", action="store_true", help="also make one authenticated request to the backend")
    r = add("run", help="run the daemon (forever, or --once)")
    r.add_argument("--once", action="store_true", help="run every job once and exit")
    r.add_argument("--dry-run", action="store_true", help="print what would be booked and sent; change nothing")
    r.add_argument("--now", help="pin the clock (ISO 8601 with offset); implies --once")
    s = add("status", help="each pair's state, next session, sessions held")
    s.add_argument("--json", action="store_true")
    s.add_argument("--now", help="the moment to report for (default: now)")
    v = add("preview", help="print the next agenda email of a pair as it would be sent")
    v.add_argument("pair_id")
    v.add_argument("--now")
    e = add("export", help="write a pair's series as an .ics file")
    e.add_argument("pair_id")
    e.add_argument("--ics", action="store_true", required=True, help="iCalendar format (the only one)")
    e.add_argument("--out", help="file to write (default: standard output)")
    rp = add("report", help="programme outcomes: summary and per-pair table (md, csv, or html with charts)")
    rp.add_argument("--format", choices=("md", "html", "csv"), default="md", help="default: md")
    rp.add_argument("--out", help="file to write (default: standard output)")
    rp.add_argument("--since", help="first day of the period, YYYY-MM-DD (default: the programme's start)")
    rp.add_argument("--until", help="first day after the period, YYYY-MM-DD (default: now)")
    rp.add_argument("--now", help="the moment to report for (default: now)")
    rp.add_argument("--track", help="only the pairs of this roster track (e.g. technology)")
    rp.add_argument("--cohort", help="only the pairs of this roster cohort")
    rp.add_argument("--table", choices=("pairs", "figures"), default="pairs",
                    help="CSV only: one row per pair (default) or the programme's figures, one per row")
    u = add("purge", help="delete everything stored about a pair (notes, logs, sessions)")
    u.add_argument("--pair", required=True, dest="pair_id")
    q = add("quarantine", help="list, read, release or delete the mail the inbox set aside")
    verbs = q.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    verbs.add_parser("list", parents=[common], help="every quarantined message with its ID and reason")
    for verb, what in (("show", "print one message's reason, headers and text"),
                       ("release", "handle it as sent by the pair's member (you vouch for it; recorded)"),
                       ("delete", "remove its bytes (the inbox row stays, saying so)")):
        one = verbs.add_parser(verb, parents=[common], help=what)
        one.add_argument("id", metavar="ID", help="as 'quarantine list' shows it (its first 4 characters or more)")
    verbs.choices["release"].add_argument("--pair", dest="pair_id", help="the pair it belongs to (default: the one it names)")
    b = add("backup", help="write a consistent copy of the state (and the installation's secret) while the daemon runs")
    b.add_argument("--out", required=True, help="the archive to write (.tar.gz)")
    i = add("init", help="write a commented config, an example roster and the data folders into DIR (never overwrites)")
    i.add_argument("dir", metavar="DIR")
    i.add_argument("--templates", action="store_true", help="also copy the shipped templates there, to customise")
    pr = add("parse-reply", help="parse one reply email offline and print what was understood")
    pr.add_argument("file")
    pr.add_argument("--json", action="store_true")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        logsetup.configure(args.verbose)  # stderr, no credentials (not even with --verbose)
        return COMMANDS[args.command](args)
    except UserError as e:
        print(f"rmdaemon: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:  # `rmdaemon status | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush is quiet too
        return EXIT_OK
    except Exception:  # noqa: BLE001 — a bug, not a user mistake: show it whole
        logging.getLogger("rmdaemon").exception("unexpected failure; please report this with the traceback")
        return EXIT_FAILURE


def _settings(args: argparse.Namespace):
    from rmdaemon.config import find_config, load_settings

    return load_settings(find_config(args.config))


def cmd_check(args: argparse.Namespace) -> int:
    from rmdaemon.commands.checks import check_all

    problems, warnings, summary = check_all(args.config, online=args.online)
    if problems:
        print(f"{len(problems)} problem(s):")
        print("\n".join(f"  - {p}" for p in problems))
    else:
        print(summary)
    if warnings:
        print(f"{len(warnings)} warning(s):")
        print("\n".join(f"  - warning: {w}" for w in warnings))
    return EXIT_USAGE if problems else EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from rmdaemon import daemon

    settings = _settings(args)
    clock = fixed_clock(parse_now(args.now)) if args.now else system_clock
    if args.once or args.now or args.dry_run:
        results = daemon.run_once(settings, clock, dry_run=args.dry_run)
        print(_summary(results, clock(), dry_run=args.dry_run))
        return _run_exit(results)
    daemon.run_forever(settings, clock)
    return EXIT_OK


def _run_exit(results: list) -> int:
    """2 when a template could not be rendered for some pair (the admin's to fix; nothing of that
    email was sent), so a script running --once notices. A job that failed otherwise is retried
    with back-off and shown by 'status' and the health check (docs/production.md): exit 0."""
    return EXIT_USAGE if any(r.counts.get("template errors") for r in results) else EXIT_OK


def _summary(results: list, now, *, dry_run: bool = False) -> str:
    """Only what happened: a quiet tick says so in one line. A dry run says 'would' throughout."""
    lines = []
    for r in results:
        if r.counts or r.lines:
            counts = ", ".join(f"{n} {what}" for what, n in sorted(r.counts.items()))
            lines.append(f"{r.name}: {counts}")
            lines += [f"  {line}" for line in r.lines]
    text = "\n".join(lines)
    if dry_run:
        text = re.sub(r"\b(sent|booked)\b", r"would be \1", text)
    head = f"rmdaemon {'dry run' if dry_run else 'run'} at {now.isoformat(timespec='minutes')}"
    if not lines:
        return f"{head}: nothing to do"
    return f"{head}{': nothing below is sent, booked or written' if dry_run else ''}\n{text}"


def cmd_status(args: argparse.Namespace) -> int:
    from rmdaemon import daemon, roster
    from rmdaemon.commands import status
    from rmdaemon.store import Store

    settings = _settings(args)
    now = parse_now(args.now) if args.now else system_clock()
    pairs = roster.load_roster(settings.roster_path, settings.program)
    with Store.open(settings.storage_path, writer=False) as store:
        rows = status.pair_rows(store, pairs, settings, now)
        extra = status.summary(store, [name for name, _ in daemon.JOBS])
    if args.json:
        print(json.dumps({"now": now.isoformat(), "pairs": rows, **extra}, indent=2))
    else:
        print(status.render_table(rows))
        print("\n" + status.render_jobs(extra, settings.program.timezone))
    return EXIT_OK


def cmd_preview(args: argparse.Namespace) -> int:
    from rmdaemon.commands.preview import preview

    settings = _settings(args)
    now = parse_now(args.now) if args.now else system_clock()
    sys.stdout.write(preview(settings, args.pair_id, now))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from rmdaemon.commands.preview import export_ics

    data = export_ics(_settings(args), args.pair_id, system_clock())
    if args.out:
        Path(args.out).write_bytes(data)
    else:
        sys.stdout.buffer.write(data)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from rmdaemon import report

    now = parse_now(args.now) if args.now else system_clock()
    text = report.build(_settings(args), args.format, now, since=args.since, until=args.until, track=args.track,
                        cohort=args.cohort, table=args.table)
    if args.out:
        report.write(text, args.out)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_purge(args: argparse.Namespace) -> int:
    from rmdaemon.commands.purge import purge

    print(purge(_settings(args), args.pair_id))
    return EXIT_OK


def cmd_quarantine(args: argparse.Namespace) -> int:
    from rmdaemon.commands import quarantine

    settings = _settings(args)
    if args.verb == "list":
        print("\n".join(quarantine.list_lines(settings)))
    elif args.verb == "show":
        sys.stdout.write(quarantine.show(settings, args.id))
    elif args.verb == "release":
        print(quarantine.release(settings, args.id, args.pair_id, system_clock))
    else:
        print(quarantine.delete(settings, args.id, system_clock()))
    return EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    from rmdaemon.commands.backup import backup

    print(backup(_settings(args), Path(args.out).expanduser(), system_clock()))
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    from rmdaemon.commands.init import init, next_steps

    target = Path(args.dir).expanduser()
    print("\n".join(init(target, templates=args.templates)))
    print(next_steps(target))
    return EXIT_OK


def cmd_parse_reply(args: argparse.Namespace) -> int:
    from rmdaemon.replies import parse_reply, to_contract_json

    try:
        raw = Path(args.file).read_bytes()
    except OSError as e:
        raise UserError(f"{args.file}: cannot read ({e.strerror}); give the path of a saved .eml file") from None
    data = to_contract_json(parse_reply(raw))
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for key, value in data.items():
            print(f"{key}: {value}")
    return EXIT_OK


COMMANDS = {
    "check": cmd_check, "run": cmd_run, "status": cmd_status, "preview": cmd_preview,
    "export": cmd_export, "report": cmd_report, "purge": cmd_purge, "parse-reply": cmd_parse_reply,
    "init": cmd_init, "quarantine": cmd_quarantine, "backup": cmd_backup,
}
