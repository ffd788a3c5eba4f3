"""The ``smtp`` backend: an ordinary mailbox (Google Workspace, Fastmail, self-hosted) runs the
programme. Invitations travel as iMIP emails built by ``imip`` exactly as the local backend's,
mail leaves over SMTP (``smtp_send``), replies are read over IMAP (``imap_read``), and a small
journal beside the state file (``smtp_journal``) remembers what the servers cannot be asked.

Sending exactly once: the journal knows every key the server accepted. The one key it cannot be
sure of — bytes sent, crash or lost connection before the server's "250" — is looked for as a
copy over IMAP before it is sent again: in the Sent folder where the server files one
(``sent_copy = "server"``: Gmail, Microsoft 365) or in the inbox where rmdaemon sent itself a
blind copy (``"bcc"``). A temporary failure raises a plain BackendError (retried next tick); a
permanent 5xx for a recipient raises ``BackendError(permanent=True)``; after a failure to even
reach or log in to the server, further sends fail at once for ``RETRY_AFTER`` so a batch of a
hundred messages does not wait out a hundred timeouts.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from pathlib import Path

from imapclient.imapclient import SENT
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from rmdaemon.backends import imip
from rmdaemon.backends.base import DEFAULT_MAX_BYTES, Backend
from rmdaemon.backends.imap_read import ImapMailbox, MailboxSettings
from rmdaemon.backends.smtp_journal import Journal
from rmdaemon.backends.smtp_net import SECTION, Endpoint, explain
from rmdaemon.backends.smtp_send import SmtpTransport, Unreachable, Unsure
from rmdaemon.clock import Clock
from rmdaemon.config import SmtpBackendSettings
from rmdaemon.errors import BackendError
from rmdaemon.model import Incoming, Meeting, Outgoing

log = logging.getLogger("rmdaemon.smtp")
RETRY_AFTER = timedelta(seconds=60)


class SmtpBackend(Backend):
    name = "smtp"
    invites_by_mail = True

    def __init__(self, cfg: SmtpBackendSettings, *, sender: str, smtp: Endpoint, imap: Endpoint,
                 journal_path: Path, clock: Clock, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.cfg, self.sender, self.clock = cfg, sender, clock
        self.journal = Journal(journal_path, clock)
        self.transport = SmtpTransport(smtp)
        self.mailbox = ImapMailbox(imap, MailboxSettings(cfg.folder, cfg.processed_keyword, cfg.processed_folder, sender,
                                                         max_bytes), self.journal)
        self._down: tuple[datetime, Unreachable] | None = None

    # -- sending ---------------------------------------------------------------------------
    def send(self, message: Outgoing) -> None:
        key = message.key
        state = self.journal.send_state(key)
        if state == "sent":
            return
        if state == "attempt" and self._copy_exists(message):
            log.info("%s %s to %s: found its copy from an earlier run; not sending again", message.kind, key, message.to)
            self.journal.record_send(key, "sent")
            return
        self._refuse_while_down()
        recipients = [*message.to, *([self.sender] if self.cfg.sent_copy == "bcc" else [])]
        try:
            self.transport.transmit(self.sender, recipients, message.raw, lambda: self.journal.record_send(key, "attempt"))
        except Unreachable as e:
            self._down = (self.clock(), e)
            raise
        except Unsure:
            raise  # stays "attempt": the next try looks for the copy first
        except BackendError:
            if self.journal.send_state(key) == "attempt":
                self.journal.record_send(key, "failed")  # the server answered no: nothing to look for later
            raise
        self._down = None
        self.journal.record_send(key, "sent")

    def _refuse_while_down(self) -> None:
        if self._down is not None and self.clock() - self._down[0] < RETRY_AFTER:
            raise Unreachable(str(self._down[1]), setup=self._down[1].setup)

    def _copy_exists(self, message: Outgoing) -> bool:
        """After a crash mid-send: did the server take it? Its copy over IMAP says so."""
        message_id = (BytesHeaderParser().parsebytes(message.raw).get("Message-ID") or "").strip()
        if self.cfg.sent_copy == "none" or not message_id:
            log.warning("%s %s may already have been sent (crash while sending) and sent_copy = \"none\": "
                        "sending again", message.kind, message.key)
            return False
        return self.mailbox.holds(self._copy_folders(), message_id)

    def _copy_folders(self) -> list[str]:
        if self.cfg.sent_copy == "bcc":
            return [self.cfg.folder, *([self.cfg.processed_folder] if self.cfg.processed_folder else [])]
        sent = self.mailbox.sent_folder(self.cfg.sent_folder)
        if sent is None:
            log.warning("no Sent folder found over IMAP; set %s sent_folder or sent_copy = \"bcc\"", SECTION)
        return [sent] if sent else []

    def publish(self, meeting: Meeting) -> None:
        self._send_all(imip.outgoing(meeting, imip.series_mail(meeting, self.clock())))

    def cancel_occurrence(self, meeting: Meeting, start: datetime) -> None:
        self._send_all(imip.outgoing(meeting, imip.occurrence_mail(meeting, start, self.clock())))

    def _send_all(self, messages: list[Outgoing]) -> None:
        """Every attendee gets theirs even when one address bounces; the failures are raised together."""
        errors: list[BackendError] = []
        for message in messages:
            try:
                self.send(message)
            except BackendError as e:
                errors.append(e)
        if errors:
            text = "; ".join(dict.fromkeys(str(e) for e in errors))
            raise BackendError(text, permanent=all(e.permanent for e in errors), setup=any(e.setup for e in errors))

    # -- receiving -------------------------------------------------------------------------
    def fetch_new(self) -> list[Incoming]:
        return self.mailbox.fetch_new()

    def mark_processed(self, ref: str) -> None:
        self.mailbox.mark_processed(ref)

    # -- health ----------------------------------------------------------------------------
    def check_online(self) -> list[str]:
        return self._check_smtp() + self._check_imap()

    def _check_smtp(self) -> list[str]:
        try:
            conn = self.transport.connect()
        except (OSError, smtplib.SMTPException) as e:
            return [explain(e, self.transport.endpoint)]
        try:
            conn.noop()
            conn.quit()
        except (OSError, smtplib.SMTPException) as e:
            return [explain(e, self.transport.endpoint)]
        return []

    def _check_imap(self) -> list[str]:
        endpoint = self.mailbox.endpoint
        try:
            client = self.mailbox.connect()
        except (IMAPClientError, OSError) as e:
            return [explain(e, endpoint)]
        try:
            return self._check_folders(client)
        except (IMAPClientError, OSError) as e:
            return [explain(e, endpoint)]
        finally:
            try:
                client.logout()
            except (IMAPClientError, OSError):
                pass

    def _check_folders(self, client: IMAPClient) -> list[str]:
        cfg, where = self.cfg, self.mailbox.endpoint.where
        problems = [f"{where}: folder {name!r} does not exist; create it or fix {SECTION} {key}"
                    for name, key in ((cfg.folder, "folder"), (cfg.processed_folder, "processed_folder"),
                                      (cfg.sent_folder, "sent_folder"))
                    if name and not client.folder_exists(name)]
        if problems:
            return problems
        flags = client.select_folder(cfg.folder).get(b"PERMANENTFLAGS", ())
        if b"\\*" not in flags and cfg.processed_keyword.encode() not in flags and not cfg.processed_folder:
            problems.append(f"{where}: folder {cfg.folder!r} does not keep custom keywords such as "
                            f"{cfg.processed_keyword!r}; set {SECTION} processed_folder to a folder for handled mail")
        if cfg.sent_copy == "server" and not cfg.sent_folder:
            if client.find_special_folder(SENT) is None:
                problems.append(f"{where}: no Sent folder found; set {SECTION} sent_folder, or sent_copy = \"bcc\" "
                                "if the server does not keep copies of mail sent over SMTP")
        return problems

    def close(self) -> None:
        self.transport.close()
        self.mailbox.close()
