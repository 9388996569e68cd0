"""What `slapos computer list|info` counts (issue 13): a destroyed instance whose partition the
node has not freed yet keeps the partition busy but is no longer one of the computer's instances."""
from __future__ import annotations

from partita.master.db.database import Database
from partita.master.services import computer_registry
from partita.master.services.identity import Caller
from tests.master.test_json_rpc import COMPUTER, Api, api  # noqa: F401 (api: a fixture)

ADMIN = Caller(owner="root", role="user", admin=True)


def entry_of(api: Api) -> dict:
    listed = api.call("slapos.allDocs.v0.compute_node_list")["result_list"]
    return next(entry for entry in listed if entry["computer_guid"] == COMPUTER)


def test_a_destroyed_instance_not_yet_freed_is_not_counted(api: Api, db: Database) -> None:
    api.format("slappart0", "slappart1", "slappart2")
    api.request("kept")
    api.request("gone")
    assert (entry_of(api)["instance_count"], entry_of(api)["busy_partition_count"]) == (2, 2)
    api.request("gone", state="destroyed")
    entry = entry_of(api)
    assert (entry["instance_count"], entry["busy_partition_count"], entry["partition_count"]) == (1, 2, 3)
    with db.read() as session:
        info = computer_registry.computer_info(session, ADMIN, COMPUTER)
    assert (info.instance_count, info.busy_partition_count) == (1, 2)
