"""Run instance buildouts the way the Partita node does, for the recipe and software release tests.

A fake partition is a directory holding ``.slapgrid/instance.json`` (the node's instance file) and
``buildout.cfg``: the profile under test followed by the tail the node appends (``[slap-connection]``
and friends), both written through their contracts in `slap.wire`, as the node writes them.
`run_buildout` runs the toolchain's buildout there.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from partita.node.toolchain import Toolchain
from partita.slap.client import MasterClient
from partita.slap.wire.connection import buildout_tail, for_instance_file
from partita.slap.wire.instance import parse_instance
from partita.slap.wire.instance_file import InstanceFile, render_instance_file
from tests.support import server

BUILDOUT_TIMEOUT = 120.0
COMPUTER_ID = "local_computer"
SOFTWARE_URL = "/srv/test/software.cfg"

IPV4_NETWORK = "127.0.1.0/24"


def instance_document(directory: Path, **changes: Any) -> InstanceFile:
    """An instance file as the node writes it, with `changes` applied."""
    document = InstanceFile(
        computer_id=COMPUTER_ID, partition_id="slappart0", server_url="http://127.0.0.1:9",
        instance_guid="SOFTINST-test", title="hello", root_instance_title="hello",
        software_release_uri=SOFTWARE_URL, software_type="default", state="started",
        parameters={}, connection_parameters={},
        ip_list=(("lo", "127.0.1.1"), ("lo", "fd70:6172:7469:7461::1")),
        shared_instance_list=(), timestamp=1732230000.5,
        software_path="/opt/slapgrid/test", partition_path=str(directory),
    )
    return dataclasses.replace(document, **changes)


def from_master(directory: Path, server_url: str, instance: dict[str, Any], **changes: Any) -> InstanceFile:
    """The instance file of `instance` (a master's instance document) hosted in `directory`."""
    document = parse_instance(instance)
    assert document.instance_guid and document.computer_guid and document.compute_partition_id, instance
    return instance_document(
        directory, server_url=server_url, computer_id=document.computer_guid,
        partition_id=document.compute_partition_id, instance_guid=document.instance_guid,
        title=document.title, root_instance_title=document.root_instance_title,
        software_release_uri=document.software_release_uri, software_type=document.software_type,
        state=document.state, parameters=document.parameters, ip_list=document.ip_list, **changes,
    )


def write_partition(directory: Path, profile: str, document: InstanceFile,
                    requested_state: str | None = None) -> Path:
    """Write the instance file and ``buildout.cfg`` (profile + the node's tail) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    instance_file = directory / ".slapgrid" / "instance.json"
    instance_file.parent.mkdir(exist_ok=True)
    instance_file.write_text(json.dumps(render_instance_file(document), indent=1, sort_keys=True))
    connection = for_instance_file(document, instance_file=str(instance_file))
    if requested_state is not None:
        connection = dataclasses.replace(connection, requested_state=requested_state)
    (directory / "buildout.cfg").write_text(profile + "\n" + buildout_tail(connection, ipv4_network=IPV4_NETWORK))
    return directory


@dataclass
class Result:
    returncode: int
    output: str

    @property
    def error(self) -> str:
        """The ``Error: …`` line buildout printed (empty when there is none)."""
        lines = [line for line in self.output.splitlines() if line.startswith("Error: ")]
        return lines[-1][len("Error: "):] if lines else ""


def run_buildout(toolchain: Toolchain, directory: Path) -> Result:
    """Run ``buildout -c buildout.cfg`` in `directory` with the node's toolchain."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(directory), "LANG": "C.UTF-8"}
    completed = subprocess.run([str(toolchain.buildout), "-c", "buildout.cfg"], cwd=directory, env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=BUILDOUT_TIMEOUT)
    return Result(completed.returncode, completed.stdout + completed.stderr)


def check_ok(result: Result) -> Result:
    assert result.returncode == 0, result.output
    return result


def check_fails(result: Result, *expected: str) -> str:
    """Assert that buildout failed with one ``Error:`` line holding every `expected` text."""
    assert result.returncode != 0, result.output
    assert result.error, result.output
    for text in expected:
        assert text in result.error, result.output
    return result.error


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, step: float = 0.05) -> Any:
    """The first true value of `condition()`, polled until `timeout`; fails the test after."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            assert value, f"condition not met within {timeout}s"
            return value
        time.sleep(step)


def read_values(path: Path) -> dict[str, str]:
    """``name = value`` lines written by a template listing options (see `listing`)."""
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" = ")
        values[key] = value
    return values


def listing(section: str, names: list[str]) -> str:
    """A template text that writes ``name = ${section:name}`` for each name."""
    return "".join(f"{name} = ${{{section}:{name}}}\n" for name in names)


@dataclass
class Master:
    """A running proxy with one formatted computer and `SOFTWARE_URL` supplied."""

    url: str
    client: MasterClient
    process: server.ServerProcess
    _titles: Iterator[int] = field(default_factory=itertools.count)

    def root(self, prefix: str = "root", **parameters: Any) -> dict[str, Any]:
        """A new root instance (a fresh title, so a fresh partition) with `parameters`."""
        title = f"{prefix}-{next(self._titles)}"
        return self.client.request_instance(title, SOFTWARE_URL, parameters=parameters)

    def as_partition(self, instance: dict[str, Any]) -> MasterClient:
        """A client acting as the partition that hosts `instance`."""
        return MasterClient(self.url, partition=(instance["computer_guid"], instance["compute_partition_id"]))

    def stop(self) -> None:
        self.client.close()
        self.process.stop()


def start_master(directory: Path, addresses: list[str], software_url: str = SOFTWARE_URL) -> Master:
    """A proxy whose computer has one partition per address (slappart0, 1, …), `software_url` supplied."""
    process = server.start(directory, ("proxy", "start"))
    try:
        client = MasterClient(process.url)
        client.format_compute_node(COMPUTER_ID, [
            {"partition_id": f"slappart{n}", "ip_list": [
                {"ip-address": address, "network-interface": "lo", "netmask": "255.255.255.255"}]}
            for n, address in enumerate(addresses)
        ])
        client.supply(COMPUTER_ID, software_url)
    except BaseException:
        process.stop()
        raise
    return Master(process.url, client, process)
