"""Tests of master/api/slap_xml/marshal.py: exact shapes, round trips against the real xml_marshaller, safety."""
from __future__ import annotations

import enum
import math
import re
import sys
import types
from collections import OrderedDict, namedtuple
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xml_marshaller import xml_marshaller as real

from partita.master.api.slap_xml.marshal import (
    Fragment, MarshalObject, dumps, encode_fragment, loads, loads_bool, loads_dict, loads_optional_str,
)
from partita.slap.errors import DecodeError, TooLarge, ValidationError


def same(a: Any, b: Any) -> bool:
    """Equality that also checks types (True is not 1, a tuple is not a list) and -0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        b_keys = {(type(k), k): k for k in b}
        return all((type(k), k) in b_keys and same(k, b_keys[type(k), k])
                   and same(v, b[b_keys[type(k), k]]) for k, v in a.items())
    if isinstance(a, float):
        return (a == b and math.copysign(1, a) == math.copysign(1, b)) or (a != a and b != b)
    return a == b


# --- §2.2: every documented shape, written out --------------------------------------------------

SHAPES = [
    ('<a>&"x"', b'<marshal><string>&amp;lt;a&amp;gt;&amp;amp;"x"</string></marshal>'),
    ("\u00e9", b"<marshal><string>&#233;</string></marshal>"),
    (None, b"<marshal><none/></marshal>"),
    (True, b"<marshal><bool>1</bool></marshal>"),
    (False, b"<marshal><bool>0</bool></marshal>"),
    (1, b"<marshal><int>1</int></marshal>"),
    (10**24, b"<marshal><long>1000000000000000000000000</long></marshal>"),
    (-(10**24), b"<marshal><long>-1000000000000000000000000</long></marshal>"),
    (1.5, b"<marshal><float>1.5</float></marshal>"),
    ([1, "a"], b'<marshal><list id="i2"><int>1</int><string>a</string></list></marshal>'),
    ((1, 2), b"<marshal><tuple><int>1</int><int>2</int></tuple></marshal>"),
    ({"b": 1, "a": 2}, b'<marshal><dictionary id="i2"><string>a</string><int>2</int>'
                       b'<string>b</string><int>1</int></dictionary></marshal>'),
    ({}, b'<marshal><dictionary id="i2"/></marshal>'),
    ([], b'<marshal><list id="i2"/></marshal>'),
    ((), b"<marshal><tuple/></marshal>"),
    ("", b"<marshal><string></string></marshal>"),
    ("a\r\nb\tc", b"<marshal><string>a&#13;\nb\tc</string></marshal>"),
    ("\U0001f600", b"<marshal><string>&#128512;</string></marshal>"),
    ("]]>", b"<marshal><string>]]&amp;gt;</string></marshal>"),
    ({"x": [{}], "a": ()}, b'<marshal><dictionary id="i2"><string>a</string><tuple/>'
                           b'<string>x</string><list id="i3"><dictionary id="i4"/></list>'
                           b"</dictionary></marshal>"),
]


@pytest.mark.parametrize(("value", "wire"), SHAPES)
def test_documented_shape(value: Any, wire: bytes) -> None:
    assert dumps(value) == wire
    assert real.dumps(value) == wire
    assert same(loads(wire), value)


def test_bytes_are_strings() -> None:
    assert dumps(b"bytes") == b"<marshal><string>bytes</string></marshal>"
    assert dumps("caf\u00e9".encode()) == b"<marshal><string>caf&#233;</string></marshal>"
    assert loads(dumps(b"bytes")) == "bytes"


def test_second_occurrence_is_a_reference() -> None:
    shared = [1]
    value = [shared, shared, (shared,), {"a": shared}]
    wire = (b'<marshal><list id="i2"><list id="i3"><int>1</int></list><reference id="i3"/>'
            b'<tuple><reference id="i3"/></tuple><dictionary id="i4"><string>a</string>'
            b'<reference id="i3"/></dictionary></list></marshal>')
    assert dumps(value) == wire == real.dumps(value)
    decoded = loads(wire)
    assert decoded == value
    assert decoded[0] is decoded[1] is decoded[2][0] is decoded[3]["a"]


def test_equal_but_distinct_objects_are_not_references() -> None:
    wire = b'<marshal><list id="i2"><list id="i3"/><list id="i4"/></list></marshal>'
    assert dumps([[], []]) == wire


def test_float_special_values() -> None:
    for value in (float("inf"), float("-inf"), float("nan"), -0.0, 1e-300, 1e100):
        assert dumps(value) == real.dumps(value)
    assert math.isnan(loads(dumps(float("nan"))))
    assert loads(b"<marshal><float>-inf</float></marshal>") == float("-inf")


def test_long_bound_is_the_float_1e24() -> None:
    # xml_marshaller compares with the float 1e24, which is 999999999999999983222784
    below, bound = 999999999999999983222783, 999999999999999983222784
    assert dumps(below) == b"<marshal><int>999999999999999983222783</int></marshal>"
    assert dumps(bound) == b"<marshal><long>999999999999999983222784</long></marshal>"
    assert loads(b"<marshal><long>5</long></marshal>") == 5


def test_keys_of_mixed_types_sort_like_xml_marshaller() -> None:
    value = {1: "one", "a": "A", None: 0, (1, 2): 3, (1,): 4, 2.5: 5}
    assert dumps(value) == real.dumps(value)
    assert same(loads(dumps(value)), value)


def test_sets() -> None:
    assert dumps({7}) == b'<marshal><set id="i2"><int>7</int></set></marshal>'
    wire = b'<marshal><set id="i2"><int>7</int><string>a</string></set></marshal>'
    assert loads(wire) == {7, "a"}
    assert dumps(frozenset()) == b'<marshal><set id="i2"/></marshal>'


def test_unicode_tag_decodes_as_string() -> None:
    assert loads(b"<marshal><unicode>caf&#233; &amp;lt;</unicode></marshal>") == "caf\u00e9 <"


def test_unescape_is_saxutils_unescape() -> None:
    # '&amp;lt;' once parsed is '&lt;', the first layer gives '<'; a lone '&' stays
    wire = b"<marshal><string>&amp;lt;&amp;amp;lt;&amp;&amp;quot;</string></marshal>"
    assert loads(wire) == real.loads(wire) == "<&lt;&&quot;"


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


def test_subclasses_are_encoded_as_their_base_type() -> None:
    Pair = namedtuple("Pair", "a b")
    assert dumps(Color.RED) == dumps("red")
    assert dumps(Level.HIGH) == dumps(3)
    assert dumps(Pair(1, 2)) == dumps((1, 2))
    assert dumps(OrderedDict(b=1, a=2)) == dumps({"b": 1, "a": 2})
    shared = OrderedDict()
    assert dumps([shared, shared]) == (b'<marshal><list id="i2"><dictionary id="i3"/>'
                                       b'<reference id="i3"/></list></marshal>')


def test_unsupported_values() -> None:
    with pytest.raises(TypeError):
        dumps(object())
    with pytest.raises(TypeError):
        dumps(1j)
    for text in ("\x00", "a\x0bb", "\x1f", "\ufffe", "\uffff", "\ud800"):
        with pytest.raises(ValueError):
            dumps(text)
        with pytest.raises(ValueError):  # the real one refuses them as well (lxml)
            real.dumps(text)
    with pytest.raises(ValueError):
        dumps({"ok": ["\x01"]})


# --- round trips against the real xml_marshaller ------------------------------------------------

# XML 1.0 cannot carry C0 controls (other than tab, newline, carriage return), surrogates, U+FFFE
# and U+FFFF: both codecs refuse them with ValueError (test_unsupported_values); the strategy
# leaves them out.
_XML_CHARS = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="".join(map(chr, [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)]))
    + "\ufffe\uffff",
)
_TEXT = st.text(st.one_of(st.sampled_from('&<>"\'\r\n\t;#\u00e9\U0001f600 '), _XML_CHARS),
                max_size=20)
_SCALARS = st.one_of(
    _TEXT, st.none(), st.booleans(), st.integers(),
    st.integers(min_value=-10**30, max_value=10**30),
    st.floats(allow_nan=False),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(_TEXT, inner, max_size=5),
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_VALUES)
def test_round_trip_and_same_bytes_as_xml_marshaller(value: Any) -> None:
    ours = dumps(value)
    assert ours == real.dumps(value)
    assert same(loads(ours), value)
    assert same(real.loads(ours), value)
    assert same(loads(real.dumps(value)), value)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(
    st.one_of(st.none(), st.integers(), _TEXT, st.tuples(st.integers(), _TEXT)),
    _SCALARS, max_size=6))
def test_mixed_keys_like_xml_marshaller(value: dict) -> None:
    assert dumps(value) == real.dumps(value)
    assert same(loads(dumps(value)), value)


def test_str_input_and_declared_encoding() -> None:
    assert loads('<marshal><string>caf\u00e9</string></marshal>') == "caf\u00e9"
    latin = "<?xml version='1.0' encoding='iso-8859-1'?><marshal><string>caf\u00e9</string>"
    latin += "</marshal>"
    assert loads(latin.encode("iso-8859-1")) == "caf\u00e9"
    assert loads(latin) == "caf\u00e9"  # a str is already decoded: its declaration is ignored
    pretty = b'\n<marshal>\n  <list id="i2">\n    <int> 4 </int>\n  </list>\n</marshal>\n'
    assert loads(pretty) == [4]


# --- objects: the slapos.slap.slap classes the server emits -------------------------------------

def _fake_slap_module() -> types.ModuleType:
    """A stand-in for ``slapos.slap.slap`` with the constructors of §2.2."""
    module = types.ModuleType("slapos.slap.slap")

    class Computer:
        def __init__(self, computer_id: str) -> None:
            self._computer_id = computer_id

        def __getinitargs__(self) -> tuple:
            return (self._computer_id,)

    class ComputerPartition:
        def __init__(self, computer_id: str, partition_id: str, request_dict: Any = None) -> None:
            self._computer_id = computer_id
            self._partition_id = partition_id
            self._request_dict = request_dict

        def __getinitargs__(self) -> tuple:
            return (self._computer_id, self._partition_id, self._request_dict)

    class SoftwareRelease:
        def __init__(self, software_release: Any = None, computer_guid: Any = None) -> None:
            self._software_release = software_release
            self._computer_guid = computer_guid

        def __getinitargs__(self) -> tuple:
            return (self._software_release, self._computer_guid)

    class SoftwareInstance:
        def __init__(self, **kw: Any) -> None:
            self.__dict__.update(kw)

    for cls in (Computer, ComputerPartition, SoftwareRelease, SoftwareInstance):
        cls.__module__ = "slapos.slap.slap"
        setattr(module, cls.__name__, cls)
    return module


@pytest.fixture
def slap_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = _fake_slap_module()
    for name in ("slapos", "slapos.slap"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "slapos.slap.slap", module)
    return module


def _as_marshal_object(value: Any) -> Any:
    """Our MarshalObject tree for a tree of (fake) slapos.slap.slap instances."""
    if isinstance(value, list):
        return [_as_marshal_object(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_marshal_object(item) for key, item in value.items()}
    if hasattr(value, "__dict__"):
        initargs = value.__getinitargs__() if hasattr(value, "__getinitargs__") else ()
        return MarshalObject(type(value).__module__, type(value).__name__, tuple(initargs),
                             _as_marshal_object(value.__dict__))
    return value


def _full_computer_information(slap: types.ModuleType) -> Any:
    """A Computer shaped like the getFullComputerInformation answer of §2.5."""
    url = "/opt/sr/software.cfg"
    computer = slap.Computer("local_computer")
    busy = slap.ComputerPartition("local_computer", "slappart0")
    busy._connection_dict = {"url": "http://127.0.1.1:18090/", "echo-foo": "<b>&amp;"}
    busy._instance_guid = "local_computer-slappart0"
    busy._need_modification = 1
    ip_list = [("slaptap0", "127.0.1.1"), ("slaptap0", "::1")]
    busy._parameter_dict = {
        "foo": "bar", "full_address_list": [], "ip_list": ip_list, "instance_title": "caf\u00e9",
        "slave_instance_list": [{"hostname": "example.invalid", "slave_reference": "_myslave"}],
        "timestamp": "1795304581.4470894",
    }
    busy._requested_state = "started"
    release = slap.SoftwareRelease(url, "local_computer")
    release._software_instance_list = []
    busy._software_release_document = release
    free = slap.ComputerPartition("local_computer", "slappart1")
    free._instance_guid = "local_computer-slappart1"
    free._need_modification = 0
    free._requested_state = "destroyed"
    free._software_release_document = None
    computer._computer_partition_list = [busy, free]
    supplied = slap.SoftwareRelease(url, "local_computer")
    supplied._requested_state = "available"
    supplied._software_instance_list = []
    computer._software_release_list = [supplied]
    return computer


def test_objects_match_xml_marshaller(slap_module: types.ModuleType) -> None:
    computer = _full_computer_information(slap_module)
    ours = dumps(_as_marshal_object(computer))
    assert ours == real.dumps(computer)
    ids = re.findall(rb' id="(i\d+)"', ours)
    assert ids == [f"i{n}".encode() for n in range(2, 2 + len(ids))]
    assert ours.startswith(
        b'<marshal><object id="i2" module="slapos.slap.slap" class="Computer"><tuple>'
        b'<string>local_computer</string></tuple><dictionary id="i3"><string>_computer_id</string>'
        b'<string>local_computer</string><string>_computer_partition_list</string><list id="i4">'
        b'<object id="i5" module="slapos.slap.slap" class="ComputerPartition"><tuple>'
        b'<string>local_computer</string><string>slappart0</string><none/></tuple>'
        b'<dictionary id="i6">')
    # the real client reads our bytes back into its classes
    decoded = real.loads(ours)
    assert isinstance(decoded, slap_module.Computer)
    busy, free = decoded._computer_partition_list
    assert isinstance(busy, slap_module.ComputerPartition)
    assert busy._parameter_dict["ip_list"] == [("slaptap0", "127.0.1.1"), ("slaptap0", "::1")]
    assert busy._connection_dict["echo-foo"] == "<b>&amp;"
    assert busy._software_release_document._software_release == "/opt/sr/software.cfg"
    assert free._requested_state == "destroyed" and free._software_release_document is None
    # and we read it back into MarshalObjects, never into classes
    assert loads(ours) == _as_marshal_object(computer)


def test_software_instance_shape(slap_module: types.ModuleType) -> None:
    instance = slap_module.SoftwareInstance(
        _connection_dict={}, _instance_guid="local_computer-slappart0",
        _parameter_dict={"foo": "bar"}, connection_xml=None,
        ip_list=[("slaptap0", "127.0.1.1")])
    wire = (b'<marshal><object id="i2" module="slapos.slap.slap" class="SoftwareInstance"><tuple/>'
            b'<dictionary id="i3"><string>_connection_dict</string><dictionary id="i4"/>'
            b'<string>_instance_guid</string><string>local_computer-slappart0</string>'
            b'<string>_parameter_dict</string><dictionary id="i5"><string>foo</string>'
            b'<string>bar</string></dictionary><string>connection_xml</string><none/>'
            b'<string>ip_list</string><list id="i6"><tuple><string>slaptap0</string>'
            b'<string>127.0.1.1</string></tuple></list></dictionary></object></marshal>')
    ours = dumps(_as_marshal_object(instance))
    assert ours == wire == real.dumps(instance)
    decoded = real.loads(ours)
    assert isinstance(decoded, slap_module.SoftwareInstance)
    assert decoded._parameter_dict == {"foo": "bar"}


# --- fragments: encoded once, placed anywhere ----------------------------------------------------

def test_fragment_is_cut_at_its_relative_ids() -> None:
    fragment = encode_fragment({"a": [1], "b": ()})
    assert fragment == Fragment(
        ('<dictionary id="i', '"><string>a</string><list id="i', '"><int>1</int></list>'
         '<string>b</string><tuple/></dictionary>'), (1, 2), 2)
    assert fragment.render(1) == dumps({"a": [1], "b": ()}).decode()[len("<marshal>"):-len("</marshal>")]
    assert fragment.render(40).startswith('<dictionary id="i41"><string>a</string><list id="i42">')


def test_fragment_without_ids_is_its_text() -> None:
    fragment = encode_fragment(("x", 1, None))
    assert fragment == Fragment(("<tuple><string>x</string><int>1</int><none/></tuple>",), (), 0)
    assert dumps([fragment, {}]) == dumps([("x", 1, None), {}])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_VALUES, st.booleans()), max_size=6), _VALUES)
def test_fragments_give_the_bytes_of_the_values_they_stand_for(items: list, after: Any) -> None:
    """Values replaced by their fragments (any of them, anywhere, ids before and after)."""
    values = [value for value, _ in items]
    placed = [encode_fragment(value) if as_fragment else value for value, as_fragment in items]
    expected = dumps({"items": values, "then": after, "z": [{}]})
    assert dumps({"items": placed, "then": after, "z": [{}]}) == expected
    assert dumps(MarshalObject("m", "C", (), {"l": placed, "m": after})) == dumps(
        MarshalObject("m", "C", (), {"l": values, "m": after}))


def test_fragment_with_references_is_shifted_too() -> None:
    release = MarshalObject("slapos.slap.slap", "SoftwareRelease", ("u", "c"), {"l": []})
    value = [{"r": release}, release, (release,)]
    fragment = encode_fragment(value)
    assert fragment.size == 5 and fragment.ids == (1, 2, 3, 4, 5, 3, 3)
    assert dumps([{}, fragment, []]) == dumps([{}, value, []])
    text = dumps(["x", fragment]).decode()
    assert text.count('<reference id="i5"/>') == 2 and '<object id="i5" ' in text
    assert same(loads(text), ["x", loads(dumps(value))])


def test_fragment_is_not_placed_inside_a_fragment() -> None:
    with pytest.raises(TypeError, match="inside another fragment"):
        encode_fragment([encode_fragment([1])])


def test_fragment_refuses_what_dumps_refuses() -> None:
    """The mark cutting ids (NUL) can never come from a value: such strings are refused."""
    with pytest.raises(ValueError, match="cannot be carried in XML"):
        encode_fragment({"key": "a\x00b"})
    with pytest.raises(TypeError):
        encode_fragment(object())


def test_shared_object_is_a_reference() -> None:
    release = MarshalObject("slapos.slap.slap", "SoftwareRelease", ("u", "c"), {})
    wire = dumps([release, release])
    assert wire == (b'<marshal><list id="i2"><object id="i3" module="slapos.slap.slap" '
                    b'class="SoftwareRelease"><tuple><string>u</string><string>c</string></tuple>'
                    b'<dictionary id="i4"/></object><reference id="i3"/></list></marshal>')
    first, second = loads(wire)
    assert first is second and first == release


def test_object_attributes_are_escaped() -> None:
    obj = MarshalObject('m"&<>\n', "K\u00e9")
    assert dumps(obj) == (b'<marshal><object id="i2" module="m&quot;&amp;&lt;&gt;&#10;" '
                          b'class="K&#233;"><tuple/><dictionary id="i3"/></object></marshal>')
    assert loads(dumps(obj)) == obj


def test_object_is_never_instantiated(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    module = types.ModuleType("trap")

    class Trap:
        def __init__(self, *args: Any) -> None:
            calls.append(args)

    module.Trap = Trap
    monkeypatch.setitem(sys.modules, "trap", module)
    wire = (b'<marshal><object id="i2" module="trap" class="Trap"><tuple><string>rm -rf</string>'
            b'</tuple><dictionary id="i3"><string>x</string><int>1</int></dictionary></object>'
            b'</marshal>')
    assert loads(wire) == MarshalObject("trap", "Trap", ("rm -rf",), {"x": 1})
    assert loads(wire.replace(b"trap", b"os").replace(b"Trap", b"system")).klass == "system"
    assert loads(wire.replace(b"trap", b"no.such.module")).module == "no.such.module"
    assert calls == []


def test_object_without_attributes_from_python_3_11() -> None:
    # on Python 3.11+ xml_marshaller writes <none/> for the state of an object without attributes
    wire = b'<marshal><object id="i2" module="m" class="K"><tuple/><none/></object></marshal>'
    assert loads(wire) == MarshalObject("m", "K", (), {})


# --- helpers for the protocol adapters ----------------------------------------------------------

def test_loads_dict() -> None:
    wire = ('<marshal><dictionary id="i2"><string>baz</string><string>qux</string>'
            '<string>foo</string><string>bar</string></dictionary></marshal>')
    assert loads_dict(wire, "partition_parameter_xml") == {"baz": "qux", "foo": "bar"}
    assert loads_dict('<marshal><dictionary id="i2"/></marshal>', "filter_xml") == {}
    with pytest.raises(ValidationError, match="^filter_xml must be a marshalled dictionary$"):
        loads_dict("<marshal><none/></marshal>", "filter_xml")
    with pytest.raises(DecodeError):
        loads_dict("<marshal>", "filter_xml")


def test_loads_optional_str() -> None:
    assert loads_optional_str("<marshal><none/></marshal>", "state") is None
    assert loads_optional_str("<marshal><string>started</string></marshal>", "state") == "started"
    with pytest.raises(ValidationError, match="state"):
        loads_optional_str("<marshal><int>1</int></marshal>", "state")


def test_loads_bool() -> None:
    assert loads_bool("<marshal><bool>0</bool></marshal>", "shared_xml") is False
    assert loads_bool("<marshal><bool>1</bool></marshal>", "shared_xml") is True
    with pytest.raises(ValidationError, match="shared_xml"):
        loads_bool("<marshal><int>1</int></marshal>", "shared_xml")


# --- safety -------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<marshal><string>&lol3;</string></marshal>"""

UNSAFE = {
    "billion laughs": BILLION_LAUGHS,
    "external entity": b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                       b"<marshal><string>&e;</string></marshal>",
    "parameter entity": b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://example.invalid/x.dtd"> %p;]>'
                        b"<marshal><none/></marshal>",
    "external DTD": b'<!DOCTYPE marshal SYSTEM "http://example.invalid/x.dtd">'
                    b"<marshal><none/></marshal>",
    "bare DTD": b"<!DOCTYPE marshal><marshal><none/></marshal>",
}


@pytest.mark.parametrize("payload", UNSAFE.values(), ids=UNSAFE.keys())
def test_dtds_and_entities_are_refused(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="not allowed"):
        loads(payload)
    with pytest.raises(DecodeError, match="not allowed"):
        loads(payload.decode())


MALFORMED = {
    "unclosed": b"<marshal><string>a</marshal>",
    "not xml": b"hello",
    "empty": b"",
    "undeclared entity": b"<marshal><string>&e;</string></marshal>",
    "bad utf-8": b"<marshal><string>\xff</string></marshal>",
    "unknown tag": b"<marshal><pickle>x</pickle></marshal>",
    "code": b"<marshal><code>YQ==</code></marshal>",
    "complex": b"<marshal><complex>1.0 2.0</complex></marshal>",
    "other root": b"<string>a</string>",
    "empty root": b"<marshal/>",
    "two values": b"<marshal><none/><none/></marshal>",
    "nested marshal": b"<marshal><list><marshal/></list></marshal>",
    "element in scalar": b"<marshal><string>a<none/></string></marshal>",
    "text in container": b"<marshal><list id='i2'>oops</list></marshal>",
    "bad int": b"<marshal><int>one</int></marshal>",
    "bad float": b"<marshal><float>1,5</float></marshal>",
    "bad bool": b"<marshal><bool>yes</bool></marshal>",
    "odd dictionary": b"<marshal><dictionary id='i2'><string>a</string></dictionary></marshal>",
    "unhashable key": b"<marshal><dictionary id='i2'><list id='i3'/><none/></dictionary></marshal>",
    "unknown reference": b"<marshal><reference id='i9'/></marshal>",
    "cycle": b"<marshal><list id='i2'><reference id='i2'/></list></marshal>",
    "duplicate id": b"<marshal><tuple><list id='i2'/><list id='i2'/></tuple></marshal>",
    "object without class": b"<marshal><object id='i2' module='m'><tuple/><dictionary id='i3'/>"
                            b"</object></marshal>",
    "object without state": b"<marshal><object id='i2' module='m' class='K'><tuple/></object>"
                            b"</marshal>",
    "huge int": b"<marshal><int>" + b"9" * 5000 + b"</int></marshal>",
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_input_is_a_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        loads(payload)


def test_malformed_xml_message() -> None:
    with pytest.raises(DecodeError, match="^malformed XML: "):
        loads(b"<marshal><string>a</marshal>")


def test_depth_is_bounded() -> None:
    def nested(depth: int) -> bytes:
        return b"<marshal>" + b"<tuple>" * depth + b"</tuple>" * depth + b"</marshal>"

    assert loads(nested(98)) is not None
    with pytest.raises(DecodeError, match="nesting"):
        loads(nested(100))
    with pytest.raises(DecodeError, match="nesting"):
        loads(nested(100_000))


def test_reference_expansion_is_bounded() -> None:
    """A billion-laughs built from references: each list holds ten references to the previous."""
    parts = [b'<marshal><tuple><list id="i1"><string>' + b"x" * 100 + b"</string></list>"]
    for n in range(2, 12):
        parts.append(f'<list id="i{n}">'.encode() + f'<reference id="i{n - 1}"/>'.encode() * 10
                     + b"</list>")
    payload = b"".join(parts) + b"</tuple></marshal>"
    assert len(payload) < 5000
    with pytest.raises(DecodeError, match="expand"):
        loads(payload)
    assert loads(b"".join(parts[:3]) + b"</tuple></marshal>")[2][0][0][0] == "x" * 100


def test_oversize_is_refused_before_parsing() -> None:
    payload = b"<marshal><string>" + b"a" * 100 + b"</string></marshal>"
    assert loads(payload, max_bytes=len(payload)) == "a" * 100
    with pytest.raises(TooLarge):
        loads(payload, max_bytes=len(payload) - 1)
    with pytest.raises(TooLarge):
        loads(payload.decode(), max_bytes=len(payload) - 1)
    with pytest.raises(TooLarge):  # multi-byte characters count as bytes
        loads("<marshal><string>\u00e9\u00e9</string></marshal>", max_bytes=37)
    with pytest.raises(TooLarge):  # not parsed: a malformed payload is also just too large
        loads(b"<" * 1000, max_bytes=999)
    with pytest.raises(TooLarge):
        loads_dict(b"<marshal>" + b" " * 100 + b"</marshal>", "xml", max_bytes=50)
