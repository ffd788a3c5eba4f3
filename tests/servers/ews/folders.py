"""GetFolder: the distinguished folders every mailbox has."""

from __future__ import annotations

from lxml import etree

from tests.servers.ews.context import Context
from tests.servers.ews.soap import EwsError, m, response_message, sub, t
from tests.servers.ews.store import Folder

_DISPLAY = {"msgfolderroot": "Top of Information Store", "sentitems": "Sent Items", "deleteditems": "Deleted Items",
            "junkemail": "Junk Email"}  # fmt: skip


def folder_xml(folder: Folder, ctx: Context) -> etree._Element:
    tag = "CalendarFolder" if folder.name == "calendar" else "Folder"
    node = etree.Element(t(tag))
    sub(node, t("FolderId"), Id=folder.folder_id, ChangeKey="CK1")
    root = ctx.store.folder(folder.mailbox, "msgfolderroot" if folder.name != "root" else "root")
    if folder.name != "root":
        sub(node, t("ParentFolderId"), Id=root.folder_id, ChangeKey="CK1")
    sub(node, t("FolderClass"), folder.folder_class)
    sub(node, t("DisplayName"), _DISPLAY.get(folder.name, folder.name.title()))
    count = sum(1 for _ in ctx.store.in_folder(folder.mailbox, folder.name))
    if tag == "Folder":
        sub(node, t("TotalCount"), count)
        sub(node, t("ChildFolderCount"), 0)
        sub(node, t("UnreadCount"), sum(1 for i in ctx.store.in_folder(folder.mailbox, folder.name) if not i.is_read))
    else:
        sub(node, t("TotalCount"), count)
        sub(node, t("ChildFolderCount"), 0)
    return node


def get_folder(ctx: Context) -> etree._Element:
    response = etree.Element(m("GetFolderResponse"))
    messages = sub(response, m("ResponseMessages"))
    for node in ctx.body.find(m("FolderIds")):
        try:
            folder = ctx.folder(node)
        except EwsError as error:
            messages.append(response_message("GetFolderResponseMessage", error))
            continue
        message = response_message("GetFolderResponseMessage")
        sub(message, m("Folders")).append(folder_xml(folder, ctx))
        messages.append(message)
    return response


OPERATIONS = {"GetFolder": get_folder}
