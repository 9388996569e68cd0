"""A partition's IPv6 range (issue 13): accepted from the node's format (JSON and SLAP XML),
checked, stored, replaced by a reformat, and given to the instance in the partition documents."""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from partita.master.api.slap_xml.marshal import dumps
from partita.master.db.database import Database
from partita.master.services.computers import check_ipv6_range
from partita.slap.errors import ValidationError
from partita.slap.wire.node_state import parse_node_state
from tests.master.test_json_rpc import COMPUTER, Api, api, snapshot  # noqa: F401 (api: a fixture)
from tests.master.test_slap_xml_routes import computer_dict, full, request, supply

RANGE = "2001:db8::1:0/112"
OTHER = "2001:db8::2:0/112"
FORMAT = "slapos.put.v0.compute_node_format"


def formatted(api: Api, *ranges: Any) -> None:
    """Format slappart0.. with `ranges` (None: no ipv6_range field)."""
    listed = []
    for i, ipv6_range in enumerate(ranges):
        entry: dict[str, Any] = {"partition_id": f"slappart{i}", "ip_list": [{"ip-address": f"10.0.0.{i + 1}"}]}
        if ipv6_range is not None:
            entry["ipv6_range"] = ipv6_range
        listed.append(entry)
    api.call(FORMAT, {"computer_guid": COMPUTER, "compute_partition_list": listed})


def ranges_of(api: Api) -> dict[str, str | None]:
    state = parse_node_state(api.state())
    return {p.compute_partition_id: p.ipv6_range for p in state.compute_partition_list}


def test_a_range_is_stored_given_in_the_node_state_and_replaced_by_a_reformat(api: Api) -> None:
    formatted(api, RANGE, None)
    assert ranges_of(api) == {"slappart0": RANGE, "slappart1": None}
    guid = api.request("web")["instance_guid"]
    before = api.instance(guid)["timestamp"]
    formatted(api, OTHER, None)
    assert ranges_of(api) == {"slappart0": OTHER, "slappart1": None}
    assert api.instance(guid)["timestamp"] > before  # its buildout runs again with the new range
    again = api.instance(guid)["timestamp"]
    formatted(api, OTHER, None)
    assert api.instance(guid)["timestamp"] == again  # the same range changes nothing
    formatted(api, None, None)
    assert ranges_of(api) == {"slappart0": None, "slappart1": None}


@pytest.mark.parametrize(("given", "says"), [
    ("2001:db8:0::1:0/112", "canonical form, 2001:db8::1:0/112"),
    ("2001:DB8::1:0/112", "canonical form"),
    ("2001:db8::1:1/112", "has host bits set"),
    ("2001:db8::/40", "from /48 to /128"),
    ("2001:db8::1", "canonical form, 2001:db8::1/128"),
    ("10.0.0.0/24", "bad IPv6 range"),
    ("not a network", "bad IPv6 range"),
    (["2001:db8::1:0/112", "2001:db8::2:0/112"], "must be an IPv6 network"),
    (112, "must be an IPv6 network"),
    ({"network": RANGE}, "must be an IPv6 network"),
])
def test_a_bad_range_is_refused_naming_the_partition_and_nothing_changes(
        api: Api, db: Database, given: Any, says: str) -> None:
    formatted(api, RANGE, None)
    before = snapshot(db)
    error = api.fails(FORMAT, {"computer_guid": COMPUTER, "compute_partition_list": [
        {"partition_id": "slappart0", "ipv6_range": RANGE}, {"partition_id": "slappart1", "ipv6_range": given}]},
        400, "INVALID")
    assert "partition 'slappart1'" in error["title"] and says in error["title"], error["title"]
    assert snapshot(db) == before


def test_overlapping_ranges_are_refused(api: Api, db: Database) -> None:
    before = snapshot(db)
    error = api.fails(FORMAT, {"computer_guid": COMPUTER, "compute_partition_list": [
        {"partition_id": "slappart0", "ipv6_range": "2001:db8::/64"},
        {"partition_id": "slappart1", "ipv6_range": RANGE}]}, 400, "INVALID")
    assert error["title"] == ("partition 'slappart1' has an IPv6 range 2001:db8::1:0/112 that overlaps "
                              "partition 'slappart0''s 2001:db8::/64")
    assert snapshot(db) == before


def test_check_ipv6_range_bounds() -> None:
    assert str(check_ipv6_range("p", "2001:db8::/48")) == "2001:db8::/48"
    assert str(check_ipv6_range("p", "2001:db8::1/128")) == "2001:db8::1/128"
    with pytest.raises(ValidationError, match="from /48 to /128"):
        check_ipv6_range("p", "2001:db8::/47")


# -- SLAP XML: what slapos format sends, what a slapos.core node receives ----------------------

def slapos_range(network: str) -> dict[str, Any]:
    """A partition's ipv6_range as slapos format sends it."""
    addr, prefixlen = network.split("/")
    return {"addr": addr, "netmask": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:0", "network": network,
            "prefixlen": int(prefixlen)}


def xml_format(client: FlaskClient, *ranges: Any) -> Any:
    computer = computer_dict(len(ranges))
    for entry, ipv6_range in zip(computer["partition_list"], ranges):
        entry["ipv6_range"] = ipv6_range
    return client.post("/loadComputerConfigurationFromXML", data={"xml": dumps(computer)})


def node_parameters(client: FlaskClient) -> dict[str, dict[str, Any] | None]:
    return {p.initargs[1]: p.state.get("_parameter_dict") for p in full(client).state["_computer_partition_list"]}


def test_slap_xml_format_stores_the_range_and_the_partition_document_gives_it(client: FlaskClient) -> None:
    answer = xml_format(client, slapos_range(RANGE), {})
    assert (answer.status_code, answer.text) == (200, "done\n")
    api = Api(client)
    assert ranges_of(api) == {"slappart0": RANGE, "slappart1": None}
    supply(client)
    request(client, "first")
    request(client, "second")
    given = node_parameters(client)
    assert given["slappart0"]["ipv6_range"] == slapos_range(RANGE)
    assert given["slappart1"] is not None and "ipv6_range" not in given["slappart1"]
    assert xml_format(client, {"addr": "2001:db8::2:0", "prefixlen": 112}, {}).status_code == 200
    assert node_parameters(client)["slappart0"]["ipv6_range"]["network"] == OTHER


def test_slap_xml_format_refuses_a_bad_range_naming_the_partition(app: Flask, client: FlaskClient) -> None:
    xml_format(client, {}, {})
    for bad in ({"addr": "2001:db8::1:0"}, {"network": "2001:db8::/40"}, ["2001:db8::/64"]):
        answer = xml_format(client, {}, bad)
        assert answer.status_code == 400 and "partition 'slappart1'" in answer.text, answer.text
    assert ranges_of(Api(client)) == {"slappart0": None, "slappart1": None}
