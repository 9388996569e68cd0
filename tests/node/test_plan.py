"""What the node decides for each software release and partition (pure rules of node.plan)."""
from __future__ import annotations

from partita.node.desired import InstanceWant, PartitionWant, SoftwareWant
from partita.node.plan import LocalPartition, PartitionAction, SoftwareAction, partition_action, software_action


def software(state: str = "available", reported: str | None = None) -> SoftwareWant:
    return SoftwareWant("/srv/sr/software.cfg", state, reported)


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


def test_software_directory_is_md5_of_url():
    # as `printf %s URL | md5sum` gives it, which is what slapgrid uses
    want = SoftwareWant("https://lab.example.org/hello/software.cfg", "available", None)
    assert want.digest == "615a6df1b43cff9b275b42277406c970"


def partition(state: str | None = "started", timestamp: float = 12.5) -> PartitionWant:
    instance = None if state is None else InstanceWant(
        "SOFTINST-1", "t", state, "/sr.cfg", "default", timestamp, None, {})
    return PartitionWant("slappart0", (), instance)


def test_free_partition_needs_nothing():
    assert partition_action(partition(None), LocalPartition(None, False)) == PartitionAction.NOTHING


def test_new_timestamp_is_processed_once_software_is_ready():
    assert partition_action(partition(), LocalPartition(None, False)) == PartitionAction.WAIT_SOFTWARE
    assert partition_action(partition(), LocalPartition(None, True)) == PartitionAction.PROCESS
    assert partition_action(partition(), LocalPartition("11.0", True)) == PartitionAction.PROCESS


def test_unchanged_partition_only_checks_promises_when_started():
    stamp = partition().instance.stamp
    assert partition_action(partition(), LocalPartition(stamp, True)) == PartitionAction.CHECK
    assert partition_action(partition("stopped"), LocalPartition(stamp, True)) == PartitionAction.NOTHING


def test_destroyed_instance_goes_to_the_report_pass():
    assert partition_action(partition("destroyed"), LocalPartition(None, False)) == PartitionAction.DESTROY

