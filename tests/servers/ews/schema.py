"""Microsoft's EWS schemas, compiled once, so every request body is checked like Exchange would.

The schemas live beside the checkout in ``../shared/ews-schema`` (their README forbids copying
them into the project). Two libxml2 quirks are worked around in memory, as that README says: the
``xml:`` namespace import has no schemaLocation, and ``ArrayOfTransitionsType`` is rejected as
non-deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lxml import etree

XS = "http://www.w3.org/2001/XMLSchema"
XML_NS = "http://www.w3.org/XML/1998/namespace"
TNS = "http://schemas.microsoft.com/exchange/services/2006/types"
# Newer distinguished folder ids exchangelib may name that this schema version predates.
UNKNOWN_FOLDER_IDS_OK = ("usercuratedcontacts",)

_XML_XSD = f"""<xs:schema xmlns:xs="{XS}" targetNamespace="{XML_NS}">
  <xs:attribute name="lang" type="xs:language"/>
  <xs:attribute name="space" type="xs:NCName"/>
  <xs:attribute name="base" type="xs:anyURI"/>
  <xs:attribute name="id" type="xs:ID"/>
</xs:schema>"""


def schema_dir() -> Path:
    """``shared/ews-schema`` beside the checkout (``/work/main`` → ``/work/shared/ews-schema``)."""
    return Path(__file__).resolve().parents[4] / "shared" / "ews-schema"


def _patched_types(path: Path) -> bytes:
    """types.xsd with the two libxml2 workarounds applied, as bytes for the resolver."""
    tree = etree.parse(str(path))
    for imp in tree.getroot().iterfind(f"{{{XS}}}import"):
        if imp.get("namespace") == XML_NS:
            imp.set("schemaLocation", "xml.xsd")
    transitions = tree.getroot().find(f"{{{XS}}}complexType[@name='ArrayOfTransitionsType']")
    sequence = transitions.find(f"{{{XS}}}sequence")
    for child in list(sequence):
        sequence.remove(child)
    etree.SubElement(sequence, f"{{{XS}}}element", ref="t:Transition", minOccurs="0", maxOccurs="unbounded")
    return etree.tostring(tree)


class _Resolver(etree.Resolver):
    """Serves the patched types.xsd and the small xml: schema instead of the files/network."""

    def __init__(self, documents: dict[str, bytes]) -> None:
        super().__init__()
        self.documents = documents

    def resolve(self, url, pubid, context):  # type: ignore[no-untyped-def]  # lxml's signature
        name = url.rsplit("/", 1)[-1]
        if name in self.documents:
            return self.resolve_string(self.documents[name], context)
        return None


@dataclass
class Verdict:
    ok: bool
    errors: list[str]
    warnings: list[str]


class EwsSchema:
    """The compiled messages.xsd; ``check(element)`` validates one element under ``s:Body``."""

    def __init__(self, directory: Path) -> None:
        parser = etree.XMLParser()
        parser.resolvers.add(_Resolver({"types.xsd": _patched_types(directory / "types.xsd"), "xml.xsd": _XML_XSD.encode()}))
        messages = etree.parse(str(directory / "messages.xsd"), parser)
        self._schema = etree.XMLSchema(messages)

    def check(self, element: etree._Element) -> Verdict:
        """Validate a copy of ``element`` as its own document; the known-newer folder ids only warn."""
        document = etree.ElementTree(etree.fromstring(etree.tostring(element)))
        if self._schema.validate(document):
            return Verdict(True, [], [])
        errors, warnings = [], []
        for entry in self._schema.error_log:
            text = f"line {entry.line}: {entry.message}"
            (warnings if any(f"'{fid}'" in entry.message for fid in UNKNOWN_FOLDER_IDS_OK) else errors).append(text)
        return Verdict(not errors, errors, warnings)


def load_schema() -> EwsSchema | None:
    """The schema, or None when ``shared/ews-schema`` is not beside the checkout."""
    directory = schema_dir()
    if not (directory / "messages.xsd").is_file():
        return None
    return EwsSchema(directory)
