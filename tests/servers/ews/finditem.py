"""FindItem: shallow search of folders with restriction, sort and indexed paging."""

from __future__ import annotations

from lxml import etree

from tests.servers.ews.context import Context
from tests.servers.ews.items import wants_mime
from tests.servers.ews.paths import values
from tests.servers.ews.restriction import PATHS, _comparable, matches
from tests.servers.ews.shape import render
from tests.servers.ews.soap import EwsError, local, m, response_message, sub, t

MAX_PAGE = 1000  # Exchange's default EWSFindCountLimit


def find_item(ctx: Context) -> etree._Element:
    body = ctx.body
    if body.find(m("CalendarView")) is not None:
        raise EwsError("ErrorInvalidOperation", "CalendarView is not supported by this test server")
    response = etree.Element(m("FindItemResponse"))
    messages = sub(response, m("ResponseMessages"))
    for folder_node in body.find(m("ParentFolderIds")):
        try:
            message = _one_folder(ctx, folder_node)
        except EwsError as error:
            message = response_message("FindItemResponseMessage", error)
        messages.append(message)
    return response


def _one_folder(ctx: Context, folder_node: etree._Element) -> etree._Element:
    body = ctx.body
    folder = ctx.folder(folder_node)
    with_mime = wants_mime(body.find(m("ItemShape")))
    found = list(ctx.store.in_folder(folder.mailbox, folder.name))
    restriction = body.find(m("Restriction"))
    if restriction is not None and _on_client_fields(restriction):
        found = [i for i in found if matches(restriction[0], i.fields)]
        restriction = None
    rendered = [render(i, ctx.store, with_mime=with_mime) for i in found]
    if restriction is not None:
        rendered = [r for r in rendered if matches(restriction[0], r)]
    rendered = _sorted(rendered, body.find(m("SortOrder")))
    page, offset, last = _page(rendered, body.find(m("IndexedPageItemView")))
    message = response_message("FindItemResponseMessage")
    root = sub(
        message,
        m("RootFolder"),
        IndexedPagingOffset=str(offset + len(page)),
        TotalItemsInView=str(len(rendered)),
        IncludesLastItemInRange="true" if last else "false",
    )
    items = sub(root, t("Items"))
    for node in page:
        items.append(node)
    return message


def _on_client_fields(restriction: etree._Element) -> bool:
    """Whether the restriction reads extended properties only: those are rendered as the client
    stored them, so the stored fields give the same answer without rendering every item first
    (a lookup by our key in a calendar of 1,000 series)."""
    paths = [local(node) for node in restriction.iter() if isinstance(node.tag, str) and local(node) in PATHS]
    return bool(paths) and all(path == "ExtendedFieldURI" for path in paths)


def _sorted(rendered: list[etree._Element], order: etree._Element | None) -> list[etree._Element]:
    """Apply FieldOrders last-to-first so the first one wins (stable sort)."""
    if order is None:
        return sorted(rendered, key=lambda r: r.findtext(t("DateTimeReceived")) or "", reverse=True)
    for field_order in reversed(list(order)):
        path = field_order[0]
        reverse = field_order.get("Order", "Ascending") == "Descending"
        rendered = sorted(rendered, key=lambda r: _sort_key(values(r, path)), reverse=reverse)
    return rendered


def _sort_key(found: list[str]) -> tuple[int, object]:
    if not found:
        return (0, "")
    value, _ = _comparable(found[0], found[0])
    return (1, value if not isinstance(value, bool) else int(value))


def _page(rendered: list[etree._Element], view: etree._Element | None) -> tuple[list[etree._Element], int, bool]:
    limit = MAX_PAGE
    offset = 0
    from_end = False
    if view is not None:
        limit = min(int(view.get("MaxEntriesReturned", MAX_PAGE)), MAX_PAGE)
        offset = int(view.get("Offset", "0"))
        from_end = view.get("BasePoint", "Beginning") == "End"
    if from_end:
        stop = len(rendered) - offset
        page = rendered[max(0, stop - limit) : stop]
        return page, offset, stop - limit <= 0
    page = rendered[offset : offset + limit]
    return page, offset, offset + len(page) >= len(rendered)


OPERATIONS = {"FindItem": find_item}
