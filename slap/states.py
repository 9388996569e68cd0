"""Every state in Partita and the transitions allowed between them. No dependencies.

Software instance, requested state (what its owner asks for)::

    started <-> stopped
       \\         /
        destroyed            (final: a destroyed instance is freed, never revived)

Software instance, reported state (what the node says it did): any of started, stopped,
destroyed, error, in any order; the node is the authority on what happened.

Partition slap state::

    free -> busy (allocated to an instance) -> free (freed by the node after destruction)

Supply, requested state: available <-> destroyed.
Supply, reported state: building -> available | error; destroyed once the node removed it.
"""
from __future__ import annotations

import enum
from typing import TypeVar

from partita.slap.errors import InvalidTransition, ValidationError


class InstanceState(str, enum.Enum):
    STARTED = "started"
    STOPPED = "stopped"
    DESTROYED = "destroyed"


class ReportedState(str, enum.Enum):
    STARTED = "started"
    STOPPED = "stopped"
    DESTROYED = "destroyed"
    ERROR = "error"


class PartitionState(str, enum.Enum):
    FREE = "free"
    BUSY = "busy"


class SupplyState(str, enum.Enum):
    AVAILABLE = "available"
    DESTROYED = "destroyed"


class BuildState(str, enum.Enum):
    """What a node reports about a software release it was asked to install."""

    BUILDING = "building"
    AVAILABLE = "available"
    ERROR = "error"
    DESTROYED = "destroyed"


INSTANCE_TRANSITIONS: frozenset[tuple[InstanceState, InstanceState]] = frozenset({
    (InstanceState.STARTED, InstanceState.STOPPED),
    (InstanceState.STOPPED, InstanceState.STARTED),
    (InstanceState.STARTED, InstanceState.DESTROYED),
    (InstanceState.STOPPED, InstanceState.DESTROYED),
})

PARTITION_TRANSITIONS: frozenset[tuple[PartitionState, PartitionState]] = frozenset({
    (PartitionState.FREE, PartitionState.BUSY),
    (PartitionState.BUSY, PartitionState.FREE),
})

SUPPLY_TRANSITIONS: frozenset[tuple[SupplyState, SupplyState]] = frozenset({
    (SupplyState.AVAILABLE, SupplyState.DESTROYED),
    (SupplyState.DESTROYED, SupplyState.AVAILABLE),
})


E = TypeVar("E", bound=enum.Enum)


def _parse(kind: type[E], value: str, what: str) -> E:
    """The member of `kind` named `value`, or a ValidationError naming the allowed ones."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(s.value for s in kind)
        raise ValidationError(f"bad {what} {value!r}: expected one of {allowed}") from None


def parse_instance_state(value: str) -> InstanceState:
    return _parse(InstanceState, value, "state")


def parse_reported_state(value: str) -> ReportedState:
    return _parse(ReportedState, value, "reported state")


def parse_supply_state(value: str) -> SupplyState:
    return _parse(SupplyState, value, "supply state")


def parse_build_state(value: str) -> BuildState:
    return _parse(BuildState, value, "software state")


def check_instance_transition(current: InstanceState, wanted: InstanceState) -> None:
    """Accept staying in a state or an allowed move; refuse the rest (e.g. reviving a destroyed one)."""
    if current != wanted and (current, wanted) not in INSTANCE_TRANSITIONS:
        raise InvalidTransition(
            f"an instance cannot go from {current.value} to {wanted.value}"
        )


def check_partition_transition(current: PartitionState, wanted: PartitionState) -> None:
    if (current, wanted) not in PARTITION_TRANSITIONS:
        raise InvalidTransition(f"a partition cannot go from {current.value} to {wanted.value}")
