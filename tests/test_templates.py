"""Templates an admin edits: check finds the mistakes with file, line and what was meant; preview
and run never crash on one; docs/templates.md lists every template's variables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from programme import Programme, REPO
from rmdaemon import compose, template_vars
from rmdaemon.errors import UserError

T0 = datetime(2027, 1, 4, 8, 0, tzinfo=timezone.utc)


@pytest.fixture
def prog(tmp_path) -> Programme:
    prog = Programme.create(tmp_path)
    (prog.root / "my-templates").mkdir()
    prog.config.write_text(prog.config.read_text().replace('# dir = "my-templates"', 'dir = "my-templates"'))
    return prog


def override(prog: Programme, name: str, old: str, new: str) -> Path:
    path = prog.root / "my-templates" / name
    text = (compose.shipped_templates() / name).read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def test_the_shipped_templates_pass_their_own_check():
    assert compose.check_templates() == []


def test_templates_md_is_generated_from_the_catalogue():
    doc = (REPO / "docs" / "templates.md").read_text(encoding="utf-8")
    assert doc == template_vars.reference_markdown(), "regenerate: python -m rmdaemon.template_vars > docs/templates.md"


def test_every_template_file_is_in_the_catalogue():
    assert set(template_vars.by_file()) == {*compose.TEMPLATE_FILES, compose.REPORT_TEMPLATE}


def test_check_names_an_unknown_variable_with_file_line_and_did_you_mean(prog, capsys):
    path = override(prog, "agenda.html", "{{ person.first_name }}", "{{ persn.first_name }}")
    assert prog.cli("check") == 2
    out = capsys.readouterr().out
    assert f"{path}: line 1: 'persn' is not a variable of agenda.html; did you mean 'person'?" in out


def test_check_names_a_misspelt_field_and_an_unknown_filter(prog, capsys):
    kickoff = override(prog, "kickoff.txt", "{{ other.name }}", "{{ other.frist_name }}")
    agenda = override(prog, "agenda.txt", "{{ goal }}", "{{ goal|uper }}")
    assert prog.cli("check") == 2
    out = capsys.readouterr().out
    assert f"{kickoff}: line 1: 'rmdaemon.model.Person object' has no attribute 'frist_name'; did you mean 'first_name'?" in out
    assert f"{agenda}: line 8: unknown filter 'uper'; did you mean 'upper'?" in out


def test_preview_of_a_broken_template_is_a_user_error_not_a_crash(prog, capsys):
    assert prog.run(T0) == 0
    for reply in prog.outbox("kickoff"):
        prog.reply(reply, "YES", T0)
    assert prog.run(T0 + timedelta(hours=1)) == 0
    override(prog, "agenda.txt", "Hello {{ person.first_name }}", "Hello {{ mentor_frist_name }}")
    capsys.readouterr()
    assert prog.cli("preview", "P01", "--now", (T0 + timedelta(hours=2)).isoformat()) == 2
    err = capsys.readouterr().err
    assert "agenda.txt: line 3: 'mentor_frist_name' is not a variable of agenda.txt" in err
    assert "Traceback" not in err and "please report" not in err


def test_a_translation_edited_while_the_daemon_runs_is_checked_on_the_next_load(tmp_path):
    """The daemon re-reads its templates every tick and checks them once per version of the files:
    a mistake made in a language folder must count from the next tick, as one at the top does."""
    (tmp_path / "de").mkdir()
    german = tmp_path / "de" / "agenda.txt"
    german.write_text((compose.shipped_templates() / "de" / "agenda.txt").read_text())
    compose.load_templates(tmp_path)  # clean: checked and remembered
    german.write_text(german.read_text() + "\n{{ mentor_frist_name }}\n")
    with pytest.raises(UserError) as raised:
        compose.load_templates(tmp_path)
    assert any("de/agenda.txt" in p and "mentor_frist_name" in p for p in raised.value.problems)
