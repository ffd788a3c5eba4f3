"""Property paths (``t:FieldURI``, ``t:ExtendedFieldURI``) → the element that holds the value.

``item:Subject`` names the ``t:Subject`` child; an extended property is matched on its property
set, name/id and type, the way Exchange identifies a named property.
"""

from __future__ import annotations

from lxml import etree

from tests.servers.ews.soap import local, t

EXT_KEYS = ("DistinguishedPropertySetId", "PropertySetId", "PropertyTag", "PropertyName", "PropertyId", "PropertyType")


def _ext_key(node: etree._Element) -> tuple[str, ...]:
    return tuple((node.get(k) or "").casefold() for k in EXT_KEYS)


def find_field(fields: etree._Element, path: etree._Element) -> etree._Element | None:
    """The child of ``fields`` that ``path`` names (``t:ExtendedProperty`` for extended paths)."""
    if local(path) == "ExtendedFieldURI":
        wanted = _ext_key(path)
        for prop in fields.iterfind(t("ExtendedProperty")):
            uri = prop.find(t("ExtendedFieldURI"))
            if uri is not None and _ext_key(uri) == wanted:
                return prop
        return None
    name = path.get("FieldURI", "").partition(":")[2]
    return fields.find(t(name))


def remove_field(fields: etree._Element, path: etree._Element) -> None:
    node = find_field(fields, path)
    if node is not None:
        fields.remove(node)


def values(rendered: etree._Element, path: etree._Element) -> list[str]:
    """The value(s) at ``path`` as strings: multi-valued fields give one entry per value."""
    node = find_field(rendered, path)
    if node is None:
        return []
    if local(node) == "ExtendedProperty":
        many = node.find(t("Values"))
        return [v.text or "" for v in (many if many is not None else node.iterfind(t("Value")))]
    children = [c for c in node if isinstance(c.tag, str)]
    if children and all(local(c) == "String" for c in children):
        return [c.text or "" for c in children]
    return [node.text or ""]
