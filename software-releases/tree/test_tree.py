"""tree end to end on the real node: the root requests its leaf, the node deploys both in one
pass, the root publishes the leaf's url; a parameter change, stop and start, destroy."""
from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import requests

from tests.support.node import COMPUTER, NodeEnv, free_port
from tests.support.releases import default_type_schemas, instance_profile

pytestmark = pytest.mark.root

HERE = Path(__file__).resolve().parent
ROOT_URL = str(HERE / "software.cfg")
LEAF_URL = str(HERE / "leaf" / "software.cfg")


@pytest.fixture
def env() -> Iterator[NodeEnv]:
    node = NodeEnv(partitions=3)
    try:
        node.format()
        yield node
    finally:
        node.close()


def get(url: str) -> requests.Response:
    return requests.get(url, timeout=5, proxies={"http": "", "https": ""})


def refused(url: str) -> bool:
    host, port = url.split("/")[2].rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, int(port))) != 0


def request(env: NodeEnv, state: str = "started", **parameters: str) -> dict:
    return env.client.request_instance("tree", ROOT_URL, parameters=parameters, state=state)


def partitions(env: NodeEnv) -> dict[str, dict]:
    """Instance title -> its partition's entry, for the partitions that hold one."""
    return {p["instance"]["title"]: p for p in env.client.get_compute_node_state(COMPUTER)["compute_partition_list"]
            if p["instance"]}


def test_the_root_publishes_its_leaf_url(env: NodeEnv) -> None:
    env.client.supply(COMPUTER, LEAF_URL)
    env.client.supply(COMPUTER, ROOT_URL)
    port = str(free_port())
    request(env, greeting="Bonjour", port=port)
    env.software()
    env.instance()  # one pass: the root requests, the leaf deploys and publishes, the root publishes
    root = env.info("tree")
    assert root["status_reason"] == "started"
    url = root["connection_parameters"]["url"]
    held = partitions(env)
    assert sorted(held) == ["leaf", "tree"]
    leaf = held["leaf"]["instance"]
    assert leaf["software_release_uri"] == LEAF_URL and leaf["state"] == "started"
    assert url.startswith(f"http://127.0.{env.network}.") and url.endswith(f":{port}/")
    assert get(url).text == "Bonjour"
    assert "leaf" not in {tree["title"] for tree in env.client.list_instance_trees()}  # in the root's tree

    # a new greeting reaches the leaf in one pass
    request(env, greeting="Salut", port=port)
    env.instance()
    assert get(url).text == "Salut"

    # stopping the root stops its leaf; starting it starts the leaf again
    request(env, "stopped", greeting="Salut", port=port)
    env.instance()
    assert partitions(env)["leaf"]["instance"]["state"] == "stopped"
    assert refused(url)
    request(env, greeting="Salut", port=port)
    env.instance()
    assert get(url).text == "Salut"
    assert env.info("tree")["connection_parameters"]["url"] == url

    # destroying the root destroys the tree: both partitions freed, empty, nothing left running
    paths = {title: env.partition_path(p["compute_partition_id"]) for title, p in partitions(env).items()}
    users = {title: path.owner() for title, path in paths.items()}
    request(env, "destroyed")
    env.instance()
    env.report()
    assert partitions(env) == {}
    for title, path in paths.items():
        assert sorted(p.name for p in path.iterdir()) == [".slapos-resource"], title
        assert subprocess.run(["pgrep", "-u", users[title]], capture_output=True, check=False).returncode == 1
    assert refused(url)


def test_descriptors_and_schemas_match_the_profiles() -> None:
    for directory in (HERE, HERE / "leaf"):
        request_schema, response_schema = default_type_schemas(directory)
        profile = instance_profile(directory)
        defaults = profile["slap-configuration"]
        assert request_schema["properties"]["greeting"]["default"] == defaults["configuration.greeting"]
        assert str(request_schema["properties"]["port"]["default"]) == defaults["configuration.port"]
        # the root's user may send a number; partita:request sends the leaf text
        jsonschema.validate({"greeting": "Bonjour", "port": 8081}, request_schema)
        jsonschema.validate({"greeting": "Bonjour", "port": "8081"}, request_schema)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"port": "http"}, request_schema)
        jsonschema.validate({"url": "http://127.0.1.1:8080/"}, response_schema)
