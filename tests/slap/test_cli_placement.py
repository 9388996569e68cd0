"""``slapos computer tag set|unset``, ``network set``, ``open|close|drain``, and what ``computer
list|info`` show of them and of the node's last contact, through the real client and a real master
(issue 13)."""
from __future__ import annotations

import json

from click.testing import CliRunner, Result

from partita.slap.cli.main import cli
from tests.slap.live_master import COMPUTER, SR, LiveMaster, master  # noqa: F401


def run(master: LiveMaster, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--cfg", str(master.cfg)])


def info(master: LiveMaster) -> dict:  # type: ignore[type-arg]
    return json.loads(run(master, "computer", "info", COMPUTER, "--format", "json").stdout)


def test_tags_and_network_place_and_show(master: LiveMaster) -> None:
    result = run(master, "computer", "tag", "set", COMPUTER, "region=rennes", "gpu=a100")
    assert (result.exit_code, result.stdout) == (0, f"{COMPUTER}: gpu=a100 region=rennes\n")
    assert run(master, "computer", "tag", "unset", COMPUTER, "gpu").stdout == f"{COMPUTER}: region=rennes\n"
    assert run(master, "computer", "network", "set", COMPUTER, "rack-1").stdout == f"{COMPUTER}: network rack-1\n"
    shown = info(master)
    assert (shown["tags"], shown["network_guid"]) == ({"region": "rennes"}, "rack-1")
    text = run(master, "computer", "info", COMPUTER).stdout
    assert "region=rennes" in text and "rack-1" in text
    lille = master.client.request_instance("lille", SR, sla_parameters={"tag.region": "lille"})
    assert lille["compute_partition_id"] is None
    assert lille["status_reason"] == "waiting for a free partition (tag.region=lille)"
    rennes = master.client.request_instance("rennes", SR, sla_parameters={"tag.region": "rennes",
                                                                           "network_guid": "rack-1"})
    assert rennes["compute_partition_id"] is not None
    # retagged: the waiting request gets its partition
    run(master, "computer", "tag", "set", COMPUTER, "region=lille")
    assert master.client.get_instance(lille["instance_guid"])["compute_partition_id"] is not None
    assert run(master, "computer", "network", "set", COMPUTER, "").stdout == f"{COMPUTER}: network (none)\n"


def test_bad_tags_are_one_line_and_change_nothing(master: LiveMaster) -> None:
    result = run(master, "computer", "tag", "set", COMPUTER, "bad name=x")
    assert result.exit_code == 1 and result.stderr.startswith("slapos: error: tag name 'bad name'")
    assert run(master, "computer", "tag", "set", COMPUTER, "novalue").exit_code == 64
    assert info(master)["tags"] == {}


def test_close_drain_open(master: LiveMaster) -> None:
    first = master.client.request_instance("first", SR)
    assert run(master, "computer", "drain", COMPUTER).stdout == f"{COMPUTER}: draining\n"
    waiting = master.client.request_instance("second", SR)
    assert waiting["status_reason"] == "waiting for a free partition on an open computer (any computer)"
    listed = run(master, "computer", "list").stdout
    assert "draining" in listed and "1/3" in listed
    assert "draining (1 instance remains)" in run(master, "computer", "info", COMPUTER).stdout
    assert run(master, "computer", "close", COMPUTER).stdout == f"{COMPUTER}: closed\n"
    assert info(master)["allocation_scope"] == "close"
    assert run(master, "computer", "open", COMPUTER).stdout == f"{COMPUTER}: open\n"
    assert master.client.get_instance(waiting["instance_guid"])["compute_partition_id"] is not None
    assert first["compute_partition_id"] is not None


def test_list_shows_the_nodes_last_contact(master: LiveMaster) -> None:
    listed = run(master, "computer", "list").stdout
    assert "never seen" not in listed  # its format was a contact
    master.client.wait_compute_node_change(COMPUTER, 0, timeout=0)  # the node's long poll: its heartbeat
    listed = run(master, "computer", "list").stdout
    row = [line for line in listed.splitlines() if COMPUTER[:6] in line][0]
    assert "online" in row and " s ago" in row, listed
    assert info(master)["contact_state"] == "online"
