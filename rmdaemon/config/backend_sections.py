"""The ``[backend.<kind>]`` sections: one frozen dataclass per backend kind, each key declared once.

Each field that is a config key carries its converter, default, help and example
(``config_key``); ``schema.OPTIONS`` reads the rows back from here, and the backend receives the
dataclass as it is. Defaults that depend on other sections (the state files beside the state
file, the mailbox and zone from ``[program]``) are filled in by the loader, so a backend never
looks outside its own section.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rmdaemon.config.convert import (
    BOOL,
    EMAIL,
    HTTPS_URL,
    IMAP_KEYWORD,
    OPTIONAL_TEXT,
    PATH,
    REQUIRED,
    TEXT,
    URL,
    choice,
    config_key,
    integer,
)


@dataclass(frozen=True, kw_only=True)
class LocalBackendSettings:
    """``[backend.local]``: the embedded local backend, two Maildir folders on disk."""

    outbox: Path = config_key(PATH, "var/outbox", "Maildir that outgoing mail is written to.", '"var/outbox"')
    inbox: Path = config_key(PATH, "var/inbox", "Maildir that replies are read from.", '"var/inbox"')


@dataclass(frozen=True, kw_only=True)
class ExchangeBackendSettings:
    """``[backend.exchange]``: Exchange Server through EWS; ``mailbox`` and ``timezone`` come from ``[program]``."""

    service_endpoint: str = config_key(URL, REQUIRED, "The EWS URL; set explicitly so no autodiscover requests are sent.", '"https://mail.example.com/EWS/Exchange.asmx"')
    auth: str = config_key(choice("basic", "ntlm", "oauth2"), "ntlm", "How to authenticate (oauth2 = client credentials).", '"ntlm"')
    username: str = config_key(OPTIONAL_TEXT, "", "Service account for basic/ntlm: a UPN, or DOMAIN\\user.", '"svc-mentoring@corp.example.com"')
    password_env: str = config_key(OPTIONAL_TEXT, "", "Environment variable holding the password (basic/ntlm).", '"RMDAEMON_EWS_PASSWORD"')
    password_file: Path | None = config_key(PATH, None, "Or a file holding the password (e.g. a systemd credential).", '"/run/credentials/rmdaemon.service/ews"')
    client_secret_env: str = config_key(OPTIONAL_TEXT, "", "Environment variable holding the client secret (oauth2).", '"RMDAEMON_EWS_SECRET"')
    tenant_id: str = config_key(OPTIONAL_TEXT, "", "Azure AD tenant id (oauth2).", '"00000000-0000-0000-0000-000000000000"')
    client_id: str = config_key(OPTIONAL_TEXT, "", "App registration id (oauth2).", '"00000000-0000-0000-0000-000000000000"')
    access: str = config_key(choice("delegate", "impersonation"), "delegate", "delegate: the account has Full Access to the programme mailbox; impersonation: ApplicationImpersonation role.", '"delegate"')
    version: str = config_key(choice("Exchange2013", "Exchange2013_SP1", "Exchange2016", "Exchange2019"), "Exchange2016", "Server version, set so exchangelib does not probe.", '"Exchange2016"')
    max_connections: int = config_key(integer(1, 64), 4, "Concurrent HTTP connections to the server.", "4")
    retry_budget_seconds: int = config_key(integer(0, 3600), 300, "Longest back-off waited for within a tick; longer ones retry next tick.", "300")
    state_path: Path | None = config_key(PATH, None, "Small JSON file for the inbox watermark (default: beside the state file).", '"var/exchange-state.json"')
    processed_category: str = config_key(TEXT, "rmdaemon: processed", "Category put on inbox items once handled.", '"rmdaemon: processed"')
    mailbox: str  # the programme mailbox that organises meetings and sends mail: [program] organizer
    timezone: str = "UTC"  # zone of free/busy requests: [program] timezone


@dataclass(frozen=True, kw_only=True)
class SmtpBackendSettings:
    """``[backend.smtp]``: one ordinary mailbox, mail out over SMTP, replies in over IMAP."""

    smtp_host: str = config_key(TEXT, REQUIRED, "SMTP submission server.", '"smtp.gmail.com"')
    smtp_port: int = config_key(integer(1, 65535), 587, "SMTP port: 587 with starttls, 465 with implicit.", "587")
    smtp_tls: str = config_key(choice("starttls", "implicit", "none"), "starttls", "How SMTP is encrypted; none only for a relay on the same host.", '"starttls"')
    imap_host: str = config_key(TEXT, REQUIRED, "IMAP server of the programme mailbox.", '"imap.gmail.com"')
    imap_port: int = config_key(integer(1, 65535), 993, "IMAP port: 993 with implicit, 143 with starttls.", "993")
    imap_tls: str = config_key(choice("implicit", "starttls", "none"), "implicit", "How IMAP is encrypted.", '"implicit"')
    username: str = config_key(OPTIONAL_TEXT, "", "Login for SMTP and IMAP (default: [program] organizer).", '"mentoring@example.com"')  # "" → [program] organizer
    password_env: str = config_key(OPTIONAL_TEXT, "", "Environment variable holding the password (an app password); SMTP logs in only when a password is set.", '"RMDAEMON_MAIL_PASSWORD"')
    password_file: Path | None = config_key(PATH, None, "Or a file holding the password (e.g. a systemd credential).", '"/run/credentials/rmdaemon.service/mail"')
    imap_username: str = config_key(OPTIONAL_TEXT, "", "IMAP login when it differs from username.", '"mentoring@example.com"')  # "" → username
    imap_password_env: str = config_key(OPTIONAL_TEXT, "", "Environment variable with the IMAP password when it differs.", '"RMDAEMON_IMAP_PASSWORD"')  # "" and no file → the shared password
    imap_password_file: Path | None = config_key(PATH, None, "Or a file with the IMAP password when it differs.", '"/run/credentials/rmdaemon.service/imap"')
    folder: str = config_key(TEXT, "INBOX", "IMAP folder replies are read from.", '"INBOX"')
    processed_keyword: str = config_key(IMAP_KEYWORD, "$RmdaemonProcessed", "IMAP keyword set on every message once handled (nothing is ever deleted).", '"$RmdaemonProcessed"')
    processed_folder: str = config_key(OPTIONAL_TEXT, "", "Also move handled messages to this folder (must exist); empty: leave them in place.", '"Processed"')  # "" → keyword only
    sent_copy: str = config_key(choice("server", "bcc", "none"), "server", "Where a copy of each sent message is looked for after a crash, so none is sent twice: server = the server files one in the Sent folder (Gmail, Microsoft 365); bcc = rmdaemon sends one to the mailbox itself; none = no check.", '"server"')
    sent_folder: str = config_key(OPTIONAL_TEXT, "", "Where the server files sent mail (default: the folder it flags as Sent, RFC 6154).", '"Sent"')  # "" → the folder the server marks \Sent
    ca_file: Path | None = config_key(PATH, None, "PEM file of the CA(s) to trust instead of the system's, for private CAs.", '"/etc/ssl/private-ca.pem"')
    timeout_seconds: int = config_key(integer(1, 600), 30, "Network timeout for each SMTP and IMAP operation.", "30")
    state_path: Path | None = config_key(PATH, None, "Journal of sent keys and the inbox watermark (default: smtp-state.jsonl beside the state file).", '"var/smtp-state.jsonl"')


@dataclass(frozen=True, kw_only=True)
class GraphBackendSettings:
    """``[backend.graph]``: Microsoft 365 through Microsoft Graph, app-only (client credentials)."""

    tenant_id: str = config_key(TEXT, REQUIRED, "Directory (tenant) id of the app registration.", '"00000000-0000-0000-0000-000000000000"')
    client_id: str = config_key(TEXT, REQUIRED, "Application (client) id of the app registration.", '"00000000-0000-0000-0000-000000000000"')
    client_secret_env: str = config_key(OPTIONAL_TEXT, "", "Environment variable holding the client secret (set this, client_secret_file or certificate_path).", '"RMDAEMON_GRAPH_SECRET"')
    client_secret_file: Path | None = config_key(PATH, None, "Or a file holding the client secret (e.g. a systemd credential).", '"/run/credentials/rmdaemon.service/graph"')
    certificate_path: Path | None = config_key(PATH, None, "Or a certificate credential: a PEM file with the private key and the certificate, or a .pfx/.p12 file.", '"/etc/rmdaemon/graph-app.pem"')
    certificate_password_env: str = config_key(OPTIONAL_TEXT, "", "Environment variable holding the password of an encrypted key or .pfx, if any.", '"RMDAEMON_GRAPH_CERT_PASSWORD"')
    mailbox: str = config_key(EMAIL, None, "The programme mailbox the app books and sends as (default: [program] organizer).", '"mentoring@example.com"')  # the loader puts [program] organizer here when not set
    authority_host: str = config_key(HTTPS_URL, "https://login.microsoftonline.com", "Where tokens come from; other values serve national clouds (https://login.microsoftonline.us).", '"https://login.microsoftonline.com"')
    graph_base: str = config_key(HTTPS_URL, "https://graph.microsoft.com", "The Graph endpoint, without /v1.0; other values serve national clouds (https://graph.microsoft.us).", '"https://graph.microsoft.com"')
    ca_file: Path | None = config_key(PATH, None, "PEM file of the CA(s) to trust instead of the system's (a TLS-inspecting proxy's CA).", '"/etc/ssl/private-ca.pem"')
    state_path: Path | None = config_key(PATH, None, "Small JSON file for the inbox delta link and the send/booking journal (default: graph-state.json beside the state file).", '"var/graph-state.json"')
    processed_category: str = config_key(TEXT, "rmdaemon: processed", "Category put on inbox messages once handled (they are also marked read).", '"rmdaemon: processed"')
    retry_budget_seconds: int = config_key(integer(0, 3600), 300, "Longest Retry-After waited for within a tick; longer throttling retries next tick.", "300")
    timeout_seconds: int = config_key(integer(1, 600), 30, "Network timeout for each request.", "30")
    messages_per_minute: int = config_key(integer(1, 30), 30, "Sending pace; Exchange Online accepts at most 30 messages a minute from one mailbox.", "30")
    online_meetings: bool = config_key(BOOL, False, "Make every series a Teams meeting (isOnlineMeeting); its join link goes into the agenda e-mails.", "false")


@dataclass(frozen=True, kw_only=True)
class GoogleBackendSettings:
    """``[backend.google]``: Google Workspace through the Calendar and Gmail APIs, with a service
    account that has domain-wide delegation to the programme mailbox."""

    user: str = config_key(EMAIL, None, "The programme mailbox (a Workspace user) the service account acts as (default: [program] organizer).", '"mentoring@example.com"')  # the loader puts [program] organizer here when not set
    key_file: Path | None = config_key(PATH, None, "The service account's JSON key file (set this, key_env or service_account).", '"/run/credentials/rmdaemon.service/google-key.json"')
    key_env: str = config_key(OPTIONAL_TEXT, "", "Or an environment variable holding the JSON key itself.", '"RMDAEMON_GOOGLE_KEY"')
    service_account: str | None = config_key(EMAIL, None, "Or keyless: the service account whose Google-managed key signs the delegation through the IAM Credentials API, as the daemon's own identity (Application Default Credentials: workload identity federation, GKE, a VM).", '"rmdaemon@my-project.iam.gserviceaccount.com"')
    oauth_base: str = config_key(HTTPS_URL, "https://oauth2.googleapis.com", "Keyless only: the OAuth endpoint whose /token takes the signed delegation (a key file names its own token_uri).", '"https://oauth2.googleapis.com"')
    iam_base: str = config_key(HTTPS_URL, "https://iamcredentials.googleapis.com", "Keyless only: the IAM Service Account Credentials API (a Private Service Connect endpoint, say).", '"https://iamcredentials.googleapis.com"')
    api_base: str = config_key(HTTPS_URL, "https://www.googleapis.com", "Where the Calendar, Gmail and batch endpoints live (tokens come from the key file's token_uri, or oauth_base keyless).", '"https://www.googleapis.com"')
    ca_file: Path | None = config_key(PATH, None, "PEM file of the CA(s) to trust instead of the system's (a TLS-inspecting proxy's CA).", '"/etc/ssl/private-ca.pem"')
    state_path: Path | None = config_key(PATH, None, "Small JSON file for the inbox historyId and the send/booking journal (default: google-state.json beside the state file).", '"var/google-state.json"')
    online_meetings: bool = config_key(BOOL, False, "Give every series a Google Meet link (conferenceData): it is in the invitations, in each session's agenda in the calendar and in the agenda e-mails.", "false")
    processed_label: str = config_key(TEXT, "rmdaemon/processed", "Gmail label put on inbox messages once handled (they are also marked read); made when missing.", '"rmdaemon/processed"')
    retry_budget_seconds: int = config_key(integer(0, 3600), 300, "Longest back-off waited for within a tick; longer throttling retries next tick.", "300")
    timeout_seconds: int = config_key(integer(1, 600), 30, "Network timeout for each request.", "30")
    messages_per_minute: int = config_key(integer(1, 150), 60, "Sending pace; Gmail's per-user quota (15,000 units a minute, 100 a send) allows 150 sends a minute with nothing else, the default leaves room for reading the inbox.", "60")


BY_KIND: dict[str, type] = {"local": LocalBackendSettings, "exchange": ExchangeBackendSettings,
                            "smtp": SmtpBackendSettings, "graph": GraphBackendSettings, "google": GoogleBackendSettings}
