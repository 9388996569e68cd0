"""Reading the master's compute_node_state answer (node.desired)."""
from __future__ import annotations

import pytest

from partita.node.desired import parse
from partita.node.errors import NodeError

ANSWER = {
    "computer_guid": "COMP-1", "generation": 7,
    "software_installation_list": [{"software_release_uri": "/sr.cfg", "state": "available", "reported_state": None}],
    "compute_partition_list": [
        {"compute_partition_id": "slappart0", "state": "busy", "ip_list": [["lo", "127.0.1.1"]],
         "instance": {"instance_guid": "SOFTINST-1", "title": "t", "state": "started",
                      "software_release_uri": "/sr.cfg", "software_type": "default", "timestamp": 5.25,
                      "reported_state": None, "parameters": {"a": "b"}}},
        {"compute_partition_id": "slappart1", "state": "free", "ip_list": [], "instance": None},
    ],
}


def test_parse_reads_partitions_and_instances():
    want = parse(ANSWER)
    assert want.generation == 7
    assert want.software[0].url == "/sr.cfg"
    busy = want.partition("slappart0")
    assert busy.ip_list == (("lo", "127.0.1.1"),)
    assert busy.instance.guid == "SOFTINST-1" and busy.instance.stamp == "5.25"
    assert busy.instance.document["parameters"] == {"a": "b"}
    assert want.partition("slappart1").instance is None
    assert want.partition("slappart9") is None


def test_malformed_answer_is_one_clear_error():
    with pytest.raises(NodeError, match="malformed"):
        parse({"computer_guid": "C"})
