"""Placement over the JSON API of an authenticated master (issue 13): the abusing user and node,
a request waiting for a supply, and the node's long poll as its heartbeat."""
from __future__ import annotations

from sqlalchemy import update

from partita.master.db.models import Computer
from tests.master.test_authentication import SR, Realm, realm  # noqa: F401

CHANGES = (("slapos.put.v0.compute_node_tags", {"set": {"region": "evil"}}),
           ("slapos.put.v0.compute_node_network", {"network_guid": "evil"}),
           ("slapos.put.v0.compute_node_allocation_scope", {"allocation_scope": "close"}))


def test_a_user_or_node_may_not_change_placement_of_a_computer(realm: Realm) -> None:
    computer = realm.computer()  # the admin's
    mallory = realm.user("mallory")
    before = realm.ok(realm.admin, "slapos.get.v0.compute_node", {"computer_guid": computer.name})
    for method, body in CHANGES:
        for intruder in (mallory, computer):
            refused = realm.call(intruder, method, {"computer_guid": computer.name, **body})
            assert refused.status_code == 403, refused.text
    after = realm.ok(realm.admin, "slapos.get.v0.compute_node", {"computer_guid": computer.name})
    assert {k: after[k] for k in ("tags", "network_guid", "allocation_scope")} == \
        {k: before[k] for k in ("tags", "network_guid", "allocation_scope")} == \
        {"tags": {}, "network_guid": None, "allocation_scope": "open"}
    for method, body in CHANGES:
        realm.ok(realm.admin, method, {"computer_guid": computer.name, **body})
    assert realm.ok(realm.admin, "slapos.get.v0.compute_node", {"computer_guid": computer.name})[
        "allocation_scope"] == "close"


def test_a_request_waits_for_a_supply_then_the_node_polls(realm: Realm) -> None:
    computer = realm.computer(supplied=False)
    alice = realm.user("alice")
    waiting = realm.request(alice, "web")
    assert waiting["compute_partition_id"] is None
    assert waiting["status_reason"] == f"waiting for a supply of {SR} (`slapos supply`)"
    realm.ok(alice, "slapos.post.v0.software_installation", {"computer_guid": computer.name,
                                                             "software_release_uri": SR})
    assert realm.ok(alice, "slapos.get.v0.software_instance",
                    {"instance_guid": waiting["instance_guid"]})["compute_partition_id"] == "slappart0"
    def states() -> list[tuple[str, str]]:
        listed = realm.ok(realm.admin, "slapos.allDocs.v0.compute_node_list")["result_list"]
        return [(c["computer_guid"], c["contact_state"]) for c in listed]

    assert states() == [(computer.name, "online")]  # its format was a contact
    with realm.db.write() as session:  # forgotten: a refused caller must not bring it back
        session.execute(update(Computer).values(last_contact=None))
    realm.app.extensions.pop("partita.contacts")  # and the app's memory of writing it
    assert states() == [(computer.name, "never seen")]
    assert realm.call(mallory := realm.user("mallory"), "slapos.wait.v0.compute_node_change",
                      {"computer_guid": computer.name, "generation": 0, "timeout": 0}).status_code == 403
    assert states() == [(computer.name, "never seen")] and mallory  # a refused caller is no heartbeat
    realm.ok(computer, "slapos.wait.v0.compute_node_change", {"computer_guid": computer.name, "generation": 0,
                                                               "timeout": 0})
    assert states() == [(computer.name, "online")]
    assert realm.count(Computer) == 1
