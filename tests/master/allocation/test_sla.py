"""The SLA keys the master knows (`master.allocation.sla`): anything else is refused, naming it."""
from __future__ import annotations

import pytest

from partita.master.allocation.sla import check_sla, tag_filters
from partita.slap.errors import UnknownSlaKey


@pytest.mark.parametrize("sla", [
    {}, {"computer_guid": "COMP-1"}, {"network_guid": "rack-1", "mode": "unique_by_network"},
    {"tag.region": "rennes", "tag.gpu_model": "a100", "tag.x-1": ""},
    {"retention_delay": "2"}, {"retention_delay": "0.5", "computer_guid": "COMP-1"},
])
def test_known_keys_pass(sla: dict[str, str]) -> None:
    check_sla(sla, shared=False)


def test_shared_requests_take_computer_and_instance() -> None:
    check_sla({"computer_guid": "COMP-1", "instance_guid": "SOFTINST-1"}, shared=True)


@pytest.mark.parametrize(("sla", "shared", "named"), [
    ({"region": "rennes"}, False, "'region'"),
    ({"project_guid": "PROJ-1"}, False, "'project_guid'"),
    ({"retention_delay": "-1"}, False, "retention_delay '-1'"),
    ({"retention_delay": "nan"}, False, "retention_delay 'nan'"),
    ({"retention_delay": "2"}, True, "'retention_delay'"),
    ({"mode": "spread"}, False, "'spread'"),
    ({"tag.": "x"}, False, "tag name ''"),
    ({"tag.bad name": "x"}, False, "'bad name'"),
    ({"tag." + "a" * 64: "x"}, False, "a" * 64),
    ({"instance_guid": "SOFTINST-1"}, False, "'instance_guid'"),
    ({"tag.region": "rennes"}, True, "'tag.region'"),
    ({"mode": "unique_by_network"}, True, "'mode'"),
])
def test_unknown_or_misplaced_keys_are_refused_naming_them(sla: dict[str, str], shared: bool, named: str) -> None:
    with pytest.raises(UnknownSlaKey, match=named.replace(".", r"\.")) as refused:
        check_sla(sla, shared=shared)
    assert refused.value.code == "BAD_SLA" and refused.value.status == 400


def test_tag_filters_strip_the_prefix() -> None:
    assert tag_filters({"computer_guid": "C", "tag.region": "rennes"}) == {"region": "rennes"}
