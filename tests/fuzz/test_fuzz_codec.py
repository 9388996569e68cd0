"""Fuzzing the SLAP XML codec: `master/api/slap_xml/marshal.py` and `instance_xml.py`.

Whatever it is given (random bytes, random text with lone surrogates, documents it wrote and then
mutated, truncated or re-declared in another encoding, hostile DTD/entity/object payloads,
reference bombs, size limits from 1 byte up), a decoder either answers or raises one of
`slap.errors`' `DecodeError`, `TooLarge` or `ValidationError`; nothing else ever escapes, and
every call returns within `TIME_LIMIT` seconds. What `dumps` and `dict_to_instance_xml` write
always reads back, equal.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from partita.master.api.slap_xml.instance_xml import dict_to_instance_xml, instance_xml_to_dict
from partita.master.api.slap_xml.marshal import MarshalObject, dumps, loads, loads_bool, loads_dict, loads_optional_str
from partita.slap.errors import DecodeError, TooLarge, ValidationError
from tests.fuzz.conftest import SCALE, fuzz_settings
from tests.fuzz.test_fuzz_slap_xml import HOSTILE_DOCUMENTS, XML_TEXT, nested_values

ALLOWED = (DecodeError, TooLarge, ValidationError)
TIME_LIMIT = 2.0  # seconds for one call on inputs of at most a few hundred kB


def examples(count: int) -> int:
    return max(1, int(count * SCALE))


def decode(function: Callable[..., Any], data: Any, *args: Any) -> Any:
    """Call a decoder: its value or its (allowed) error; anything else fails the test."""
    start = time.perf_counter()
    try:
        result: Any = function(data, *args)
    except ALLOWED as error:
        result = error
    except Exception as error:  # noqa: BLE001 - the property under test
        raise AssertionError(
            f"{function.__name__}({data[:300]!r}{', ' if args else ''}{', '.join(map(repr, args))}) "
            f"raised {type(error).__name__}: {error} (only DecodeError, TooLarge, ValidationError may escape)"
        ) from error
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_LIMIT, f"{function.__name__} took {elapsed:.2f} s on {len(data)} bytes: {data[:300]!r}"
    return result


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)  # surrogates included
ENCODINGS = ["utf-8", "UTF-8", "utf8", "latin-1", "iso-8859-1", "us-ascii", "cp1252", "utf-16", "utf-16-le",
             "utf-32", "utf-7", "shift_jis", "euc-jp", "big5", "gb18030", "koi8-r", "idna", "punycode", "rot13",
             "base64", "hex", "zlib", "bogus", "", " utf-8", "utf-8\x00", "x" * 200]
PIECES = ["<", ">", "&", "&amp;", "&lt;", "&#0;", "&#xD800;", "&#13;", "&#x1F600;", "</string>", "<string>",
          "<list>", "</list>", '<reference id="i2"/>', '<reference id="i1"/>', '<dictionary id="i2">',
          '<object module="os" class="system">', "<tuple>", "<none/>", "<int>", "<float>", "<bool>", "]]>",
          "<![CDATA[", "<!--", "-->", "<?pi x?>", "<!DOCTYPE m>", '<!ENTITY e "x">', "&e;", "\x00", "\x1f",
          "\ufffe", "\ud800", "\r\n", '"', "'", "=", " id=", "é", "\ufeff", "<instance>", "<parameter>",
          '<parameter id="a">', "</parameter>"]


@st.composite
def mutated(draw: Any, documents: st.SearchStrategy[str]) -> str:
    """A document with a few pieces inserted, spans deleted or duplicated, or cut short."""
    text = draw(documents)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "insert", "delete", "duplicate", "truncate"]))
        if action == "insert":
            text = text[:at] + draw(st.sampled_from(PIECES)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 20)):]
        elif action == "duplicate":
            end = min(len(text), at + draw(st.integers(1, 60)))
            text = text[:end] + text[at:end] + text[end:]
        else:
            text = text[:at]
    return text


def as_bytes_or_text(texts: st.SearchStrategy[str]) -> st.SearchStrategy[bytes | str]:
    """The text itself, or encoded (invalid UTF-8 where it holds lone surrogates)."""
    return st.one_of(texts, texts.map(lambda text: text.encode("utf-8", "surrogatepass")))


def declared(documents: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Bytes with an XML declaration naming some encoding (real, odd, not a text codec, unknown)."""
    return st.tuples(st.sampled_from(ENCODINGS), documents).map(
        lambda pair: f'<?xml version="1.0" encoding="{pair[0]}"?>{pair[1]}'.encode("utf-8", "surrogatepass"))


def reference_bombs() -> st.SearchStrategy[str]:
    @st.composite
    def bomb(draw: Any) -> str:
        levels, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
        leaf = draw(st.sampled_from(["<string>" + "a" * 100 + "</string>", "<none/>", "<dictionary id=\"i3\"/>"]))
        parts = ['<marshal><list id="i2"><list id="i3">' + leaf + "</list>"]
        for level in range(levels):
            parts.append(f'<list id="i{level + 4}">' + f'<reference id="i{level + 3}"/>' * width + "</list>")
        return "".join(parts) + "</list></marshal>"
    return bomb()


def deep(tags: list[str]) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(tags), st.integers(1, 3000)).map(
        lambda pair: "<marshal>" + f"<{pair[0]}>" * pair[1] + f"</{pair[0]}>" * pair[1] + "</marshal>")


MARSHALLED = nested_values().map(lambda value: dumps(value).decode("ascii"))
MARSHAL_INPUTS = st.one_of(
    st.binary(max_size=500),
    as_bytes_or_text(ANY_TEXT),
    as_bytes_or_text(mutated(MARSHALLED)),
    as_bytes_or_text(mutated(st.sampled_from(HOSTILE_DOCUMENTS))),
    st.sampled_from(HOSTILE_DOCUMENTS),
    declared(st.one_of(MARSHALLED, mutated(MARSHALLED))),
    reference_bombs(),
    deep(["list", "tuple", "dictionary", "set", "marshal", "string"]),
)

INSTANCE_XML = st.dictionaries(XML_TEXT, st.one_of(XML_TEXT, st.integers(), st.none()), max_size=6).map(
    dict_to_instance_xml)
INSTANCE_INPUTS = st.one_of(
    st.binary(max_size=500),
    as_bytes_or_text(ANY_TEXT),
    as_bytes_or_text(mutated(INSTANCE_XML)),
    declared(st.one_of(INSTANCE_XML.map(lambda text: text.split("?>", 1)[1]), mutated(INSTANCE_XML))),
    st.sampled_from(HOSTILE_DOCUMENTS).map(lambda text: text.replace("marshal", "instance")),
    st.integers(1, 3000).map(lambda n: "<instance>" + "<parameter id='a'>" * n + "</parameter>" * n + "</instance>"),
)


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

@fuzz_settings(examples(800))
@given(data=MARSHAL_INPUTS)
def test_marshal_loads_raises_only_its_errors(data: bytes | str) -> None:
    decode(loads, data)
    decode(loads_dict, data, "field")
    decode(loads_optional_str, data, "state")
    decode(loads_bool, data, "shared_xml")


@fuzz_settings(examples(300))
@given(data=MARSHAL_INPUTS, max_bytes=st.integers(1, 5000))
def test_marshal_size_limit(data: bytes | str, max_bytes: int) -> None:
    """Over `max_bytes` is TooLarge, before anything is parsed; under it, the usual outcomes."""
    result = decode(loads, data, max_bytes)
    size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
    if size > max_bytes:
        assert isinstance(result, TooLarge), (size, max_bytes, result)


@fuzz_settings(examples(600))
@given(data=INSTANCE_INPUTS, max_bytes=st.one_of(st.just(10 * 1024 * 1024), st.integers(1, 5000)))
def test_instance_xml_raises_only_its_errors(data: bytes | str, max_bytes: int) -> None:
    result = decode(instance_xml_to_dict, data, max_bytes)
    if not isinstance(result, Exception):
        assert isinstance(result, dict) and all(type(key) is str for key in result), result
        assert all(value is None or type(value) is str for value in result.values()), result


def _comparable(value: Any) -> Any:
    """What `loads` gives back for a value `dumps` wrote (bytes as text; NaN compared as text)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_comparable(item) for item in value)
    if isinstance(value, dict):
        return {_comparable(key): _comparable(item) for key, item in value.items()}
    if isinstance(value, set | frozenset):
        return {_comparable(item) for item in value}
    if isinstance(value, MarshalObject):
        return ("object", value.module, value.klass, _comparable(tuple(value.initargs)), _comparable(value.state))
    return value


@fuzz_settings(examples(300))
@given(value=nested_values())
def test_what_dumps_writes_loads_reads(value: Any) -> None:
    written = dumps(value)
    read = decode(loads, written)
    assert not isinstance(read, Exception), (value, written, read)
    assert _comparable(read) == _comparable(value), (value, written, read)


@fuzz_settings(examples(200))
@given(params=st.dictionaries(XML_TEXT, XML_TEXT, max_size=6))
def test_what_dict_to_instance_xml_writes_reads_back(params: dict[str, str]) -> None:
    written = dict_to_instance_xml(params)
    read = decode(instance_xml_to_dict, written)
    assert read == {key: value or None for key, value in params.items()}, (params, written, read)
