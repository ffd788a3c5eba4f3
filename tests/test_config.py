"""config.toml as the admin writes it: real files in a temp dir, every mistake named with line, key and fix."""

from __future__ import annotations

import random
import re
import tomllib
from datetime import date, time
from email.utils import parseaddr
from pathlib import Path

import pytest

from rmdaemon.config import Settings, find_config, load_settings
from rmdaemon.config.parse import Invalid, check_email
from rmdaemon.config.reference import reference_markdown
from rmdaemon.config.schema import OPTIONS, SECTIONS
from rmdaemon.errors import UserError

REPO = Path(__file__).resolve().parent.parent

VALID = """\
[program]
name = "Pilot"
timezone = "Europe/London"
cadence = "biweekly"
duration_minutes = 45
sessions = 6
start_date = 2027-01-04
working_hours = { start = "09:00", end = "17:00", days = ["Mon", "Tue", "Wed", "Thu", "Fri"] }
organizer = "mentoring@example.com"
champion = "champion@example.com"

[roster]
path = "roster.csv"

[backend]
kind = "local"
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run where the config lives, as an admin does, so messages name ``config.toml``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RMDAEMON_CONFIG", raising=False)
    return tmp_path


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def edit(old: str, new: str, text: str = VALID) -> str:
    assert old in text, old
    return text.replace(old, new)


def problems(path: Path, headline: str = "") -> list[str]:
    with pytest.raises(UserError) as caught:
        load_settings(path)
    count = len(caught.value.problems)
    assert caught.value.message == (headline or f"config.toml has {count} problem{'s' if count > 1 else ''}")
    return caught.value.problems


def only_problem(path: Path, headline: str = "") -> str:
    found = problems(path, headline)
    assert len(found) == 1, found
    return found[0]


# --- a clean file -------------------------------------------------------------------------


def test_valid_config_becomes_typed_settings_with_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, VALID))
    program = settings.program
    assert program.start_date == date(2027, 1, 4) and program.end_date is None and program.sessions == 6
    assert program.working_hours.start == time(9) and program.working_hours.days == (0, 1, 2, 3, 4)
    assert program.organizer_name == "Pilot"  # defaults to the programme name
    assert program.require_opt_in is True and program.agenda_lead_hours == 24.0
    assert program.max_pairs_per_mentor == 1
    assert settings.templates_dir is None
    assert settings.storage_path == tmp_path / "var" / "state.json"
    assert settings.backend.local.outbox == tmp_path / "var" / "outbox"
    assert settings.schedule.tick_seconds == 60
    assert settings.schedule.jobs == {"consent": 15, "booking": 15, "agendas": 15, "inbox": 5, "nudges": 60,
                                      "surveys": 60, "outreach": 5, "retention": 1440, "digest": 15}


def test_relative_paths_are_relative_to_the_config_file_not_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "conf").mkdir()
    path = write(tmp_path / "conf", VALID + '\n[storage]\npath = "state/db.json"\n[templates]\ndir = "/opt/tpl"\n')
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    settings = load_settings(Path("../conf/config.toml"))
    assert settings.roster_path == tmp_path / "conf" / "roster.csv"
    assert settings.storage_path == tmp_path / "conf" / "state" / "db.json"
    assert settings.templates_dir == Path("/opt/tpl")
    assert settings.config_path == path


def test_end_date_instead_of_sessions_and_a_working_hours_string(tmp_path: Path) -> None:
    text = edit("sessions = 6", "end_date = 2027-06-30", VALID)
    text = edit('working_hours = { start = "09:00", end = "17:00", days = ["Mon", "Tue", "Wed", "Thu", "Fri"] }',
                'working_hours = "08:30-16:00 Mon-Thu"', text)
    program = load_settings(write(tmp_path, text)).program
    assert program.sessions is None and program.end_date == date(2027, 6, 30)
    assert program.working_hours.start == time(8, 30) and program.working_hours.days == (0, 1, 2, 3)


def test_example_config_loads_clean_and_names_every_option() -> None:
    example = REPO / "config.example.toml"
    settings = load_settings(example)
    assert isinstance(settings, Settings)
    assert settings.program.name == "Reverse Mentoring Pilot"
    assert settings.roster_path == REPO / "examples" / "roster.csv"
    assert settings.backend.kind == "local"
    assert settings.backend.local.inbox == REPO / "var" / "inbox"
    text = example.read_text(encoding="utf-8")
    table = tomllib.loads(text)
    for option in OPTIONS:
        node = table
        for part in option.section.split("."):
            node = node.get(part, {})
        # every key is set, or shown commented-out (optional keys without a sensible example value)
        assert option.key in node or f"# {option.key} =" in text, f"[{option.section}] {option.key} missing from example"


def test_reference_doc_is_generated_from_the_option_table() -> None:
    doc = (REPO / "docs" / "config-reference.md").read_text(encoding="utf-8")
    assert doc == reference_markdown(), "regenerate: python -m rmdaemon.config --reference > docs/config-reference.md"
    for section in SECTIONS:
        assert f"## [{section}]" in doc


# --- finding the file ---------------------------------------------------------------------


def test_find_config_prefers_the_argument_then_the_environment_then_the_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.toml", "b.toml", "rmdaemon.toml"):
        write(tmp_path, VALID, name)
    monkeypatch.setenv("RMDAEMON_CONFIG", "b.toml")
    assert find_config("a.toml") == Path("a.toml")
    assert find_config(None) == Path("b.toml")
    monkeypatch.delenv("RMDAEMON_CONFIG")
    assert find_config(None) == Path("rmdaemon.toml")


def test_missing_config_names_the_path_and_how_to_start() -> None:
    with pytest.raises(UserError) as caught:
        find_config(None)
    assert caught.value.message.startswith("not found: rmdaemon.toml") and "rmdaemon init ." in caught.value.message


def test_missing_config_from_the_environment_says_where_the_name_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RMDAEMON_CONFIG", "/nowhere/prod.toml")
    with pytest.raises(UserError, match=r"not found: /nowhere/prod.toml \(the config file, from \$RMDAEMON_CONFIG\)"):
        find_config(None)


# --- one problem each ---------------------------------------------------------------------


def test_toml_syntax_error_names_its_line(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, edit("duration_minutes = 45", "duration_minutes = ")), "config.toml is not valid TOML")
    assert problem.startswith("config.toml: line 5, column 20: TOML syntax error: Invalid value")
    assert problem.endswith("fix the syntax there")


def test_file_that_is_not_utf8_names_the_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(edit('name = "Pilot"', 'name = "Caf\xe9"').encode("latin-1"))
    problem = only_problem(path, "config.toml is not UTF-8")
    assert problem.startswith("config.toml: line 2: byte ") and problem.endswith("save the file as UTF-8")


def test_wrong_choice_reads_as_the_style_guide_promises(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, edit('cadence = "biweekly"', 'cadence = "wekly"')))
    assert problem == 'config.toml: line 4: [program] cadence: expected weekly|biweekly|monthly, got "wekly"'


def test_unknown_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, VALID + "\n[schedule]\ninbx = 5\n"))
    assert problem == "config.toml: line 19: [schedule] inbx: unknown key; did you mean inbox?"


def test_unknown_key_without_a_near_name_lists_the_known_ones(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, VALID.replace('path = "roster.csv"', 'path = "roster.csv"\ncolour = 3')))
    assert problem == "config.toml: line 14: [roster] colour: unknown key; known keys: path"


def test_unknown_section_gets_a_did_you_mean(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, VALID + '\n[storag]\npath = "x.json"\n'))
    assert problem == "config.toml: line 18: [storag]: unknown section; did you mean [storage]?"


def test_key_outside_any_section_says_where_it_belongs(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, 'champion = "c@example.com"\n' + edit('champion = "champion@example.com"\n', "")))
    assert problem == "config.toml: line 1: champion: key outside any section; move it under [program]"


def test_key_in_the_wrong_section_is_reported_once_not_as_missing_too(tmp_path: Path) -> None:
    text = edit('name = "Pilot"\n', "").replace('path = "roster.csv"', 'path = "roster.csv"\nname = "Pilot"')
    found = problems(write(tmp_path, text))
    assert found == ["config.toml: line 13: [roster] name: unknown key; known keys: path",
                     'config.toml: [program] name: missing; add name = "Reverse Mentoring Pilot"']


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, edit("duration_minutes = 45", 'duration_minutes = "45"')))
    assert problem == ('config.toml: line 5: [program] duration_minutes: expected a whole number between 10 and 240, '
                       'got "45"; write it without quotes')


def test_boolean_in_quotes_is_refused(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, edit("[roster]", "require_opt_in = \"yes\"\n\n[roster]")))
    assert problem == 'config.toml: line 12: [program] require_opt_in: expected true or false (no quotes), got "yes"'


def test_unknown_time_zone_suggests_the_nearest(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, edit('"Europe/London"', '"Europe/Londn"')))
    assert problem == ('config.toml: line 3: [program] timezone: "Europe/Londn" is not an IANA time zone; '
                       "did you mean Europe/London?")


@pytest.mark.parametrize("key", ["organizer", "champion"])
def test_bad_email_is_named_with_the_fix(tmp_path: Path, key: str) -> None:
    line = f'{key} = "{key}@example.com"' if key == "champion" else 'organizer = "mentoring@example.com"'
    problem = only_problem(write(tmp_path, edit(line, f'{key} = "bob@"')))
    assert problem.startswith(f'config.toml: line {9 if key == "organizer" else 10}: [program] {key}: "bob@" is not an email address')
    assert problem.endswith('write a plain address like "mentoring@example.com"')


def test_an_address_is_judged_as_parseaddr_judges_it_whichever_way_is_taken() -> None:
    """Plain addresses skip parseaddr (the roster's 20,000 at 10,000 pairs): it must never have
    said otherwise about them, nor about the odd ones that still go through it."""
    rng = random.Random(14)
    for _ in range(20000):
        text = "".join(rng.choices("aZ09._%+-@ <>\"(),;:[]é", weights=[9] * 9 + [3] * 13, k=rng.randrange(1, 16)))
        if "@" not in text:
            text += "@x.y"
        name, address = parseaddr(text)
        plain = not name and address == text and re.match(r"^[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+$", text)
        try:
            assert check_email(text) == text and plain, text
        except Invalid:
            assert not plain, text


@pytest.mark.parametrize(("hours", "complaint"), [
    ('{ start = "9am", end = "17:00" }', 'expected a 24-hour time like 09:00, got "9am"'),
    ('{ start = "09:00", end = "17:00", days = ["Mon", "Fry"] }', 'expected a day like Mon, Tue, ... Sun, got "Fry"'),
    ('{ start = "17:00", end = "09:00" }', 'working hours must end after they start, got "17:00-09:00"'),
    ('{ start = "09:00", end = "17:00", days = [] }', "expected at least one working day, got []"),
    ('{ start = "09:00", end = "17:00", weekdays = ["Mon"] }', "unknown key 'weekdays' in working_hours; use start, end and days"),
    ('{ start = "09:00" }', 'expected { start = "09:00", end = "17:00", days = ["Mon", ...] }, got { start = "09:00" }'),
])
def test_bad_working_hours_are_explained(tmp_path: Path, hours: str, complaint: str) -> None:
    text = edit('working_hours = { start = "09:00", end = "17:00", days = ["Mon", "Tue", "Wed", "Thu", "Fri"] }',
                f"working_hours = {hours}")
    assert only_problem(write(tmp_path, text)) == f"config.toml: line 8: [program] working_hours: {complaint}"


def test_sessions_and_end_date_both_set(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, edit("sessions = 6", "sessions = 6\nend_date = 2027-06-30")))
    assert problem == "config.toml: line 7: [program] end_date: set either sessions or end_date, not both; remove one of them"


def test_neither_sessions_nor_end_date(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, edit("sessions = 6\n", "")))
    assert problem == "config.toml: line 1: [program]: set how long the programme runs: sessions = 6 or end_date = 2027-06-30"


def test_end_date_before_start_date(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, edit("sessions = 6", "end_date = 2026-12-31")))
    assert problem == ("config.toml: line 6: [program] end_date: end_date 2026-12-31 is before start_date 2027-01-04; "
                       "move one of them")


def test_bad_date_is_named(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, edit("start_date = 2027-01-04", 'start_date = "04/01/2027"')))
    assert problem == 'config.toml: line 7: [program] start_date: expected a date like 2027-01-04, got "04/01/2027"'


def test_missing_required_key_says_what_to_add(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, edit('timezone = "Europe/London"\n', "")))
    assert problem == 'config.toml: [program] timezone: missing; add timezone = "Europe/London"'


def test_secret_in_the_file_is_refused_with_the_env_alternative(tmp_path: Path) -> None:
    text = VALID + '\n[backend.local]\noutbox = "var/outbox"\napi_token = "s3cr3t"\n'
    problem = only_problem(write(tmp_path, text))
    assert problem.startswith("config.toml: line 20: [backend.local] api_token: secrets never go in the config file")
    assert 'api_token_env = "RMDAEMON_API_TOKEN"' in problem
    assert "s3cr3t" not in problem  # the secret itself is never echoed


def test_every_backend_kind_is_available(tmp_path: Path) -> None:
    from rmdaemon.config.schema import BACKEND_KINDS, available_backends

    assert available_backends() == BACKEND_KINDS


def test_exchange_kind_needs_its_endpoint(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, edit('kind = "local"', 'kind = "exchange"')))
    assert problem == ('config.toml: [backend.exchange] service_endpoint: missing; '
                       'add service_endpoint = "https://mail.example.com/EWS/Exchange.asmx"')


@pytest.mark.parametrize("kind, section, state_file", [
    ("exchange", 'service_endpoint = "https://mail.example.com/EWS/Exchange.asmx"', "exchange-state.json"),
    ("smtp", 'smtp_host = "smtp.example.com"\nimap_host = "imap.example.com"', "smtp-state.jsonl"),
    ("graph", 'tenant_id = "t"\nclient_id = "c"', "graph-state.json"),
])
def test_a_backend_section_arrives_complete_with_defaults_from_the_other_sections(
        tmp_path: Path, kind: str, section: str, state_file: str) -> None:
    """The backend gets its section as it is: its journal beside the state file, the programme mailbox."""
    text = edit('kind = "local"', f'kind = "{kind}"') + f"\n[storage]\npath = \"data/state.json\"\n\n[backend.{kind}]\n{section}\n"
    settings = load_settings(write(tmp_path, text))
    backend = getattr(settings.backend, kind)
    assert backend.state_path == tmp_path / "data" / state_file
    if kind != "smtp":
        assert backend.mailbox == "mentoring@example.com"
    if kind == "exchange":
        assert backend.timezone == "Europe/London"


def test_misspelt_key_in_a_backend_table_suggests_the_right_one(tmp_path: Path) -> None:
    text = VALID + '\n[backend.graph]\ntenant = "contoso"\n'
    problem = only_problem(write(tmp_path, text))
    assert problem == "config.toml: line 19: [backend.graph] tenant: unknown key; did you mean tenant_id?"


def test_misspelt_backend_kind(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, edit('kind = "local"', 'kind = "locl"')))
    assert problem == 'config.toml: line 16: [backend] kind: expected local|exchange|smtp|graph|google, got "locl"'


def test_schedule_minutes_must_be_positive(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, VALID + "\n[schedule]\nbooking = 0\n"))
    assert problem == "config.toml: line 19: [schedule] booking: expected a whole number between 1 and 1440, got 0"


# --- everything at once -------------------------------------------------------------------


def test_all_problems_are_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = edit('cadence = "biweekly"', 'cadence = "wekly"')
    text = edit('organizer = "mentoring@example.com"', 'organizer = "mentoring at example.com"', text)
    text = edit("[roster]", "colour = 3\n\n[roster]", text)
    text = edit('kind = "local"', 'kind = "imap"', text)
    found = problems(write(tmp_path, text))
    assert len(found) == 4, found
    assert [p.split(":")[1] for p in found] == [" line 4", " line 9", " line 12", " line 18"]
    assert "cadence" in found[0] and "organizer" in found[1] and "colour" in found[2] and '"imap"' in found[3]
