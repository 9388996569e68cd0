"""Allocation as pure functions: filter -> score -> plan."""
from __future__ import annotations

from partita.master.allocation.model import Demand, HostCandidate, PartitionCandidate
from partita.master.allocation.plan import choose_host, choose_partition, describe_filter

SR = "https://example.invalid/sr/software.cfg"


def partitions(*specs: tuple[str, int, bool]) -> list[PartitionCandidate]:
    return [PartitionCandidate(partition_id=i, computer_reference=c, order=o, supplied=s)
            for i, (c, o, s) in enumerate(specs)]


def test_no_candidate_gives_none() -> None:
    assert choose_partition([], Demand(SR)) is None


def test_lowest_order_wins_on_one_computer() -> None:
    found = choose_partition(partitions(("A", 3, False), ("A", 1, False), ("A", 2, False)), Demand(SR))
    assert found is not None and found.order == 1


def test_computer_guid_filters() -> None:
    candidates = partitions(("A", 1, False), ("B", 2, False))
    found = choose_partition(candidates, Demand(SR, sla={"computer_guid": "B"}))
    assert found is not None and found.computer_reference == "B"
    assert choose_partition(candidates, Demand(SR, sla={"computer_guid": "C"})) is None


def test_supplied_computer_is_preferred() -> None:
    found = choose_partition(partitions(("A", 1, False), ("B", 9, True)), Demand(SR))
    assert found is not None and found.computer_reference == "B"


def hosts() -> list[HostCandidate]:
    return [
        HostCandidate(1, "SOFTINST-1", "A", SR, "default", 1),
        HostCandidate(2, "SOFTINST-2", "B", SR, "default", 2),
        HostCandidate(3, "SOFTINST-3", "B", SR, "frontend", 3),
        HostCandidate(4, "SOFTINST-4", "B", "https://other.invalid/software.cfg", "default", 4),
    ]


def test_host_needs_same_release_and_type() -> None:
    assert choose_host(hosts(), Demand(SR, "frontend")).instance_id == 3  # type: ignore[union-attr]
    assert choose_host(hosts(), Demand(SR, "nope")) is None
    assert choose_host(hosts(), Demand("https://x.invalid/software.cfg")) is None


def test_host_sla_instance_and_computer() -> None:
    assert choose_host(hosts(), Demand(SR, sla={"instance_guid": "SOFTINST-2"})).instance_id == 2  # type: ignore[union-attr]
    assert choose_host(hosts(), Demand(SR, sla={"computer_guid": "B"})).instance_id == 2  # type: ignore[union-attr]
    assert choose_host(hosts(), Demand(SR)).instance_id == 1  # type: ignore[union-attr]
    assert choose_host(hosts(), Demand(SR, sla={"instance_guid": "SOFTINST-4"})) is None


def test_describe_filter() -> None:
    assert describe_filter(Demand(SR), ("computer_guid",)) == "any computer"
    assert describe_filter(Demand(SR, sla={"computer_guid": "C"}), ("computer_guid",)) == "computer_guid=C"
