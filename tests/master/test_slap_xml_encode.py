"""Views -> SLAP XML objects: the exact xml_marshaller documents of ``reference/slap-protocol.md`` §2.5.

The expected documents are written out literally, laid out as in §2.5 (the wire has no whitespace).
"""
from __future__ import annotations

import re
from dataclasses import replace

from partita.master.api.slap_xml import encode
from partita.master.api.slap_xml.marshal import dumps, encode_fragment
from partita.master.services.views import (
    Address, ComputerView, InstanceView, PartitionView, SharedView, SupplyView,
)

SR = "/opt/peer/work/software/hello/software.cfg"
COMPUTER = "local_computer"
ADDRESSES = (Address("slaptap0", "127.0.1.1", "255.0.0.0"), Address("slaptap0", "::1", "ffff::"))


def compact(text: str) -> bytes:
    """The literal below as it travels: no line breaks nor indentation between elements."""
    return re.sub(r">\s+<", "><", text.strip()).encode()


def instance(**changes: object) -> InstanceView:
    view = InstanceView(
        guid="SOFTINST-1", title="myinstance", root_title="myinstance", software_release=SR,
        software_type="default", parameters={"foo": "bar", "baz": "qux"}, connection_parameters={},
        sla={}, requested_state="started", reported_state=None, shared=False,
        timestamp=1795304493.4239333, status="waiting for the node to deploy it", computer=COMPUTER,
        partition="slappart0", addresses=ADDRESSES,
    )
    return replace(view, **changes)


def test_request_answer_is_the_slapproxy_software_instance() -> None:
    answer = encode.requested_instance(instance(), "http://127.0.0.1:18080/")
    assert dumps(answer) == compact('''
<marshal><object id="i2" module="slapos.slap.slap" class="SoftwareInstance"><tuple/>
 <dictionary id="i3">
  <string>_connection_dict</string><dictionary id="i4"/>
  <string>_instance_guid</string><string>SOFTINST-1</string>
  <string>_parameter_dict</string><dictionary id="i5"><string>baz</string><string>qux</string>
     <string>foo</string><string>bar</string><string>timestamp</string><string>1795304493.4239333</string></dictionary>
  <string>_requested_state</string><string>started</string>
  <string>connection_xml</string><none/>
  <string>ip_list</string><list id="i6"><tuple><string>slaptap0</string><string>127.0.1.1</string></tuple>
                                     <tuple><string>slaptap0</string><string>::1</string></tuple></list>
  <string>slap_computer_id</string><string>local_computer</string>
  <string>slap_computer_partition_id</string><string>slappart0</string>
  <string>slap_server_url</string><string>http://127.0.0.1:18080/</string>
  <string>slap_software_release_url</string><string>/opt/peer/work/software/hello/software.cfg</string>
  <string>slap_software_type</string><string>default</string>
 </dictionary></object></marshal>''')


def test_published_connection_travels_as_a_dict_and_as_instance_xml() -> None:
    answer = encode.requested_instance(instance(connection_parameters={"url": "http://x/?a=1&b=<2>"}), "u")
    xml = dumps(answer).decode()
    assert ('<string>_connection_dict</string><dictionary id="i4"><string>url</string>'
            '<string>http://x/?a=1&amp;amp;b=&amp;lt;2&amp;gt;</string></dictionary>') in xml
    assert ("<string>connection_xml</string><string>&amp;lt;?xml version='1.0' encoding='utf-8'?&amp;gt;\n"
            "&amp;lt;instance&amp;gt;\n  &amp;lt;parameter id=\"url\"&amp;gt;http://x/?a=1&amp;amp;amp;b="
            "&amp;amp;lt;2&amp;amp;gt;&amp;lt;/parameter&amp;gt;\n&amp;lt;/instance&amp;gt;\n</string>") in xml


def test_shared_answer_has_its_own_parameters_and_the_host_partition() -> None:
    shared = instance(guid="SOFTINST-2", title="myslave", shared=True, parameters={"hostname": "h"},
                      connection_parameters={"slave-url": "u"})
    state = encode.requested_instance(shared, "s").state
    assert state["_parameter_dict"] == {"hostname": "h"}  # no timestamp: the host's is not its own
    assert state["_connection_dict"] == {"slave-url": "u"}
    assert (state["_instance_guid"], state["_requested_state"]) == ("SOFTINST-2", "started")
    assert (state["slap_computer_partition_id"], state["ip_list"]) == ("slappart0", [
        ("slaptap0", "127.0.1.1"), ("slaptap0", "::1")])


def test_destroyed_unknown_instance_answer() -> None:
    assert dumps(encode.destroyed_instance(SR, "default", "u")) == compact('''
<marshal><object id="i2" module="slapos.slap.slap" class="SoftwareInstance"><tuple/>
 <dictionary id="i3">
  <string>_connection_dict</string><dictionary id="i4"/>
  <string>_instance_guid</string><none/>
  <string>_parameter_dict</string><dictionary id="i5"/>
  <string>_requested_state</string><string>destroyed</string>
  <string>connection_xml</string><none/>
  <string>ip_list</string><list id="i6"/>
  <string>slap_computer_id</string><string></string>
  <string>slap_computer_partition_id</string><string></string>
  <string>slap_server_url</string><string>u</string>
  <string>slap_software_release_url</string><string>/opt/peer/work/software/hello/software.cfg</string>
  <string>slap_software_type</string><string>default</string>
 </dictionary></object></marshal>''')


BUSY = '''
 <object id="i5" module="slapos.slap.slap" class="ComputerPartition"><tuple><string>local_computer</string><string>slappart0</string><none/></tuple>
 <dictionary id="i6"><string>_computer_id</string><string>local_computer</string>
  <string>_connection_dict</string><dictionary id="i7"><string>url</string><string>http://127.0.1.1:18090/</string></dictionary>
  <string>_filter_dict</string><dictionary id="i8"><string>retention_delay</string><string>2</string></dictionary>
  <string>_instance_guid</string><string>SOFTINST-1</string>
  <string>_need_modification</string><int>1</int>
  <string>_parameter_dict</string><dictionary id="i9"><string>baz</string><string>qux</string><string>foo</string><string>bar</string>
     <string>full_address_list</string><list id="i10"/><string>instance_title</string><string>myinstance</string>
     <string>ip_list</string><list id="i11"><tuple><string>slaptap0</string><string>127.0.1.1</string></tuple><tuple><string>slaptap0</string><string>::1</string></tuple></list>
     <string>root_instance_title</string><string>myinstance</string>
     <string>slap_computer_id</string><string>local_computer</string><string>slap_computer_partition_id</string><string>slappart0</string>
     <string>slap_software_release_url</string><string>/opt/peer/work/software/hello/software.cfg</string><string>slap_software_type</string><string>default</string>
     <string>slave_instance_list</string><list id="i12"><dictionary id="i13"><string>hostname</string><string>example.invalid</string>
        <string>slap_software_type</string><string>default</string><string>slave_reference</string><string>SOFTINST-2</string>
        <string>slave_title</string><string>myslave</string></dictionary></list>
     <string>timestamp</string><string>1795304581.4470894</string></dictionary>
  <string>_partition_id</string><string>slappart0</string><string>_request_dict</string><none/>
  <string>_requested_state</string><string>started</string>
  <string>_software_release_document</string><object id="i14" module="slapos.slap.slap" class="SoftwareRelease"><tuple><string>/opt/peer/work/software/hello/software.cfg</string><string>local_computer</string></tuple>
      <dictionary id="i15"><string>_computer_guid</string><string>local_computer</string><string>_software_instance_list</string><list id="i16"/><string>_software_release</string><string>/opt/peer/work/software/hello/software.cfg</string></dictionary></object>
 </dictionary></object>'''

FREE = '''
 <object id="i17" module="slapos.slap.slap" class="ComputerPartition"><tuple><string>local_computer</string><string>slappart1</string><none/></tuple>
 <dictionary id="i18"><string>_computer_id</string><string>local_computer</string><string>_instance_guid</string><string>local_computer-slappart1</string>
  <string>_need_modification</string><int>0</int><string>_partition_id</string><string>slappart1</string><string>_request_dict</string><none/>
  <string>_requested_state</string><string>destroyed</string><string>_software_release_document</string><none/></dictionary></object>'''


def busy_partition() -> PartitionView:
    hosted = SharedView("SOFTINST-2", "myslave", "default", {"hostname": "example.invalid"}, {"x": "y"})
    view = instance(connection_parameters={"url": "http://127.0.1.1:18090/"}, sla={"retention_delay": "2"},
                    timestamp=1795304581.4470894, hosted=(hosted,))
    return PartitionView(COMPUTER, "slappart0", "busy", ADDRESSES, view)


def test_computer_is_the_slapproxy_document() -> None:
    free = PartitionView(COMPUTER, "slappart1", "free", (), None)
    supply = SupplyView(COMPUTER, SR, "available", "available", "")
    view = ComputerView(COMPUTER, 7, (busy_partition(), free), (supply,))
    assert dumps(encode.computer(view)) == compact('''
<marshal><object id="i2" module="slapos.slap.slap" class="Computer"><tuple><string>local_computer</string></tuple>
<dictionary id="i3"><string>_computer_id</string><string>local_computer</string>
<string>_computer_partition_list</string><list id="i4">''' + BUSY + FREE + '''
</list>
<string>_software_release_list</string><list id="i19"><object id="i20" module="slapos.slap.slap" class="SoftwareRelease"><tuple><string>/opt/peer/work/software/hello/software.cfg</string><string>local_computer</string></tuple>
 <dictionary id="i21"><string>_computer_guid</string><string>local_computer</string><string>_requested_state</string><string>available</string>
 <string>_software_instance_list</string><list id="i22"/><string>_software_release</string><string>/opt/peer/work/software/hello/software.cfg</string></dictionary></object></list>
</dictionary></object></marshal>''')


def test_registered_partition_is_the_listed_one() -> None:
    view = busy_partition()
    alone = dumps(encode.partition_object(COMPUTER, "slappart0", view.instance)).decode()
    listed = compact(BUSY).decode()
    renumbered = re.sub(r'id="i(\d+)"', lambda m: f'id="i{int(m.group(1)) - 3}"', listed)
    assert alone == f"<marshal>{renumbered}</marshal>"


def test_parameter_values_are_strings_on_the_wire() -> None:
    params = encode.wire_parameters({"n": 1, "f": 1.5, "b": True, "none": None, "list": [1, "a"],
                                     "_": '{"json": true}'})
    assert params == {"n": "1", "f": "1.5", "b": "True", "none": None, "list": '[1, "a"]',
                      "_": '{"json": true}'}


def test_reserved_keys_win_over_parameters_for_nodes_and_parameters_win_in_slave_entries() -> None:
    view = instance(parameters={"instance_title": "spoof", "x": "1"})
    assert encode.node_parameters(COMPUTER, "slappart0", view)["instance_title"] == "myinstance"
    entry = encode.slave_entry(SharedView("G", "t", "default", {"slap_software_type": "other"}, {}))
    assert entry == {"slave_title": "t", "slave_reference": "G", "slap_software_type": "other"}


def test_no_object_is_shared_between_two_places() -> None:
    """A list or dict used twice would be written as a <reference>; the incumbent never does."""
    view = ComputerView(COMPUTER, 1, (busy_partition(), busy_partition()), ())
    assert b"<reference" not in dumps(encode.computer(view))


def test_computer_from_fragments_is_byte_identical() -> None:
    """Partitions encoded apart (`encode_fragment`) and assembled: the bytes of `encode.computer`.

    Free and busy partitions, hosted shared instances, a child with its root and requester,
    non-string parameter values (from the JSON API) and supplies: the fragments' ids land where
    the whole encoding puts them, whatever the number of ids each partition takes.
    """
    child = instance(guid="SOFTINST-3", title="child", root_title="myinstance", requester_guid="SOFTINST-1",
                     partition="slappart2", software_type="worker",
                     parameters={"n": 3, "f": 1.5, "b": True, "none": None, "list": [1, "a"], "d": {"k": [2]}},
                     connection_parameters={"port": 8080, "url": "http://[::1]/<&>"})
    many = tuple(SharedView(f"SOFTINST-{n}", f"s{n}", "default", {"n": n}, {}) for n in range(4, 7))
    partitions = (
        PartitionView(COMPUTER, "slappart9", "free", (), None),
        busy_partition(),
        PartitionView(COMPUTER, "slappart1", "free", ADDRESSES, None),
        PartitionView(COMPUTER, "slappart2", "busy", ADDRESSES[:1], child),
        PartitionView(COMPUTER, "slappart3", "busy", (), instance(guid="SOFTINST-9", hosted=many)),
    )
    supplies = (SupplyView(COMPUTER, SR, "available", "available", ""),
                SupplyView(COMPUTER, "https://example.invalid/b.cfg", "destroyed", None, "boom"))
    for view in (ComputerView(COMPUTER, 1, partitions, supplies), ComputerView(COMPUTER, 1, partitions[::-1], ()),
                 ComputerView(COMPUTER, 1, (), supplies)):
        fragments = [encode_fragment(encode.computer_partition(p)) for p in view.partitions]
        assembled = dumps(encode.computer_object(COMPUTER, fragments, view.supplies))
        assert assembled == dumps(encode.computer(view))
    assert b'<reference' not in assembled
