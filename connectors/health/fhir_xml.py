"""FHIR's XML format to the JSON shape the models read, parsed safely.

``defusedxml`` refuses DTDs, entities and external references, so a hostile file can neither
expand nor reach out. The mapping is FHIR's own (https://hl7.org/fhir/R4/xml.html): a
primitive is ``<name value="..."/>``, a complex element has children, a resource inside
``entry/resource`` or ``contained`` is the element named by its type, an extension's ``url``
is an attribute. XML does not say which elements repeat: an element that occurs once is a
single value here, and the models (which know each element's cardinality) make it a list
where FHIR defines one; a primitive's own extensions and the XHTML narrative are dropped
(the connector reads neither).
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

NAMESPACE = "{http://hl7.org/fhir}"

#: Marks a dict made from XML, whose lists the models put right (see ``fhir_model.Element``).
XML_SHAPED = "__xml__"
_RESOURCE_HOLDERS = frozenset({"resource", "contained"})


def parse_xml(data: bytes) -> dict[str, Any]:
    """A FHIR resource (or Bundle) in XML as its JSON form; raises ``ValueError`` in one sentence."""
    try:
        root = fromstring(data, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError):
        msg = "The file is not well-formed XML, or it uses DTDs or entities, which are refused."
        raise ValueError(msg) from None
    if not root.tag.startswith(NAMESPACE):
        msg = "The XML is not in the FHIR namespace (http://hl7.org/fhir)."
        raise ValueError(msg)
    return _resource(root)


def _name(element: Element) -> str:
    return element.tag.removeprefix(NAMESPACE)


def _resource(element: Element) -> dict[str, Any]:
    out = _complex(element)
    out["resourceType"] = _name(element)
    return out


def _complex(element: Element) -> dict[str, Any]:
    out: dict[str, Any] = {XML_SHAPED: True}
    if "url" in element.attrib:
        out["url"] = element.attrib["url"]
    for child in element:
        if not isinstance(child.tag, str) or not child.tag.startswith(NAMESPACE):
            continue  # comments, the XHTML narrative
        name = _name(child)
        value: Any
        if name in _RESOURCE_HOLDERS:
            inner = next((c for c in child if isinstance(c.tag, str)), None)
            if inner is None:
                continue
            value = _resource(inner)
        elif "value" in child.attrib:
            value = child.attrib["value"]
        else:
            value = _complex(child)
        if name in out:  # a repeated element: every one is kept, in order
            previous = out[name]
            out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[name] = value
    return out
