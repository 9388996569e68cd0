"""Reading the master's compute_node_state answer (node.desired)."""
from __future__ import annotations

import pytest

from partita.node.desired import parse, release_digest, stamp
from partita.node.errors import NodeError

INSTANCE = {
    "title": "t", "instance_guid": "SOFTINST-1", "software_release_uri": "/sr.cfg", "software_type": "default",
    "state": "started", "connection_parameters": {}, "parameters": {"a": "b"}, "shared": False,
    "root_instance_title": "t", "ip_list": [["lo", "127.0.1.1"]], "full_ip_list": [], "sla_parameters": {},
    "computer_guid": "COMP-1", "compute_partition_id": "slappart0", "processing_timestamp": 5,
    "access_status_message": "", "status_reason": "started", "reported_state": None, "timestamp": 5.25,
    "shared_instance_list": [{"instance_guid": "SOFTINST-2", "title": "s", "software_type": "default",
                              "parameters": {"x": 1}, "connection_parameters": {}}],
}
ANSWER = {
    "computer_guid": "COMP-1", "generation": 7,
    "software_installation_list": [{"software_release_uri": "/sr.cfg", "state": "available", "reported_state": None}],
    "compute_partition_list": [
        {"compute_partition_id": "slappart0", "state": "busy", "ip_list": [["lo", "127.0.1.1"]], "instance": INSTANCE},
        {"compute_partition_id": "slappart1", "state": "free", "ip_list": [], "instance": None},
    ],
}


def test_parse_reads_partitions_and_instances():
    want = parse(ANSWER)
    assert want.generation == 7
    assert want.software_installation_list[0].software_release_uri == "/sr.cfg"
    busy = want.partition("slappart0")
    assert busy.ip_list == (("lo", "127.0.1.1"),)
    assert busy.instance.instance_guid == "SOFTINST-1" and stamp(busy.instance) == "5.25"
    assert busy.instance.parameters == {"a": "b"}
    assert busy.instance.shared_instance_list[0].parameters == {"x": 1}
    assert want.partition("slappart1").instance is None
    assert want.partition("slappart9") is None


def test_malformed_answer_is_one_clear_error():
    with pytest.raises(NodeError, match="malformed.*'generation' is missing"):
        parse({"computer_guid": "C"})


def test_the_error_names_the_field_deep_in_the_answer():
    instance = {**INSTANCE, "timestamp": "soon"}
    answer = {**ANSWER, "compute_partition_list": [{**ANSWER["compute_partition_list"][0], "instance": instance}]}
    with pytest.raises(NodeError) as raised:
        parse(answer)
    message = str(raised.value)
    assert "compute_partition_list[0].instance: field 'timestamp' must be a number, not a string" in message
    assert "\n" not in message


def test_a_hosted_instance_needs_a_guid():
    instance = {**INSTANCE, "instance_guid": None}
    answer = {**ANSWER, "compute_partition_list": [{**ANSWER["compute_partition_list"][0], "instance": instance}]}
    with pytest.raises(NodeError, match="'instance_guid' must be a string, not null"):
        parse(answer)


def test_software_directory_is_md5_of_url():
    # as `printf %s URL | md5sum` gives it, which is what slapgrid uses
    assert release_digest("https://lab.example.org/hello/software.cfg") == "615a6df1b43cff9b275b42277406c970"
