"""Settings → the configured backend. The only place that knows every backend by name, and where
secrets are read (from the environment or a file named in the config, never from the TOML)."""

from __future__ import annotations

import os
from pathlib import Path

from rmdaemon.backends.base import Backend
from rmdaemon.backends.local import LocalBackend
from rmdaemon.clock import Clock
from rmdaemon.config import Settings
from rmdaemon.errors import UserError


def open_backend(settings: Settings, clock: Clock) -> Backend:
    kind = settings.backend.kind
    if kind == "local":
        return LocalBackend(settings.backend.local.outbox, settings.backend.local.inbox, clock,
                            settings.security.max_message_bytes)
    if kind == "exchange":
        return _exchange(settings)
    if kind == "smtp":
        return _smtp(settings, clock)
    if kind == "graph":
        return _graph(settings, clock)
    if kind == "google":
        return _google(settings, clock)
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
    from rmdaemon.backends.exchange import ExchangeBackend  # exchangelib is slow to import

    cfg = settings.backend.exchange
    assert cfg is not None
    if cfg.auth == "oauth2":
        secret = read_secret(settings, "backend.exchange", cfg.client_secret_env, None, "client_secret")
    else:
        secret = read_secret(settings, "backend.exchange", cfg.password_env, cfg.password_file, "password")
    return ExchangeBackend(cfg, secret=secret, max_bytes=settings.security.max_message_bytes)


def _graph(settings: Settings, clock: Clock) -> Backend:
    """A secret (env or file) or a certificate file, never both."""
    from rmdaemon.backends.graph import GraphBackend  # msal only when it is used
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
    return GraphBackend(cfg, credential, clock=clock, max_bytes=settings.security.max_message_bytes)


def _google(settings: Settings, clock: Clock) -> Backend:
    """The service account's JSON key from its file or from the environment, never from the TOML;
    or no key at all (``service_account``: signed through the IAM Credentials API)."""
    from rmdaemon.backends.google import GoogleBackend  # google-auth only when it is used

    cfg = settings.backend.google
    assert cfg is not None
    given = [k for k, v in (("key_file", cfg.key_file), ("key_env", cfg.key_env), ("service_account", cfg.service_account)) if v]
    if len(given) > 1:
        raise UserError(f"{settings.config_path}: [backend.google]: set one of key_file, key_env and service_account, "
                        f"not {' and '.join(given)}; remove the others")
    if not given:
        raise UserError(f"{settings.config_path}: [backend.google]: set key_file (the service account's JSON key), "
                        "key_env (an environment variable holding it) or service_account (keyless, see docs/google.md)")
    if cfg.service_account:
        return GoogleBackend(cfg, None, clock=clock)
    return GoogleBackend(cfg, read_secret(settings, "backend.google", cfg.key_env, cfg.key_file, "key"), clock=clock)


def _smtp(settings: Settings, clock: Clock) -> Backend:
    """The passwords (IMAP shares SMTP's unless it has its own) and the two endpoints."""
    from rmdaemon.backends.smtp import SmtpBackend  # IMAPClient only when it is used
    from rmdaemon.backends.smtp_net import Endpoint

    cfg = settings.backend.smtp
    assert cfg is not None
    section = "backend.smtp"
    username = cfg.username or settings.program.organizer
    password = read_secret(settings, section, cfg.password_env, cfg.password_file, "password") \
        if cfg.password_env or cfg.password_file else None
    source = f"${cfg.password_env}" if cfg.password_env and not cfg.password_file else str(cfg.password_file)
    if cfg.imap_password_env or cfg.imap_password_file:
        imap_password = read_secret(settings, section, cfg.imap_password_env, cfg.imap_password_file, "imap_password")
        imap_source = f"${cfg.imap_password_env}" if not cfg.imap_password_file else str(cfg.imap_password_file)
    elif password is None:
        raise UserError(f"{settings.config_path}: [{section}]: IMAP needs a login; set password_env to the name of the "
                        "environment variable that holds the mailbox's (app) password")
    else:
        imap_password, imap_source = password, source
    timeout = float(cfg.timeout_seconds)
    smtp = Endpoint("SMTP", cfg.smtp_host, cfg.smtp_port, cfg.smtp_tls, username, password, cfg.ca_file, timeout,
                    "username", source)
    imap = Endpoint("IMAP", cfg.imap_host, cfg.imap_port, cfg.imap_tls, cfg.imap_username or username, imap_password,
                    cfg.ca_file, timeout, "imap_username" if cfg.imap_username else "username", imap_source)
    assert cfg.state_path is not None  # the loader puts it beside the state file when not set
    return SmtpBackend(cfg, sender=settings.program.organizer, smtp=smtp, imap=imap, journal_path=cfg.state_path,
                       clock=clock, max_bytes=settings.security.max_message_bytes)
