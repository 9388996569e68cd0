"""Tests of master/api/slap_xml/instance_xml.py against the §2.3 examples and an lxml model of slapos.util."""
from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from partita.master.api.slap_xml.instance_xml import dict_to_instance_xml, instance_xml_to_dict
from partita.slap.errors import DecodeError, TooLarge


def lxml_dict2xml(params: dict) -> str:
    """What slapos.util.dict2xml (1.26) produces: lxml, sorted items, str() values, pretty print."""
    root = etree.Element("instance")
    for key, value in sorted(params.items()):
        child = etree.SubElement(root, "parameter", attrib={"id": key})
        child.text = value if isinstance(value, str) else str(value)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="utf-8").decode()


def lxml_xml2dict(text: str) -> dict:
    """What slapos.util.xml2dict (1.26) reads: direct <parameter> children, repeated ids joined."""
    result: dict = {}
    for element in etree.fromstring(text.encode()).iterfind("parameter"):
        previous = result.get(element.get("id"))
        value = element.text if previous is None else f"{previous} {element.text}"
        result[element.get("id")] = value
    return result


def test_documented_example() -> None:
    text = ("<?xml version='1.0' encoding='utf-8'?>\n"
            "<instance>\n"
            '  <parameter id="baz">qux</parameter>\n'
            '  <parameter id="foo">bar</parameter>\n'
            "</instance>\n")
    assert dict_to_instance_xml({"foo": "bar", "baz": "qux"}) == text
    assert instance_xml_to_dict(text) == {"baz": "qux", "foo": "bar"}


def test_empty_dict() -> None:
    assert dict_to_instance_xml({}) == "<?xml version='1.0' encoding='utf-8'?>\n<instance/>\n"
    assert instance_xml_to_dict(dict_to_instance_xml({})) == {}


def test_values_are_strs() -> None:
    params = {"n": 1, "f": 1.5, "b": True, "none": None, "empty": "", "bytes": b"caf\xc3\xa9"}
    text = dict_to_instance_xml(params)
    assert '<parameter id="n">1</parameter>' in text
    assert '<parameter id="b">True</parameter>' in text
    assert '<parameter id="none">None</parameter>' in text  # as slapos.util.dict2xml does
    assert '<parameter id="empty"></parameter>' in text
    assert '<parameter id="bytes">caf\u00e9</parameter>' in text
    assert text == lxml_dict2xml({k: v for k, v in params.items() if k != "bytes"} |
                                 {"bytes": "caf\u00e9"})
    assert instance_xml_to_dict(text) == {
        "n": "1", "f": "1.5", "b": "True", "none": "None", "empty": None, "bytes": "caf\u00e9"}


def test_escaping() -> None:
    params = {'k"&<>\n\t\r': 'v<&>"\'\r\n\t\u00e9\U0001f600', "json": '{\n  "a": [1, "<b>"]\n}'}
    text = dict_to_instance_xml(params)
    assert text == lxml_dict2xml(params)
    assert '<parameter id="k&quot;&amp;&lt;&gt;&#10;&#9;&#13;">' in text
    assert ">v&lt;&amp;&gt;\"'&#13;\n\t\u00e9\U0001f600</parameter>" in text
    assert instance_xml_to_dict(text) == params


def test_invalid_characters() -> None:
    for bad in ("\x00", "\x0b", "\ufffe", "\ud800"):
        with pytest.raises(ValueError):
            dict_to_instance_xml({"k": f"a{bad}"})
        with pytest.raises(ValueError):
            dict_to_instance_xml({f"k{bad}": "a"})


_XML_CHARS = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="".join(map(chr, [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)]))
    + "\ufffe\uffff",
)
_TEXT = st.text(st.one_of(st.sampled_from('&<>"\'\r\n\t \u00e9'), _XML_CHARS), max_size=15)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_TEXT, st.one_of(_TEXT, st.integers(), st.none(), st.booleans()),
                       max_size=6))
def test_same_text_as_dict2xml_and_round_trip(params: dict[str, Any]) -> None:
    text = dict_to_instance_xml(params)
    assert text == lxml_dict2xml(params)
    expected = {key: str(value) or None for key, value in params.items()}
    assert instance_xml_to_dict(text) == expected == lxml_xml2dict(text)


def test_reading_like_xml2dict() -> None:
    text = ('<instance><parameter id="a">x<sub>y</sub>z</parameter>'
            '<parameter id="a">w</parameter><parameter id="e"/><parameter id="s">  </parameter>'
            '<other id="o">1</other><group><parameter id="deep">2</parameter></group>'
            '<parameter id="c"><![CDATA[<raw>&]]></parameter></instance>')
    assert instance_xml_to_dict(text) == lxml_xml2dict(text) == {
        "a": "x w", "e": None, "s": "  ", "c": "<raw>&"}


def test_reading_edge_cases() -> None:
    assert instance_xml_to_dict("") == {}
    assert instance_xml_to_dict(b"<instance/>") == {}
    # the first value empty: the second one wins (as xml2dict); the second empty: nothing added
    # (xml2dict raises TypeError there)
    assert instance_xml_to_dict('<instance><parameter id="a"/><parameter id="a">1</parameter>'
                                '<parameter id="a"/></instance>') == {"a": "1"}
    latin = ("<?xml version='1.0' encoding='iso-8859-1'?>"
             "<instance><parameter id='k'>\u00e9</parameter></instance>")
    assert instance_xml_to_dict(latin.encode("iso-8859-1")) == {"k": "\u00e9"}
    assert instance_xml_to_dict(latin) == {"k": "\u00e9"}


@pytest.mark.parametrize("payload", [
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><instance><parameter id="a">&e;'
    b"</parameter></instance>",
    b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b'<instance><parameter id="a">&b;</parameter></instance>',
    b"<!DOCTYPE instance><instance/>",
])
def test_dtds_and_entities_are_refused(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="not allowed"):
        instance_xml_to_dict(payload)


@pytest.mark.parametrize("payload", [
    "<instance><parameter id='a'>x</instance>",
    "not xml",
    "<instance><parameter>no id</parameter></instance>",
    "<instance><parameter id='a'>&undeclared;</parameter></instance>",
    "<instance>" + "<g>" * 200 + "</g>" * 200 + "</instance>",
])
def test_malformed_is_a_decode_error(payload: str) -> None:
    with pytest.raises(DecodeError):
        instance_xml_to_dict(payload)


def test_oversize() -> None:
    text = dict_to_instance_xml({"k": "v" * 100})
    assert instance_xml_to_dict(text, max_bytes=len(text)) == {"k": "v" * 100}
    with pytest.raises(TooLarge):
        instance_xml_to_dict(text, max_bytes=len(text) - 1)
