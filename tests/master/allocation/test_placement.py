"""Placement that obeys (issue 13): tags, networks, unique_by_network, scope, supply, spread — pure."""
from __future__ import annotations

from dataclasses import replace

from partita.master.allocation import Demand, PartitionCandidate, Waiting, place
from partita.master.allocation.filter import matches_sla

SR = "https://example.invalid/sr/software.cfg"


def computer(pid: int, reference: str, **fields: object) -> PartitionCandidate:
    return PartitionCandidate(partition_id=pid, computer_reference=reference, order=pid,
                              supply="available", **fields)  # type: ignore[arg-type]


RENNES = computer(1, "A", tags=(("region", "rennes"), ("gpu", "a100")), network="rack-1")
LILLE = computer(2, "B", tags=(("region", "lille"),), network="rack-2")
LOOSE = computer(3, "C")


def where(demand: Demand, candidates: list[PartitionCandidate]) -> str | None:
    decision = place(demand, candidates)
    return None if isinstance(decision, Waiting) else decision.computer_reference  # type: ignore[union-attr]


def test_tags_match_every_one_asked() -> None:
    assert where(Demand(SR, sla={"tag.region": "rennes"}), [LILLE, RENNES, LOOSE]) == "A"
    assert where(Demand(SR, sla={"tag.region": "rennes", "tag.gpu": "h100"}), [LILLE, RENNES]) is None
    waiting = place(Demand(SR, sla={"tag.region": "paris"}), [RENNES])
    assert waiting == Waiting("waiting for a free partition (tag.region=paris)")


def test_network_guid_matches_the_computers_network() -> None:
    assert where(Demand(SR, sla={"network_guid": "rack-2"}), [RENNES, LILLE]) == "B"
    assert where(Demand(SR, sla={"network_guid": "rack-9"}), [RENNES, LILLE, LOOSE]) is None


def test_unique_by_network_avoids_the_networks_of_its_tree() -> None:
    demand = Demand(SR, sla={"mode": "unique_by_network"}, tree=7, tree_networks=frozenset({"rack-1"}))
    assert where(demand, [RENNES, LILLE]) == "B"
    assert where(replace(demand, tree_networks=frozenset({"rack-1", "rack-2"})), [RENNES, LILLE]) is None
    # a computer in no network is a network of its own
    assert matches_sla(LOOSE, demand) and not matches_sla(replace(LOOSE, tree_instances=1), demand)


def test_closed_and_draining_computers_take_nothing_new() -> None:
    closed, draining = replace(RENNES, scope="close"), replace(LILLE, scope="drain")
    assert where(Demand(SR), [closed, draining, LOOSE]) == "C"
    waiting = place(Demand(SR), [closed, draining])
    assert waiting == Waiting("waiting for a free partition on an open computer (any computer)")


def test_waiting_for_a_supply_says_which() -> None:
    bare = [replace(RENNES, supply=None), replace(LILLE, supply="destroyed")]
    assert place(Demand(SR, needs_supply=True), bare) == Waiting(f"waiting for a supply of {SR} (`slapos supply`)")
    assert where(Demand(SR), bare) == "A"  # the proxy places without


def test_nothing_free_anywhere_stops_the_waiting_queue() -> None:
    assert place(Demand(SR), []) == Waiting("waiting for a free partition (any computer)", none_free=True)
    assert place(Demand(SR, sla={"tag.region": "x"}), [RENNES]).none_free is False  # type: ignore[union-attr]


def test_spread_fewest_of_the_tree_then_fewest_busy_then_order() -> None:
    a, b, c = computer(1, "A"), computer(5, "B"), computer(9, "C")
    assert where(Demand(SR), [a, b, c]) == "A"
    assert where(Demand(SR), [replace(a, allocated=2), replace(b, allocated=1), replace(c, allocated=1)]) == "B"
    same_tree = [replace(a, tree_instances=1), replace(b, tree_instances=1, allocated=0),
                 replace(c, tree_instances=0, allocated=5)]
    assert where(Demand(SR, tree=3), same_tree) == "C"


def test_workers_of_one_tree_land_on_different_computers_before_doubling_up() -> None:
    """Three computers, five workers of one tree: each placed as the services would re-read."""
    counts = {"A": 0, "B": 0, "C": 0}
    for _ in range(5):
        candidates = [computer(i, name, tree_instances=n, allocated=n) for i, (name, n) in enumerate(counts.items())]
        counts[where(Demand(SR, tree=1), candidates)] += 1  # type: ignore[index]
    assert sorted(counts.values()) == [1, 2, 2]
