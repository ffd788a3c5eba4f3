"""`make mutate`: mutation testing of the modules that hold the programme's promises, one at a time.

Each promise below names the code that keeps it (whole files, or only the functions in them that do)
and the test files that exercise it. A run copies the checkout into ``var/mutate/<promise>/`` with
a ``[tool.mutmut]`` section naming only those files and tests, so mutmut's stats pass (which test
reaches which function) runs just those tests, and each mutant then runs only the tests that reached
its function. Against the whole suite the same run takes hours on two cores.

    python tests/mutate.py                 # every promise, one after the other
    python tests/mutate.py sender purge    # some of them
    python tests/mutate.py --before sender # only with the tests main has (the "before" figures)
    python tests/mutate.py --again sender  # after adding tests: rerun what the last run left alive,
                                           # against the test files this branch added or changed
    python tests/mutate.py --survivors X   # the surviving mutants of the last run of X, as diffs

The score printed is killed / total over the promise's mutants; docs/testing.md keeps the figures
and says why each mutant left alive is equivalent or harmless.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "var" / "mutate"
# What the tests read besides the package and themselves (templates, the example config, the README
# that pyproject.toml names).
ALSO_COPY = ("templates", "examples", "config.example.toml", "README.md")
CAUGHT = ("killed", "timeout")  # a mutant that made a test fail, or hang until mutmut stopped it


@dataclass(frozen=True)
class Promise:
    """One promise: the files to mutate, which of their functions (mutmut's mutant-name globs) and
    the tests that exercise them."""

    files: tuple[str, ...]
    functions: tuple[str, ...]
    tests: tuple[str, ...]


def _all(*files: str) -> tuple[str, ...]:
    """Every function of ``files``."""
    return tuple(f.removesuffix(".py").replace("/", ".") + ".*" for f in files)


def _methods(module: str, cls: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{module}.xǁ{cls}ǁ{name}__mutmut_*" for name in names)


def _functions(module: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{module}.x_{name}__mutmut_*" for name in names)


PROMISES: dict[str, Promise] = {
    # Nothing is sent twice, also across crashes: record-before-send, the outbox's keys, and the
    # local backend's refusal of a key it already delivered.
    "delivery": Promise(
        files=("rmdaemon/programme/delivery.py", "rmdaemon/backends/local.py", "rmdaemon/records/__init__.py"),
        functions=(*_all("rmdaemon/programme/delivery.py"),
                   *_methods("rmdaemon.backends.local", "LocalBackend", "_delivered_names", "was_sent", "send", "_write", "flush"),
                   *_functions("rmdaemon.backends.local", "file_name"),
                   *_functions("rmdaemon.records", "outbox_keys")),
        tests=("tests/test_delivery.py", "tests/contract/test_local_contract.py", "tests/test_store.py"),
    ),
    # A reply counts only from one of the pair's two people: the From header as a mail client shows
    # it, and the receiving server's SPF/DKIM/DMARC verdicts.
    "sender": Promise(
        files=("rmdaemon/replies/sender.py", "rmdaemon/authres.py"),
        functions=_all("rmdaemon/replies/sender.py", "rmdaemon/authres.py"),
        tests=("tests/test_sender_rules.py",
               "tests/test_security.py::test_authentication_results_are_read_as_rfc_8601_writes_them"),
    ),
    # What a pair wrote stays with the pair unless both said SHARE NOTES: the filters every report
    # format, digest and certificate read through (the digest's attention rows and the certificate
    # mail hold no filter: they only place what these functions let through).
    "privacy": Promise(
        files=("rmdaemon/programme/privacy.py", "rmdaemon/programme/metrics.py", "rmdaemon/report/data.py",
               "rmdaemon/report/csvfile.py", "rmdaemon/jobs/surveys.py"),
        functions=(*_all("rmdaemon/programme/privacy.py"),
                   *_methods("rmdaemon.programme.metrics", "Member", "shares_notes"),
                   *_functions("rmdaemon.programme.metrics", "shared_notes", "_pair_row"),
                   *_functions("rmdaemon.report.data", "shared"),
                   *_functions("rmdaemon.report.csvfile", "_private", "_text"),
                   *_functions("rmdaemon.jobs.surveys", "_shared_topics")),
        tests=("tests/test_metrics.py",
               "tests/test_security.py::test_csv_report_neutralises_cells_that_a_spreadsheet_would_run_as_formulas"),
    ),
    # Nothing is booked for a pair until both opted in; NO or STOP from either ends it.
    "consent": Promise(
        files=("rmdaemon/programme/pairstate.py", "rmdaemon/jobs/consent.py"),
        # apply_reply is the router of every reply: past its first lines (goal, SHARE NOTES, a pair
        # awaiting consent goes to _consent) its branches are repairs, commands and logs, other promises'
        functions=(*_functions("rmdaemon.programme.pairstate", "_consent"), *_all("rmdaemon/jobs/consent.py")),
        tests=("tests/test_consent.py",
               "tests/test_walkthrough.py::test_kickoff_goes_to_both_people_of_every_active_pair_and_not_the_paused_one",
               "tests/test_walkthrough.py::test_series_booked_only_after_both_opted_in",
               # one pair's kickoff failing to build keeps neither the other pairs' nor the job's result back
               "tests/test_isolation.py::test_a_pair_whose_data_breaks_a_template_does_not_keep_the_other_pairs_mail_back"),
    ),
    # One UID for a series' whole life, SEQUENCE rising on every change; answers matched by UID.
    "sequence": Promise(
        files=("rmdaemon/itip.py", "rmdaemon/programme/series.py"),
        functions=(*_functions("rmdaemon.itip", "build_request", "build_cancel", "_series_event",
                               "_occurrence_event", "_event", "_event_responses", "_sequence", "_recurrence_id",
                               "_responses"),
                   *_functions("rmdaemon.programme.series", "plan_to_doc", "plan_from_doc", "meeting_for",
                               "repair_token", "with_move", "with_skip", "exdates", "moves")),
        tests=("tests/test_itip.py", "tests/test_sessions.py"),
    ),
    # `rmdaemon purge PAIR` removes everything the daemon holds about the pair.
    # The attack suite's purge tests play whole programmes (seconds each, on every surviving mutant):
    # these run on a state written directly, in hundredths of a second, and assert the same promise.
    "purge": Promise(
        files=("rmdaemon/commands/purge.py",),
        functions=_all("rmdaemon/commands/purge.py"),
        tests=(*(f"tests/attacks/test_purge.py::{name}" for name in (
                   "test_purge_of_a_kept_state_leaves_no_row_naming_the_pair_its_people_or_tokens_and_says_what_went",
                   "test_purge_refuses_a_pair_whose_series_is_still_in_the_calendars_and_changes_nothing",
                   "test_purge_takes_a_completed_pair_whose_series_ran_its_course",
                   "test_purge_of_a_pair_nobody_answered_yet_finds_its_people_in_the_roster",
                   "test_purge_of_a_pair_known_to_neither_roster_nor_state_names_no_one",
                   "test_an_upgrades_copy_that_cannot_be_read_is_removed_and_said_so",
                   "test_purge_finds_a_replaced_persons_address_in_the_state_when_the_roster_cannot_be_read",
                   "test_purge_on_another_backend_leaves_the_local_maildir_alone_and_names_no_local_outbox",
                   "test_purge_of_a_pair_the_state_never_had_says_so_unless_the_inbox_kept_its_replies")),
               "tests/test_engagement.py::test_purge_refuses_a_live_series_then_removes_everything"),
    ),
}


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def prepare(name: str, promise: Promise, tests: tuple[str, ...], fresh: bool) -> Path:
    """A copy of the checkout whose pyproject.toml tells mutmut this promise's files and ``tests``.
    Not ``fresh``: the last run's copy and results stay; only the tests are brought up to date."""
    where = SCRATCH / name
    if fresh:
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir(parents=True)
        shutil.copytree(ROOT / "rmdaemon", where / "rmdaemon", ignore=shutil.ignore_patterns("__pycache__"))
        for extra in ALSO_COPY:
            source = ROOT / extra
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, where / extra)
    shutil.rmtree(where / "tests", ignore_errors=True)
    shutil.copytree(ROOT / "tests", where / "tests", ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    modules = ROOT / "tests" / "js" / "node_modules"
    if modules.exists():  # ICAL.js: read, never mutated; a link spares copying it twice
        (where / "tests" / "js" / "node_modules").symlink_to(modules)
    settings = "\n".join((
        "", "[tool.mutmut]",
        f"source_paths = {_toml_list(['rmdaemon'])}",
        f"only_mutate = {_toml_list(promise.files)}",
        f"also_copy = {_toml_list(list(ALSO_COPY))}",
        f"pytest_add_cli_args_test_selection = {_toml_list(tests)}",
        f"pytest_add_cli_args = {_toml_list(['-p', 'no:cacheprovider'])}",
        "use_git_change_detection = false", ""))
    (where / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text() + settings)
    return where


def results(where: Path, promise: Promise) -> dict[str, str]:
    """Mutant name → status (killed, survived, no tests, timeout…) for the promise's functions."""
    out = subprocess.run([_mutmut(), "results", "--all", "true"], cwd=where, capture_output=True, text=True,
                         check=True).stdout
    return mine(promise, dict(line.strip().rsplit(": ", 1) for line in out.splitlines() if "__mutmut_" in line))


def mine(promise: Promise, statuses: dict[str, str]) -> dict[str, str]:
    """The statuses of the promise's own mutants (a file holds other functions too)."""
    return {k: v for k, v in statuses.items() if any(fnmatchcase(k, g) for g in promise.functions)}


def score(statuses: dict[str, str]) -> str:
    caught = sum(s in CAUGHT for s in statuses.values())
    total = len(statuses)
    rest = sorted({s for s in statuses.values() if s not in CAUGHT})
    counts = ", ".join(f"{sum(v == s for v in statuses.values())} {s}" for s in rest)
    percent = f"{100 * caught / total:.0f} %" if total else "-"
    return f"{caught}/{total} killed ({percent})" + (f"; {counts}" if counts else "")


def _mutmut() -> str:
    return str(Path(sys.executable).with_name("mutmut"))


def on_main(tests: tuple[str, ...]) -> tuple[str, ...]:
    """The test files main already has: what the "before" figures are measured with."""
    return tuple(t for t in tests if subprocess.run(["git", "cat-file", "-e", f"main:{_file(t)}"], cwd=ROOT,
                                                    capture_output=True).returncode == 0)


def changed_since_main(tests: tuple[str, ...]) -> tuple[str, ...]:
    """The test files this branch added or changed: all a rerun of the survivors needs, since the
    rest already ran against them (and mutmut's stats pass over the unchanged files is most of a run)."""
    return tuple(t for t in tests if subprocess.run(["git", "diff", "--quiet", "main", "--", _file(t)],
                                                    cwd=ROOT).returncode or t not in on_main((t,)))


def _file(test: str) -> str:
    """The file of a test file or a test's node id (``tests/x.py::test_y``)."""
    return test.partition("::")[0]


def run(name: str, before: bool = False, again: bool = False) -> str:
    promise = PROMISES[name]
    tests = on_main(promise.tests) if before else changed_since_main(promise.tests) if again else promise.tests
    where = prepare(name, promise, tests, fresh=not again)
    # mutmut forgets every verdict when the test selection changes: the last run's are kept here
    kept = where / "results.json"
    last = mine(promise, json.loads(kept.read_text())) if again else {}
    mutants = [m for m, s in last.items() if s not in CAUGHT] if again else list(promise.functions)
    if not tests:  # no test to run them against (an empty selection would be the whole suite)
        mutants = []
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the mutated copy, not the checkout
    if mutants:
        subprocess.run([_mutmut(), "run", "--max-children", os.environ.get("MUTATE_JOBS", "2"), *mutants],
                       cwd=where, env=env, check=False)
    now = results(where, promise)
    merged = {**last, **({m: now[m] for m in mutants} if again else now)}
    kept.write_text(json.dumps(merged, indent=1, sort_keys=True))
    return score(merged)


def survivors(name: str) -> None:
    where = SCRATCH / name
    for mutant, status in sorted(mine(PROMISES[name], json.loads((where / "results.json").read_text())).items()):
        if status not in CAUGHT:
            shown = subprocess.run([_mutmut(), "show", mutant], cwd=where, capture_output=True, text=True).stdout
            print(f"## {status}\n{shown}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("promises", nargs="*", choices=[*PROMISES, []], metavar="PROMISE",
                        help=f"one or more of: {', '.join(PROMISES)} (default: all)")
    parser.add_argument("--before", action="store_true", help="only the test files main has")
    parser.add_argument("--again", action="store_true", help="rerun only the mutants the last run left alive")
    parser.add_argument("--survivors", metavar="PROMISE", choices=list(PROMISES),
                        help="show the mutants the last run of PROMISE left alive")
    args = parser.parse_args(argv)
    if args.survivors:
        survivors(args.survivors)
        return 0
    lines = [f"{name}: {run(name, args.before, args.again)}" for name in (args.promises or PROMISES)]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
