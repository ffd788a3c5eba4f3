"""Who is asking for which mailbox: the rules Exchange applies before any operation runs."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from tests.servers.ews.soap import EwsError, Request, SoapFault, local, t
from tests.servers.ews.store import Account, Folder, Item, Store


@dataclass
class Context:
    store: Store
    account: Account
    request: Request

    @property
    def body(self) -> etree._Element:
        return self.request.body

    def check_impersonation(self) -> None:
        """ExchangeImpersonation needs the ApplicationImpersonation role, as on a real server."""
        target = self.request.impersonated
        if target is None:
            return
        if not self.account.impersonation:
            raise SoapFault(
                "ErrorImpersonateUserDenied",
                f"The account {self.account.username} does not have permission to impersonate the requested user.",
            )
        if target not in self.store.mailboxes:
            raise SoapFault("ErrorNonExistentMailbox", f"No mailbox with such guid or address: {target}")

    @property
    def default_mailbox(self) -> str:
        return self.request.impersonated or self.account.mailbox

    def allowed(self, mailbox: str) -> None:
        if mailbox == self.account.mailbox or mailbox in self.account.delegate_for:
            return
        if self.request.impersonated == mailbox:
            return
        raise EwsError("ErrorAccessDenied", f"Access is denied. Check credentials and try again. ({mailbox})")

    def folder(self, node: etree._Element) -> Folder:
        """A ``t:FolderId`` or ``t:DistinguishedFolderId`` (with optional ``t:Mailbox``) → Folder."""
        if local(node) == "FolderId":
            folder = self.store.folder_by_id(node.get("Id", ""))
        else:
            address = node.findtext(f"{t('Mailbox')}/{t('EmailAddress')}")
            mailbox = address.strip().casefold() if address else self.default_mailbox
            if mailbox not in self.store.mailboxes:
                raise EwsError("ErrorNonExistentMailbox", f"No mailbox with such guid or address: {mailbox}")
            folder = self.store.folder(mailbox, node.get("Id", ""))
        self.allowed(folder.mailbox)
        return folder

    def item(self, node: etree._Element) -> Item:
        """A ``t:ItemId`` (occurrence ids are handled by the callers that accept them)."""
        item = self.store.item(node.get("Id", ""))
        self.allowed(item.mailbox)
        return item
