"""SOAP envelopes in and out: parse a request, build responses, faults and response messages.

Everything here is pure XML; it knows nothing of mailboxes or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

S = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
NSMAP = {"s": S, "m": M, "t": T}


def m(name: str) -> str:
    return f"{{{M}}}{name}"


def t(name: str) -> str:
    return f"{{{T}}}{name}"


class EwsError(Exception):
    """An EWS ResponseCode for one response message (``ErrorItemNotFound``...)."""

    def __init__(self, code: str, text: str = "") -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text or code


class SoapFault(Exception):
    """A whole-request failure, sent as ``s:Fault`` (what Exchange does for throttling and rights)."""

    def __init__(self, code: str, text: str, back_off_ms: int | None = None) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text
        self.back_off_ms = back_off_ms


@dataclass
class Request:
    operation: str  # local name of the element under s:Body
    body: etree._Element
    version: str  # RequestServerVersion/@Version
    impersonated: str | None  # ExchangeImpersonation address, lower-cased
    timezone_id: str | None  # TimeZoneContext/TimeZoneDefinition/@Id


def parse_request(data: bytes) -> Request:
    """The parts of an envelope the server acts on; raises SoapFault for a malformed envelope."""
    try:
        root = etree.fromstring(data)
    except etree.XMLSyntaxError as exc:
        raise SoapFault("ErrorSchemaValidation", f"request is not XML: {exc}") from None
    body = root.find(f"{{{S}}}Body")
    if root.tag != f"{{{S}}}Envelope" or body is None or len(body) == 0:
        raise SoapFault("ErrorSchemaValidation", "no s:Envelope/s:Body with an operation")
    header = root.find(f"{{{S}}}Header")
    version = impersonated = timezone_id = None
    if header is not None:
        rsv = header.find(t("RequestServerVersion"))
        version = rsv.get("Version") if rsv is not None else None
        imp = header.find(f"{t('ExchangeImpersonation')}/{t('ConnectingSID')}")
        if imp is not None and len(imp):
            impersonated = (imp[0].text or "").strip().casefold()
        tzd = header.find(f"{t('TimeZoneContext')}/{t('TimeZoneDefinition')}")
        timezone_id = tzd.get("Id") if tzd is not None else None
    return Request(etree.QName(body[0]).localname, body[0], version or "Exchange2016", impersonated, timezone_id)


def header_elements(root: etree._Element) -> list[etree._Element]:
    """The typed SOAP headers (validated too): RequestServerVersion, ExchangeImpersonation, TimeZoneContext."""
    header = root.find(f"{{{S}}}Header")
    return [] if header is None else [child for child in header if isinstance(child.tag, str)]


def envelope(version: str, payload: etree._Element) -> bytes:
    root = etree.Element(f"{{{S}}}Envelope", nsmap=NSMAP)
    header = etree.SubElement(root, f"{{{S}}}Header")
    etree.SubElement(
        header,
        t("ServerVersionInfo"),
        MajorVersion="15",
        MinorVersion="1",
        MajorBuildNumber="2507",
        MinorBuildNumber="6",
        Version=version,
    )
    etree.SubElement(root, f"{{{S}}}Body").append(payload)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def fault_envelope(fault: SoapFault) -> bytes:
    """An ``s:Fault`` shaped like Exchange's (ResponseCode in the errors namespace, MessageXml in types)."""
    root = etree.Element(f"{{{S}}}Envelope", nsmap={"s": S, "e": E, "t": T})
    body = etree.SubElement(root, f"{{{S}}}Body")
    node = etree.SubElement(body, f"{{{S}}}Fault")
    etree.SubElement(node, "faultcode").text = "a:" + fault.code
    etree.SubElement(node, "faultstring").text = fault.text
    detail = etree.SubElement(node, "detail")
    etree.SubElement(detail, f"{{{E}}}ResponseCode").text = fault.code
    etree.SubElement(detail, f"{{{E}}}Message").text = fault.text
    if fault.back_off_ms is not None:
        xml = etree.SubElement(detail, t("MessageXml"))
        etree.SubElement(xml, t("Value"), Name="BackOffMilliseconds").text = str(fault.back_off_ms)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def response_message(tag: str, error: EwsError | None = None) -> etree._Element:
    """``<m:XResponseMessage ResponseClass=...><m:ResponseCode>`` — the caller appends the payload."""
    node = etree.Element(m(tag), ResponseClass="Error" if error else "Success")
    if error:
        etree.SubElement(node, m("MessageText")).text = error.text
    etree.SubElement(node, m("ResponseCode")).text = error.code if error else "NoError"
    if error:
        etree.SubElement(node, m("DescriptiveLinkKey")).text = "0"
    return node


def sub(parent: etree._Element, tag: str, text: object = None, **attrs: str) -> etree._Element:
    """SubElement with optional text; ``tag`` is already namespaced."""
    node = etree.SubElement(parent, tag, **attrs)
    if text is not None:
        node.text = str(text)
    return node


def local(node: etree._Element) -> str:
    return etree.QName(node).localname
