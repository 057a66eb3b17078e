"""Safe XML parsing for untrusted documents: no DTDs, no entities, no external fetches.

defusedxml refuses entity declarations (billion laughs, quadratic blowup) and external
entities (XXE); we also refuse any DTD at all, since no format we read needs one.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DET
from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)

from connectors.sources.common import SourceError

MAX_XML_BYTES = 10 * 1024 * 1024


def parse(data: bytes) -> Element:
    """Parse an XML document or raise :class:`SourceError` with a reason a user can act on."""
    if len(data) > MAX_XML_BYTES:
        raise SourceError("too_large", f"XML document of {len(data)} bytes exceeds {MAX_XML_BYTES}")
    try:
        return DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden:
        raise SourceError("xml_forbidden", "XML declares a DTD: refused (entity expansion and "
                          "external entities are not allowed)") from None
    except EntitiesForbidden:
        raise SourceError("xml_forbidden", "XML declares entities: refused (entity expansion "
                          "and external entities are not allowed)") from None
    except ExternalReferenceForbidden:
        raise SourceError("xml_forbidden", "XML references an external resource: refused") from None
    except DefusedXmlException as exc:
        raise SourceError("xml_forbidden", f"unsafe XML refused: {exc}") from None
    except ParseError as exc:
        raise SourceError("malformed_xml", f"not well-formed XML: {exc}") from None
    except (ValueError, UnicodeError, RecursionError, LookupError) as exc:
        # LookupError: an encoding declaration Python does not know (encoding="x-unknown").
        raise SourceError("malformed_xml", f"not well-formed XML: {exc}") from None


def local(tag: str) -> str:
    """The local name of a namespaced tag: ``{urn:..}Invoice`` -> ``Invoice``."""
    return tag.rsplit("}", 1)[-1]


def child(el: Element, name: str) -> Element | None:
    """The first child with local name ``name``, whatever its namespace."""
    for c in el:
        if isinstance(c.tag, str) and local(c.tag) == name:
            return c
    return None


def children(el: Element, name: str) -> list[Element]:
    return [c for c in el if isinstance(c.tag, str) and local(c.tag) == name]


def path(el: Element | None, *names: str) -> Element | None:
    """Follow local names down the tree: ``path(root, "LegalMonetaryTotal", "PayableAmount")``."""
    for name in names:
        if el is None:
            return None
        el = child(el, name)
    return el


def text(el: Element | None, *names: str) -> str | None:
    """Stripped text at a path, or None when the element is absent or empty."""
    found = path(el, *names)
    if found is None or found.text is None:
        return None
    value = found.text.strip()
    return value or None
