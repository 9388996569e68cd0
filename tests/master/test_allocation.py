"""Allocation as pure functions: filter -> score -> plan, through the one entry point `place`."""
from __future__ import annotations

from partita.master.allocation import Demand, HostCandidate, PartitionCandidate, Waiting, place
from partita.master.allocation.filter import hosts_matching, partitions_matching
from partita.master.allocation.plan import describe_filter, waiting_reason
from partita.master.allocation.score import host_rank

SR = "https://example.invalid/sr/software.cfg"
OTHER = "https://other.invalid/software.cfg"


def partitions(*specs: tuple[str, int, str | None]) -> list[PartitionCandidate]:
    """(computer, order, supply state) each."""
    return [PartitionCandidate(partition_id=i, computer_reference=c, order=o, supply=s)
            for i, (c, o, s) in enumerate(specs)]


def hosts() -> list[HostCandidate]:
    return [
        HostCandidate(1, "SOFTINST-1", "A", SR, "default", 1),
        HostCandidate(2, "SOFTINST-2", "B", SR, "default", 2),
        HostCandidate(3, "SOFTINST-3", "B", SR, "frontend", 3),
        HostCandidate(4, "SOFTINST-4", "B", OTHER, "default", 4),
        HostCandidate(5, "SOFTINST-5", "C", SR, "default", 5, requested_state="destroyed"),
    ]


def chosen(demand: Demand, candidates: list) -> int | None:  # type: ignore[type-arg]
    decision = place(demand, candidates)
    if isinstance(decision, Waiting):
        return None
    return decision.partition_id if isinstance(decision, PartitionCandidate) else decision.instance_id


# -- partitions ------------------------------------------------------------------------------

def test_no_candidate_waits_with_its_reason() -> None:
    decision = place(Demand(SR), [])
    assert decision == Waiting("waiting for a free partition (any computer)", none_free=True)


def test_lowest_order_wins_on_one_computer() -> None:
    decision = place(Demand(SR), partitions(("A", 3, None), ("A", 1, None), ("A", 2, None)))
    assert isinstance(decision, PartitionCandidate) and decision.order == 1


def test_computer_guid_filters() -> None:
    candidates = partitions(("A", 1, None), ("B", 2, None))
    decision = place(Demand(SR, sla={"computer_guid": "B"}), candidates)
    assert isinstance(decision, PartitionCandidate) and decision.computer_reference == "B"
    waiting = place(Demand(SR, sla={"computer_guid": "C"}), candidates)
    assert waiting == Waiting("waiting for a free partition (computer_guid=C)", none_free=False)


def test_a_master_places_only_where_the_release_is_supplied() -> None:
    candidates = partitions(("A", 1, None), ("B", 9, "available"), ("C", 2, "destroyed"))
    decision = place(Demand(SR, needs_supply=True), candidates)
    assert isinstance(decision, PartitionCandidate) and decision.computer_reference == "B"
    assert chosen(Demand(SR), candidates) == 0  # the proxy places as slapproxy does


def test_supplied_and_pinned_together() -> None:
    candidates = partitions(("B", 1, None), ("A", 2, "available"), ("B", 3, None))
    waiting = place(Demand(SR, sla={"computer_guid": "B"}, needs_supply=True), candidates)
    assert waiting == Waiting(f"waiting for a supply of {SR} on computer B (`slapos supply`)")
    assert chosen(Demand(SR, needs_supply=True), candidates) == 1


def test_a_partition_never_serves_a_shared_demand() -> None:
    decision = place(Demand(SR, shared=True), partitions(("A", 1, "available")))
    assert isinstance(decision, Waiting) and not decision.none_free


def test_same_data_same_choice() -> None:
    candidates = partitions(("A", 5, None), ("B", 5, None), ("C", 2, "available"), ("D", 2, "available"))
    first = place(Demand(SR), candidates)
    assert all(place(Demand(SR), list(reversed(candidates))) == first for _ in range(3))


# -- hosts -----------------------------------------------------------------------------------

def test_host_needs_same_release_and_type() -> None:
    assert chosen(Demand(SR, "frontend", shared=True), hosts()) == 3
    assert chosen(Demand(SR, "nope", shared=True), hosts()) is None
    assert chosen(Demand("https://x.invalid/software.cfg", shared=True), hosts()) is None


def test_host_sla_instance_and_computer() -> None:
    assert chosen(Demand(SR, sla={"instance_guid": "SOFTINST-2"}, shared=True), hosts()) == 2
    assert chosen(Demand(SR, sla={"computer_guid": "B"}, shared=True), hosts()) == 2
    assert chosen(Demand(SR, shared=True), hosts()) == 1
    assert chosen(Demand(SR, sla={"instance_guid": "SOFTINST-4"}, shared=True), hosts()) is None


def test_a_destroyed_host_serves_nobody() -> None:
    assert chosen(Demand(SR, sla={"instance_guid": "SOFTINST-5"}, shared=True), hosts()) is None
    assert chosen(Demand(SR, sla={"computer_guid": "C"}, shared=True), hosts()) is None


def test_a_host_never_serves_a_demand_for_a_partition() -> None:
    assert chosen(Demand(SR), hosts()) is None


def test_shared_waiting_reason() -> None:
    decision = place(Demand(SR, "frontend", {"instance_guid": "SOFTINST-9"}, shared=True), hosts())
    assert decision == Waiting(
        f"waiting for a host instance of {SR} (type frontend; instance_guid=SOFTINST-9)", none_free=False,
    )


# -- the stages ------------------------------------------------------------------------------

def test_filters_keep_the_kind_the_demand_needs() -> None:
    mixed = [*partitions(("A", 1, None)), *hosts()]
    assert [c.partition_id for c in partitions_matching(mixed, Demand(SR))] == [0]
    assert [c.instance_id for c in hosts_matching(mixed, Demand(SR, shared=True))] == [1, 2]


def test_host_rank_is_the_oldest_first() -> None:
    assert sorted(hosts(), key=host_rank)[0].instance_id == 1


def test_describe_filter() -> None:
    assert describe_filter(Demand(SR), ("computer_guid",)) == "any computer"
    assert describe_filter(Demand(SR, sla={"computer_guid": "C"}), ("computer_guid",)) == "computer_guid=C"


def test_keys_that_are_no_filter_do_not_filter() -> None:
    demand = Demand(SR, sla={"instance_guid": "x"})  # refused before placement (`allocation.sla`)
    assert waiting_reason(demand) == "waiting for a free partition (any computer)"
    assert place(demand, []) == Waiting("waiting for a free partition (any computer)", none_free=True)
