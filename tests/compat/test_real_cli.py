"""The real slapos.core 1.26.1 CLI (`slapos supply/request/remove/service/computer`) against Partita.

Client config: ``[slapos] master_url`` plus ``master_rest_url = <url>/hateoas`` (HATEOAS reads for
`service list|info` and `computer list`). The node side (format, publishing, reporting destroyed
partitions) is played with the real `slap` library, as in test_real_client.py.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from partita.slap.software_names import shipped_releases
from tests.compat.conftest import (
    COMPUTER_ID, CliResult, PeerClient, format_step, is_free, partition_of, partitions_by_id,
)

pytestmark = pytest.mark.peer

SR = "/opt/partita-compat/hello/software.cfg"
INST1_PARAMETERS = ["foo=bar", "baz=qux"]
INST1_CONNECTION = {"url": "http://127.0.1.1:8080/", "password": "s3cret"}
SLAVE_CONNECTION = {"slave-url": "http://127.0.1.1:8080/_myslave"}


def succeeded(result: CliResult) -> CliResult:
    assert result.returncode == 0, str(result)
    return result


def state_line(result: CliResult) -> str:
    """What `slapos request` says after "State is :"."""
    for line in result.output.splitlines():
        if line.startswith("State is :"):
            return line[len("State is :"):].strip().rstrip(".")
    raise AssertionError(f"no 'State is :' line:\n{result}")


def printed_json(result: CliResult) -> Any:
    succeeded(result)
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"stdout is not one JSON document:\n{result}") from None


def computer(client: PeerClient) -> dict[str, Any]:
    return client.one({"op": "computer", "computer_id": COMPUTER_ID})


def test_cli_request_supply_service_computer(client: PeerClient) -> None:
    # supply to a computer without partitions yet (a supply is only a wish); a computer must be
    # known, though: the node declared itself (the proxy's own is known from its start), and a
    # typo is refused, as slapos.core expects of a master (issue 11)
    client.ok(format_step(0))
    supplied = succeeded(client.cli("supply", SR, COMPUTER_ID))
    assert "Done" in supplied.output
    typo = client.cli("supply", SR, "local_computr")
    assert typo.returncode == 1 and "Computer local_computr has not been found" in typo.output, str(typo)

    # request before any partition exists: kept waiting, the CLI exits 2
    early = client.cli("request", "inst1", SR, "--parameters", *INST1_PARAMETERS)
    assert early.returncode == 2, str(early)
    assert "Master is provisioning it" in early.output
    assert "State is" not in early.output

    # format: the waiting request is allocated; request again to read it
    client.ok(format_step(3))
    first = succeeded(client.cli("request", "inst1", SR, "--parameters", *INST1_PARAMETERS))
    assert state_line(first) == "started"
    assert "Connection parameters of instance are:" in first.output
    listed = computer(client)
    assert listed["software_releases"] == [{"url": SR, "state": "available", "computer": COMPUTER_ID}]
    inst1 = partition_of(listed, "inst1")
    pid = inst1["_partition_id"]
    assert pid == "slappart0"
    assert inst1["_parameter_dict"]["foo"] == "bar" and inst1["_parameter_dict"]["baz"] == "qux"

    # the instance publishes; the next request prints its connection parameters
    client.ok({"op": "publish", "as": [COMPUTER_ID, pid], "parameters": INST1_CONNECTION})
    published = succeeded(client.cli("request", "inst1", SR, "--parameters", *INST1_PARAMETERS))
    assert state_line(published) == "started"
    assert "http://127.0.1.1:8080/" in published.output and "s3cret" in published.output

    # shared instance: hosted by inst1 (the only instance of SR), which publishes for it
    shared = succeeded(client.cli("request", "myslave", SR, "--slave", "--parameters", "hostname=example.invalid"))
    assert state_line(shared) == "started"
    slaves = partitions_by_id(computer(client))[pid]["_parameter_dict"]["slave_instance_list"]
    assert [s["hostname"] for s in slaves] == ["example.invalid"]
    client.ok({"op": "publish", "as": [COMPUTER_ID, pid], "parameters": SLAVE_CONNECTION,
               "slave_reference": slaves[0]["slave_reference"]})

    # fill the computer; the next request waits for a partition: exit 2
    for title in ("inst2", "inst3"):
        assert state_line(succeeded(client.cli("request", title, SR))) == "started"
    waiting = client.cli("request", "inst4", SR, "--parameters", "x=y")
    assert waiting.returncode == 2, str(waiting)
    assert "Master is provisioning it" in waiting.output

    # service list / info, computer list (HATEOAS reads, run side by side)
    services, info, slave_info, missing, computers = parallel(
        client, ("service", "list"), ("service", "info", "inst1"), ("service", "info", "myslave"),
        ("service", "info", "no-such-instance"), ("computer", "list"))
    services = printed_json(services)
    for title in ("inst1", "inst2", "inst3", "myslave"):
        assert services.get(title) == SR, services
    info = printed_json(info)
    assert info["software-url"] == SR
    assert info["software-type"] == "default"
    assert info["shared"] is False
    assert info["requested-state"] == "started"
    assert info["instance-parameters"] == {"foo": "bar", "baz": "qux"}
    assert info["connection-parameters"] == INST1_CONNECTION
    assert info["status"] in ("green", "none", "unsupported", "orange", "red")
    slave_info = printed_json(slave_info)
    assert slave_info["shared"] is True
    assert slave_info["software-url"] == SR
    assert slave_info["instance-parameters"] == {"hostname": "example.invalid"}
    assert slave_info["connection-parameters"] == SLAVE_CONNECTION
    assert missing.returncode == 2, str(missing)
    assert "does not exist" in missing.output
    assert COMPUTER_ID in succeeded(computers).output

    # stop
    stopped = succeeded(client.cli("request", "inst1", SR, "--state", "stopped", "--parameters", *INST1_PARAMETERS))
    assert state_line(stopped) == "stopped"
    assert partitions_by_id(computer(client))[pid]["_requested_state"] == "stopped"

    # destroy; once the node reports the partition destroyed, the waiting inst4 gets it
    destroyed = succeeded(client.cli("request", "inst1", SR, "--state", "destroyed", "--parameters", *INST1_PARAMETERS))
    assert state_line(destroyed) == "destroyed"
    destroying, _, listed = client.ok({"op": "computer", "computer_id": COMPUTER_ID},
                                      {"op": "report", "as": [COMPUTER_ID, pid], "state": "destroyed"},
                                      {"op": "computer", "computer_id": COMPUTER_ID})
    assert partitions_by_id(destroying)[pid]["_requested_state"] == "destroyed"
    assert partition_of(listed, "inst4")["_partition_id"] == pid
    assert not any(is_free(p) for p in listed["partitions"])
    allocated, info4, services = parallel(
        client, ("request", "inst4", SR, "--parameters", "x=y"), ("service", "info", "inst4"), ("service", "list"))
    assert state_line(succeeded(allocated)) == "started"
    info4 = printed_json(info4)
    assert info4["instance-parameters"] == {"x": "y"} and info4["connection-parameters"] == {}
    services = printed_json(services)
    assert "inst1" not in services and services.get("inst4") == SR, services

    # remove
    succeeded(client.cli("remove", SR, COMPUTER_ID))
    assert computer(client)["software_releases"] == [{"url": SR, "state": "destroyed", "computer": COMPUTER_ID}]


def parallel(client: PeerClient, *commands: tuple[str, ...]) -> list[CliResult]:
    """Run independent CLI commands side by side (each one is mostly Python start-up)."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        return list(pool.map(lambda args: client.cli(*args), commands))


def test_cli_product_names_resolve_to_shipped_releases(client: PeerClient) -> None:
    """`slapos supply|request ... product.NAME`: slapos.core asks the master for NAME's URL
    (getSoftwareReleaseListFromSoftwareProduct) and uses it; an unknown name stops the client."""
    hello_web = shipped_releases()["hello-web"]
    client.ok(format_step(1))
    succeeded(client.cli("supply", "product.hello-web", COMPUTER_ID))
    assert computer(client)["software_releases"] == [{"url": hello_web, "state": "available", "computer": COMPUTER_ID}]
    requested = succeeded(client.cli("request", "web", "product.hello-web", "--parameters", "greeting=Hej"))
    assert state_line(requested) == "started"
    info = printed_json(client.cli("service", "info", "web"))
    assert info["software-url"] == hello_web
    assert info["instance-parameters"] == {"greeting": "Hej"}

    unknown = client.cli("request", "other", "product.no-such-release")
    assert unknown.returncode == 1, str(unknown)
    assert "No Software Release corresponding to this Software Product has been found" in unknown.output
    assert "other" not in printed_json(client.cli("service", "list"))
