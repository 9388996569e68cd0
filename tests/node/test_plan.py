"""What the node decides for each software release and partition (pure rules of node.plan)."""
from __future__ import annotations

import dataclasses

from partita.node.desired import stamp
from partita.node.plan import LocalPartition, PartitionAction, SoftwareAction, partition_action, software_action
from partita.slap.wire.instance import NodeInstanceDocument
from partita.slap.wire.node_state import ComputePartition, SoftwareInstallation

INSTANCE = NodeInstanceDocument(
    title="t", instance_guid="SOFTINST-1", software_release_uri="/sr.cfg", software_type="default",
    state="started", connection_parameters={}, parameters={}, shared=False, root_instance_title="t",
    ip_list=(), full_ip_list=(), sla_parameters={}, computer_guid="COMP-1", compute_partition_id="slappart0",
    processing_timestamp=12, access_status_message="", status_reason="started", reported_state=None,
    timestamp=12.5, shared_instance_list=(),
)


def software(state: str = "available", reported: str | None = None) -> SoftwareInstallation:
    return SoftwareInstallation("/srv/sr/software.cfg", state, reported)


def test_software_to_build_until_completed():
    assert software_action(software(), completed=False, present=False) == SoftwareAction.BUILD
    assert software_action(software(), completed=False, present=True) == SoftwareAction.BUILD


def test_built_software_is_reported_once():
    assert software_action(software(), completed=True, present=True) == SoftwareAction.REPORT_AVAILABLE
    assert software_action(software(reported="available"), completed=True, present=True) == SoftwareAction.NOTHING


def test_destroyed_software_is_removed_then_reported():
    assert software_action(software("destroyed"), completed=True, present=True) == SoftwareAction.REMOVE
    assert software_action(software("destroyed"), completed=False, present=False) == SoftwareAction.REPORT_DESTROYED
    assert software_action(software("destroyed", "destroyed"), completed=False, present=False) == SoftwareAction.NOTHING


def partition(state: str | None = "started", timestamp: float = 12.5) -> ComputePartition:
    instance = None if state is None else dataclasses.replace(INSTANCE, state=state, timestamp=timestamp)
    return ComputePartition("slappart0", "free" if state is None else "busy", (), instance)


def test_free_partition_needs_nothing():
    assert partition_action(partition(None), LocalPartition(None, False)) == PartitionAction.NOTHING


def test_new_timestamp_is_processed_once_software_is_ready():
    assert partition_action(partition(), LocalPartition(None, False)) == PartitionAction.WAIT_SOFTWARE
    assert partition_action(partition(), LocalPartition(None, True)) == PartitionAction.PROCESS
    assert partition_action(partition(), LocalPartition("11.0", True)) == PartitionAction.PROCESS


def test_unchanged_partition_only_checks_promises_when_started():
    processed = stamp(partition().instance)
    assert partition_action(partition(), LocalPartition(processed, True)) == PartitionAction.CHECK
    assert partition_action(partition("stopped"), LocalPartition(processed, True)) == PartitionAction.NOTHING


def test_destroyed_instance_goes_to_the_report_pass():
    assert partition_action(partition("destroyed"), LocalPartition(None, False)) == PartitionAction.DESTROY

