"""The ``<instance>`` parameter XML (``reference/slap-protocol.md`` §2.3).

SlapOS stores instance and connection parameters as::

    <?xml version='1.0' encoding='utf-8'?>
    <instance>
      <parameter id="baz">qux</parameter>
      <parameter id="foo">bar</parameter>
    </instance>

and the HATEOAS fields ``text_content`` and ``connection_parameter_list`` carry it.
`dict_to_instance_xml` writes exactly what ``slapos.util.dict2xml`` writes (keys sorted, values
``str()``-ed, two-space indentation, a trailing newline, non-ASCII characters as they are, an empty
dict as ``<instance/>``).  Like it, None is written as the text ``None``.

`instance_xml_to_dict` reads it as ``slapos.util.xml2dict`` does (a repeated id joins the values
with a space, an empty element gives None, an empty document gives ``{}``), with the protections of
`marshal.loads`: size limit, no DTD or entity, bounded depth, `DecodeError` when malformed.
It differs where ``xml2dict`` fails or guesses: a ``<parameter>`` without ``id`` is a
`DecodeError` (``xml2dict`` uses the key None), and an empty repeated element adds nothing
(``xml2dict`` raises `TypeError`).
"""
from __future__ import annotations

from typing import Any

from partita.master.api.slap_xml.marshal import DEFAULT_MAX_BYTES, MAX_DEPTH, check_xml_chars, parse_with, to_bytes
from partita.slap.errors import DecodeError

__all__ = ["dict_to_instance_xml", "instance_xml_to_dict"]

_HEADER = "<?xml version='1.0' encoding='utf-8'?>\n"
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;",
    "\t": "&#9;",
})


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    text = str.__str__(value) if isinstance(value, str) else str(value)
    if not (text.isascii() and text.isprintable()):
        check_xml_chars(text)
    return text


def dict_to_instance_xml(params: dict) -> str:
    """Write ``params`` as ``slapos.util.dict2xml`` does."""
    entries = sorted((_as_text(key), _as_text(value)) for key, value in params.items())
    if not entries:
        return _HEADER + "<instance/>\n"
    lines = [_HEADER, "<instance>\n"]
    for key, value in entries:
        key = key.translate(_ATTR_ESCAPES)
        if value:
            lines.append(f'  <parameter id="{key}">{value.translate(_TEXT_ESCAPES)}</parameter>\n')
        else:
            lines.append(f'  <parameter id="{key}"></parameter>\n')
    lines.append("</instance>\n")
    return "".join(lines)


class _Reader:
    """Expat handlers collecting the direct text of the root's ``<parameter>`` children."""

    def __init__(self, max_depth: int) -> None:
        self.depth = 0
        self.max_depth = max_depth
        self.key: str | None = None
        self.text: list[str] | None = None  # the open parameter's text, until its first child
        self.result: dict[str, str | None] = {}

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise DecodeError(f"nesting deeper than {self.max_depth} levels")
        if self.depth == 2 and tag == "parameter":
            if "id" not in attrs:
                raise DecodeError("a <parameter> has no id attribute")
            self.key, self.text = attrs["id"], []
        elif self.text is not None:  # the parameter's first child ends its text
            self.close()

    def close(self) -> None:
        """Store the open parameter's text (what lxml calls its ``.text``)."""
        assert self.key is not None and self.text is not None
        value = "".join(self.text) or None
        previous = self.result.get(self.key)
        if previous is not None:
            value = previous if value is None else f"{previous} {value}"
        self.result[self.key] = value
        self.key = self.text = None

    def end(self, tag: str) -> None:
        if self.depth == 2 and self.text is not None:
            self.close()
        self.depth -= 1

    def characters(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)


def instance_xml_to_dict(text: bytes | str, max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
    """Read ``<instance>`` XML as ``slapos.util.xml2dict`` does, safely."""
    if not text:
        return {}
    data, encoding = to_bytes(text, max_bytes)
    reader = _Reader(MAX_DEPTH)
    parse_with(reader, data, encoding)
    return reader.result
