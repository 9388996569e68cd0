"""c-hello end to end on the real node: a proxy, `slapos node software|instance|report` as root,
real partition users, supervisord, promises; then a second release with the same source, which
reuses the program partita:cmmi built (its build cache) instead of compiling it again.
"""
from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import requests

from tests.support.node import COMPUTER, NodeEnv, free_port, node_with_software
from tests.support.releases import default_type_schemas, instance_profile

pytestmark = pytest.mark.root

HERE = Path(__file__).resolve().parent
SOFTWARE_URL = str(HERE / "software.cfg")


@pytest.fixture(scope="module")
def env() -> Iterator[NodeEnv]:
    """One node for the module; c-hello supplied and built once."""
    with node_with_software(SOFTWARE_URL, partitions=2) as node:
        yield node


def built_program(env: NodeEnv, url: str) -> str:
    """The program path the release's instance profile runs."""
    profile = (env.software_directory(url) / "instance.cfg").read_text()
    return next(line.split()[2] for line in profile.splitlines() if line.startswith("command-line = "))


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=5, proxies={"http": "", "https": ""})


def refused(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) != 0


def request(env: NodeEnv, state: str = "started", **parameters: str) -> dict:
    return env.client.request_instance("c-hello", SOFTWARE_URL, parameters=parameters, state=state)


def test_lifecycle(env: NodeEnv) -> None:
    port = str(free_port())
    request(env, greeting="Bonjour", port=port)
    env.instance()  # runs the promises: started means they pass
    doc = env.info("c-hello")
    assert doc["status_reason"] == "started" and doc["reported_state"] == "started"
    address = f"127.0.{env.network}.1"
    url = doc["connection_parameters"]["url"]
    assert url == f"http://{address}:{port}/"
    answer = get(url)
    assert (answer.status_code, answer.headers["Content-Type"], answer.text) == (
        200, "text/plain; charset=utf-8", "Bonjour\n")
    assert get(url + "missing").status_code == 404
    partition = env.partition_path(doc["compute_partition_id"])
    assert not built_program(env, SOFTWARE_URL).startswith(str(partition))

    # a new greeting and a new port: published, served, the old port closed
    new_port = str(free_port())
    request(env, greeting="Salut à tous", port=new_port)
    env.instance()
    new_url = env.info("c-hello")["connection_parameters"]["url"]
    assert new_url == f"http://{address}:{new_port}/" and get(new_url).text == "Salut à tous\n"
    assert refused(address, int(port))

    # stop, then start again
    request(env, "stopped", greeting="Salut à tous", port=new_port)
    env.instance()
    assert env.info("c-hello")["reported_state"] == "stopped" and refused(address, int(new_port))
    request(env, greeting="Salut à tous", port=new_port)
    env.instance()
    assert env.info("c-hello")["status_reason"] == "started" and get(new_url).text == "Salut à tous\n"

    # destroyed: the partition is freed and empty, nothing of its user runs, the port is closed
    user = partition.owner()
    env.client.request_instance("c-hello", SOFTWARE_URL, state="destroyed")
    env.report()
    state = env.client.get_compute_node_state(COMPUTER)
    freed = next(p for p in state["compute_partition_list"]
                 if p["compute_partition_id"] == doc["compute_partition_id"])
    assert freed["instance"] is None and freed["state"] == "free"
    assert sorted(p.name for p in partition.iterdir()) == [".slapos-resource"]
    assert subprocess.run(["pgrep", "-u", user], capture_output=True, check=False).returncode == 1
    assert refused(address, int(new_port))


def test_a_second_release_with_the_same_source_reuses_the_build(env: NodeEnv) -> None:
    copy = env.root / "elsewhere" / "c-hello"
    shutil.copytree(HERE, copy, ignore=shutil.ignore_patterns("__pycache__", "test_*.py", "conftest.py"))
    for path in (copy.parent, copy):
        path.chmod(0o755)
    second_url = str(copy / "software.cfg")
    env.client.supply(COMPUTER, second_url)
    env.software()
    second = env.software_directory(second_url)
    assert (second / ".completed").is_file()
    assert built_program(env, second_url) == built_program(env, SOFTWARE_URL)
    assert "c-hello: reusing " in (second / ".build.log").read_text()
    assert not (second / "parts" / "c-hello.cmmi.log").exists()  # no configure, no make

    # a changed source is built again, into another entry (a new one at every run of this test)
    (copy / "src" / "c-hello.c").write_text((HERE / "src" / "c-hello.c").read_text() + f"/* changed {secrets.token_hex(8)} */\n")
    env.client.supply(COMPUTER, second_url, "destroyed")
    env.software()
    env.client.supply(COMPUTER, second_url)
    env.software()
    assert built_program(env, second_url) != built_program(env, SOFTWARE_URL)
    assert "$ make" in (env.software_directory(second_url) / "parts" / "c-hello.cmmi.log").read_text()


def test_descriptor_and_schemas_match_the_profile() -> None:
    request_schema, response_schema = default_type_schemas(HERE)
    profile = instance_profile(HERE)
    defaults = profile["slap-configuration"]
    assert request_schema["properties"]["greeting"]["default"] == defaults["configuration.greeting"]
    assert str(request_schema["properties"]["port"]["default"]) == defaults["configuration.port"]
    jsonschema.validate({"greeting": "Bonjour", "port": 8081}, request_schema)
    jsonschema.validate({"url": "http://127.0.1.1:8080/"}, response_schema)
