"""Templates an admin edits: check finds the mistakes with file, line and what was meant; preview
and run never crash on one; docs/templates.md lists every template's variables."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from programme import Programme, REPO
from rmdaemon import compose, daemon, template_vars, templatecheck
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


def checks_counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every template file the check reads, in order: the real check, counted."""
    seen: list[str] = []
    real = templatecheck.check_file

    def counting(env, name: str) -> list[str]:  # noqa: ANN001
        seen.append(name)
        return real(env, name)

    monkeypatch.setattr(templatecheck, "check_file", counting)
    return seen


def new_process() -> None:
    """Each ``rmdaemon run`` is a new process: it starts without the templates a former one checked."""
    compose._checked.cache_clear()


def test_a_run_skips_the_check_a_former_run_passed_on_the_same_files(prog, monkeypatch):
    """Checking 121 template files was 1.8 s of every tick at 10,000 pairs, each in a new process."""
    seen = checks_counted(monkeypatch)
    assert prog.run(T0) == 0
    checked = len(seen)
    assert "agenda.txt" in seen and "de/agenda.txt" in seen
    new_process()
    assert prog.run(T0 + timedelta(minutes=5)) == 0
    assert len(seen) == checked


def test_a_template_edited_after_a_clean_check_is_checked_on_the_next_run(prog, capsys):
    path = override(prog, "agenda.txt", "{{ goal }}", "{{ goal }}")  # the admin's copy, unchanged
    assert prog.run(T0) == 0
    before = path.stat()
    path.write_text(path.read_text().replace("{{ goal }}", "{{ gaol }}", 1))  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and same time: only the bytes differ
    new_process()
    assert prog.run(T0 + timedelta(minutes=5)) == 2
    assert f"{path}: line 8: 'gaol' is not a variable of agenda.txt; did you mean 'goal'?" in capsys.readouterr().err


def test_a_damaged_or_unwritable_note_of_the_check_only_means_checking_again(prog, monkeypatch):
    seen = checks_counted(monkeypatch)
    assert prog.run(T0) == 0
    checked = len(seen)
    note = daemon.templates_checked(prog.state)
    note.write_bytes(b"\x00 not a digest")
    new_process()
    assert prog.run(T0 + timedelta(minutes=5)) == 0
    assert len(seen) == 2 * checked
    note.unlink()
    note.mkdir()  # a directory where the note goes: it can be neither read nor written
    new_process()
    assert prog.run(T0 + timedelta(minutes=10)) == 0
    new_process()
    assert prog.run(T0 + timedelta(minutes=15)) == 0
    assert len(seen) == 4 * checked
