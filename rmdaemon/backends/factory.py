"""Settings → the configured backend. The only place that knows every backend by name, and where
secrets are read (from the environment or a file named in the config, never from the TOML)."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from rmdaemon.backends.base import Backend
from rmdaemon.backends.local import LocalBackend
from rmdaemon.clock import Clock
from rmdaemon.config import Settings
from rmdaemon.errors import UserError


def open_backend(settings: Settings, clock: Clock) -> Backend:
    kind = settings.backend.kind
    if kind == "local":
        return LocalBackend(settings.backend.local.outbox, settings.backend.local.inbox, clock)
    if kind == "exchange":
        return _exchange(settings)
    if kind == "smtp":
        from rmdaemon.backends.smtp import open_smtp  # IMAPClient only when it is used

        return open_smtp(settings, clock)
    if kind == "graph":
        return _graph(settings, clock)
    raise UserError(f"{settings.config_path}: [backend] kind = {kind!r} is not available in this version; use 'local'")


def read_secret(settings: Settings, section: str, env: str, file: Path | None, what: str) -> str:
    """A secret from the named file, else the named environment variable; a clear error otherwise."""
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise UserError(f"{settings.config_path}: [{section}] {what}_file: cannot read {file} ({e.strerror})") from None
    if not env:
        raise UserError(f"{settings.config_path}: [{section}]: set {what}_env to the name of the environment "
                        f"variable that holds the {what} (secrets never go in the config file)")
    value = os.environ.get(env)
    if not value:
        raise UserError(f"environment variable {env} (named by [{section}] {what}_env in {settings.config_path}) "
                        "is not set; export it before starting rmdaemon")
    return value


def _exchange(settings: Settings) -> Backend:
    from rmdaemon.backends.exchange import ExchangeBackend, ExchangeSettings  # exchangelib is slow to import

    cfg = settings.backend.exchange
    assert cfg is not None
    if cfg.auth == "oauth2":
        secret = read_secret(settings, "backend.exchange", cfg.client_secret_env, None, "client_secret")
    else:
        secret = read_secret(settings, "backend.exchange", cfg.password_env, cfg.password_file, "password")
    options = {k: v for k, v in asdict(cfg).items() if k != "password_file"}
    options["state_path"] = cfg.state_path or settings.storage_path.with_name("exchange-state.json")
    return ExchangeBackend(ExchangeSettings(**options, mailbox=settings.program.organizer,
                                            timezone=settings.program.timezone), secret=secret)


def _graph(settings: Settings, clock: Clock) -> Backend:
    """A secret (env or file) or a certificate file, never both; the mailbox defaults to the organizer."""
    from rmdaemon.backends.graph import GraphBackend, GraphSettings  # msal only when it is used
    from rmdaemon.backends.graph_auth import Credential, load_credential

    cfg = settings.backend.graph
    assert cfg is not None
    where = f"{settings.config_path}: [backend.graph]"
    has_secret = bool(cfg.client_secret_env or cfg.client_secret_file)
    if has_secret and cfg.certificate_path is not None:
        raise UserError(f"{where}: set either a client secret (client_secret_env or client_secret_file) or "
                        "certificate_path, not both; remove one of them")
    if cfg.certificate_path is not None:
        password = os.environ.get(cfg.certificate_password_env, "") if cfg.certificate_password_env else ""
        credential = load_credential(cfg.certificate_path, password, where)
    else:
        credential = Credential(secret=read_secret(settings, "backend.graph", cfg.client_secret_env,
                                                   cfg.client_secret_file, "client_secret"))
    options = GraphSettings(
        tenant_id=cfg.tenant_id, client_id=cfg.client_id, mailbox=cfg.mailbox or settings.program.organizer,
        authority_host=cfg.authority_host, graph_base=cfg.graph_base, ca_file=cfg.ca_file,
        state_path=cfg.state_path or settings.storage_path.with_name("graph-state.json"),
        processed_category=cfg.processed_category, retry_budget_seconds=cfg.retry_budget_seconds,
        timeout_seconds=cfg.timeout_seconds, messages_per_minute=cfg.messages_per_minute)
    return GraphBackend(options, credential, clock=clock)
