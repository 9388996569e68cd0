"""Pieces of the instance pass (node/instance.py) that face what a partition's user may have
put in its own directory."""
from __future__ import annotations

from pathlib import Path

import pytest

from partita.node.config import NodeConfig
from partita.node.context import NodeContext, PartitionWork
from partita.node.errors import NodeError
from partita.node.instance import _drop_empty_record, _link_software, _previous_verdict, instance_file
from partita.node.layout import NODE_DIR
from partita.slap.wire.instance import NodeInstanceDocument
from partita.slap.wire.node_state import ComputePartition


def test_software_release_link_is_made_kept_or_replaced(tmp_path: Path) -> None:
    software, other = tmp_path / "software", tmp_path / "other"
    software.mkdir()
    other.mkdir()
    partition = tmp_path / "partition"
    partition.mkdir()
    _link_software(partition, software)
    assert (partition / "software_release").readlink() == software
    (partition / "software_release").unlink()
    (partition / "software_release").symlink_to(other)
    _link_software(partition, software)
    assert (partition / "software_release").readlink() == software
    (partition / "software_release").unlink()
    (partition / "software_release").write_text("a file the partition wrote")
    _link_software(partition, software)
    assert (partition / "software_release").readlink() == software


def test_a_directory_in_place_of_the_link_is_the_partitions_error(tmp_path: Path) -> None:
    partition = tmp_path / "partition"
    (partition / "software_release" / "inside").mkdir(parents=True)
    with pytest.raises(NodeError, match="the partition put something else there"):
        _link_software(partition, tmp_path)
    assert (partition / "software_release" / "inside").is_dir()


@pytest.mark.parametrize("text", ["[]", "not json", '"ok"', "3"])
def test_a_verdict_the_node_did_not_write_counts_as_none(tmp_path: Path, text: str) -> None:
    (tmp_path / NODE_DIR).mkdir()
    (tmp_path / NODE_DIR / "verdict.json").write_text(text)
    assert _previous_verdict(tmp_path) == {}


def test_the_node_s_own_verdict_is_read(tmp_path: Path) -> None:
    (tmp_path / NODE_DIR).mkdir()
    (tmp_path / NODE_DIR / "verdict.json").write_text('{"ok": true, "message": "started"}')
    assert _previous_verdict(tmp_path) == {"ok": True, "message": "started"}


def test_an_empty_installed_record_is_removed_before_buildout(tmp_path: Path) -> None:
    """Regression (issue 10): a buildout that failed half-way left an empty .installed.cfg, and
    every later buildout of the partition failed on it."""
    record = tmp_path / ".installed.cfg"
    record.write_text("")
    _drop_empty_record("slappart0", tmp_path)
    assert not record.exists()
    record.write_text("[buildout]\nparts = a\n")
    _drop_empty_record("slappart0", tmp_path)
    assert record.read_text() == "[buildout]\nparts = a\n"


def test_an_installed_record_that_is_a_link_is_left_to_buildout(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("")
    (tmp_path / ".installed.cfg").symlink_to(target)
    _drop_empty_record("slappart0", tmp_path)
    assert (tmp_path / ".installed.cfg").is_symlink() and target.exists()


def test_the_instance_file_gives_the_partitions_ipv6_range(tmp_path: Path) -> None:
    """The range the master gives a partition (issue 13) reaches its buildout's instance.json."""
    document = NodeInstanceDocument(
        title="web", instance_guid="SOFTINST-1", software_release_uri="https://h/software.cfg",
        software_type="default", state="started", connection_parameters={}, parameters={}, shared=False,
        root_instance_title="web", ip_list=(("lo", "fd70::2"),), full_ip_list=(), sla_parameters={},
        computer_guid="COMP-1", compute_partition_id="slappart0", processing_timestamp=1,
        access_status_message="", status_reason="", reported_state=None, timestamp=1.5, shared_instance_list=())
    config = NodeConfig(computer_id="COMP-1", master_url="http://127.0.0.1:1", instance_root=tmp_path / "i",
                        software_root=tmp_path / "s")  # type: ignore[call-arg]
    context = NodeContext(config, client=None, toolchain=None)  # type: ignore[arg-type]
    for given in ("fd70::1:0/112", None):
        partition = ComputePartition("slappart0", "busy", document.ip_list, document, ipv6_range=given)
        work = PartitionWork(partition, tmp_path / "i" / "slappart0", document)
        assert instance_file(context, work).ipv6_range == given
