"""``[backend.smtp]`` as an admin meets it: every mistake at once with its line and fix, secrets only
by environment variable or file, and the defaults that make the common case two lines short."""

from __future__ import annotations

from pathlib import Path

import pytest

from programme import Programme
from rmdaemon.backends.factory import open_backend
from rmdaemon.clock import system_clock
from rmdaemon.config import load_settings
from rmdaemon.errors import UserError


def programme(tmp_path: Path, section: str) -> Programme:
    prog = Programme.create(tmp_path, kind='"smtp"')
    with open(prog.config, "a") as f:
        f.write("\n[backend.smtp]\n" + section)
    return prog


def problems(prog: Programme) -> list[str]:
    with pytest.raises(UserError) as failed:
        load_settings(prog.config)
    return failed.value.problems


def test_required_hosts_secrets_and_keyword_are_reported_together(tmp_path):
    prog = programme(tmp_path, 'password = "hunter2"\nprocessed_keyword = "done (rm)"\nsmtp_tls = "ssl"\n')
    found = "\n".join(problems(prog))
    assert "[backend.smtp] smtp_host: missing; add smtp_host = \"smtp.gmail.com\"" in found
    assert "[backend.smtp] imap_host: missing" in found
    assert "[backend.smtp] password: secrets never go in the config file" in found and "hunter2" not in found
    assert "[backend.smtp] processed_keyword: expected an IMAP keyword" in found
    assert "[backend.smtp] smtp_tls: expected starttls|implicit|none" in found


def test_defaults_make_the_organizer_the_login_and_keep_the_journal_beside_the_state(tmp_path, monkeypatch):
    prog = programme(tmp_path, 'smtp_host = "smtp.example.com"\nimap_host = "imap.example.com"\n'
                               'password_env = "RM_TEST_MAIL_PASSWORD"\n')
    monkeypatch.setenv("RM_TEST_MAIL_PASSWORD", "app-password")
    backend = open_backend(load_settings(prog.config), system_clock)
    try:
        assert backend.name == "smtp"
        assert (backend.transport.endpoint.username, backend.mailbox.endpoint.username) == ("mentoring@example.com",) * 2
        assert (backend.transport.endpoint.port, backend.mailbox.endpoint.port) == (587, 993)
        assert backend.journal.path == prog.state.with_name("smtp-state.jsonl")
        assert backend.cfg.folder == "INBOX" and backend.cfg.sent_copy == "server"
    finally:
        backend.close()


def test_a_missing_secret_names_the_variable_and_where_it_is_set(tmp_path, monkeypatch):
    prog = programme(tmp_path, 'smtp_host = "smtp.example.com"\nimap_host = "imap.example.com"\n'
                               'password_env = "RM_TEST_UNSET_PASSWORD"\n')
    monkeypatch.delenv("RM_TEST_UNSET_PASSWORD", raising=False)
    with pytest.raises(UserError, match=r"environment variable RM_TEST_UNSET_PASSWORD \(named by \[backend.smtp\] password_env"):
        open_backend(load_settings(prog.config), system_clock)
    without = programme(tmp_path / "b", 'smtp_host = "relay.local"\nsmtp_tls = "none"\nimap_host = "imap.example.com"\n')
    with pytest.raises(UserError, match="IMAP needs a login; set password_env"):
        open_backend(load_settings(without.config), system_clock)
