"""The state module: every allowed transition, and the refused ones."""
from __future__ import annotations

import itertools

import pytest

from partita.slap.errors import InvalidTransition, ValidationError
from partita.slap.states import (
    INSTANCE_TRANSITIONS, InstanceState, PartitionState, check_instance_transition,
    check_partition_transition, parse_build_state, parse_instance_state, parse_reported_state,
    parse_supply_state,
)


@pytest.mark.parametrize("current,wanted", sorted(INSTANCE_TRANSITIONS))
def test_allowed_instance_transitions_pass(current: InstanceState, wanted: InstanceState) -> None:
    check_instance_transition(current, wanted)


def test_destroyed_is_final() -> None:
    for wanted in (InstanceState.STARTED, InstanceState.STOPPED):
        with pytest.raises(InvalidTransition, match="destroyed to"):
            check_instance_transition(InstanceState.DESTROYED, wanted)


def test_staying_in_a_state_is_allowed() -> None:
    for state in InstanceState:
        check_instance_transition(state, state)


def test_every_pair_is_either_allowed_or_refused() -> None:
    refused = []
    for current, wanted in itertools.product(InstanceState, repeat=2):
        try:
            check_instance_transition(current, wanted)
        except InvalidTransition:
            refused.append((current, wanted))
    assert refused == [(InstanceState.DESTROYED, InstanceState.STARTED),
                       (InstanceState.DESTROYED, InstanceState.STOPPED)]


def test_partition_transitions() -> None:
    check_partition_transition(PartitionState.FREE, PartitionState.BUSY)
    check_partition_transition(PartitionState.BUSY, PartitionState.FREE)
    with pytest.raises(InvalidTransition):
        check_partition_transition(PartitionState.BUSY, PartitionState.BUSY)


@pytest.mark.parametrize("parse", [parse_instance_state, parse_reported_state, parse_supply_state,
                                   parse_build_state])
def test_bogus_states_are_validation_errors(parse) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match="bogus"):
        parse("bogus")


def test_parse_known_states() -> None:
    assert parse_instance_state("stopped") is InstanceState.STOPPED
    assert parse_supply_state("destroyed").value == "destroyed"
    assert parse_reported_state("error").value == "error"
    assert parse_build_state("building").value == "building"
