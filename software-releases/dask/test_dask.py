"""dask end to end on the real node: the root instance runs the scheduler and requests its
workers, each in its own partition; a real distributed.Client computes on them; the number of
workers goes up and down (the dropped workers' partitions are freed), stop and start, destroy."""
from __future__ import annotations

import configparser
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import requests
from distributed import Client

from tests.support.node import COMPUTER, NodeEnv, free_port, node_with_software

pytestmark = [
    pytest.mark.root,
    # the test's client has no numpy, the cluster has: distributed warns, and nothing here needs it
    pytest.mark.filterwarnings("ignore::distributed.versions.VersionMismatchWarning"),
]

HERE = Path(__file__).resolve().parent
SOFTWARE_URL = str(HERE / "software.cfg")
TITLE = "dask"
MAX_WORKERS = 3


@pytest.fixture(scope="module")
def env() -> Iterator[NodeEnv]:
    """One node for the module, with room for the root and its largest number of workers."""
    with node_with_software(SOFTWARE_URL, partitions=1 + MAX_WORKERS) as node:
        yield node


def request(env: NodeEnv, state: str = "started", **parameters: object) -> dict:
    """Request the cluster; parameters go as json-in-xml (worker-sla is an object)."""
    return env.client.request_instance(TITLE, SOFTWARE_URL, parameters={"_": json.dumps(parameters)}, state=state)


def partitions(env: NodeEnv) -> dict[str, dict]:
    """Instance title -> its partition's entry, for the partitions that hold one."""
    return {p["instance"]["title"]: p for p in env.client.get_compute_node_state(COMPUTER)["compute_partition_list"]
            if p["instance"]}


def refused(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) != 0


def no_process(user: str) -> bool:
    return subprocess.run(["pgrep", "-u", user], capture_output=True, check=False).returncode == 1


def freed(path: Path) -> bool:
    return sorted(p.name for p in path.iterdir()) == [".slapos-resource"]


def wait_for_workers(client: Client, count: int, timeout: float = 120.0) -> dict:
    """The scheduler's workers once there are `count` of them (a generous bound: workers
    reconnect, or are forgotten, within seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        workers = client.scheduler_info()["workers"]
        if len(workers) == count:
            return workers
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} workers expected, the scheduler has {len(workers)}: {sorted(workers)}")
        time.sleep(0.5)


def worker_addresses(env: NodeEnv, count: int) -> set[str]:
    """What the workers published; each on its own partition's address."""
    held = partitions(env)
    assert sorted(title for title in held if title != TITLE) == [f"worker-{i}" for i in range(count)]
    return {held[f"worker-{i}"]["instance"]["connection_parameters"]["address"] for i in range(count)}


def test_cluster_lifecycle(env: NodeEnv) -> None:
    port, dashboard_port = free_port(), free_port()
    settings = {"port": port, "dashboard-port": dashboard_port, "worker-sla": {"computer_guid": COMPUTER}}
    request(env, workers=2, **settings)
    env.instance()  # one pass: the root requests, the workers deploy and publish, the root publishes
    root = env.info(TITLE)
    assert root["status_reason"] == "started"
    published = root["connection_parameters"]
    host = f"127.0.{env.network}.{published['scheduler'].split('.')[-1].split(':')[0]}"
    assert published["scheduler"] == f"tcp://{host}:{port}"
    assert published["dashboard"] == f"http://{host}:{dashboard_port}/status"
    assert published["workers"] == "2"
    addresses = worker_addresses(env, 2)
    for title in ("worker-0", "worker-1"):  # the worker-sla reached every worker's request
        child = env.client.get_instance(partitions(env)[title]["instance"]["instance_guid"])
        assert child["sla_parameters"] == {"computer_guid": COMPUTER} and child["software_type"] == "worker"
    assert len({address.split("//")[1].split(":")[0] for address in addresses} | {host}) == 3

    with Client(published["scheduler"], timeout=30) as client:
        assert set(wait_for_workers(client, 2)) == addresses
        assert client.submit(sum, range(100)).result(timeout=60) == 4950
        squares = client.map(lambda x: x * x, range(20), pure=False)
        assert sum(client.gather(squares)) == sum(x * x for x in range(20))
        directories = client.run(lambda dask_worker: dask_worker.local_directory)
        assert set(directories) == addresses
        assert all("/srv/dask-worker/" in directory for directory in directories.values())  # in its partition
    page = requests.get(published["dashboard"], timeout=30, proxies={"http": "", "https": ""})
    assert page.status_code == 200 and "Dask" in page.text

    # three workers, then one: the dropped workers' partitions are destroyed and freed
    request(env, workers=3, **settings)
    env.instance()
    assert env.info(TITLE)["connection_parameters"]["workers"] == "3"
    with Client(published["scheduler"], timeout=30) as client:
        assert set(wait_for_workers(client, 3)) == worker_addresses(env, 3)
    dropped = {f"worker-{i}": env.partition_path(partitions(env)[f"worker-{i}"]["compute_partition_id"])
               for i in (1, 2)}
    dropped_users = {title: path.owner() for title, path in dropped.items()}
    request(env, workers=1, **settings)
    env.instance()
    env.report()
    assert env.info(TITLE)["connection_parameters"]["workers"] == "1"
    assert sorted(partitions(env)) == [TITLE, "worker-0"]
    for title, path in dropped.items():
        assert freed(path), title
        assert no_process(dropped_users[title]), title
    with Client(published["scheduler"], timeout=30) as client:
        assert set(wait_for_workers(client, 1)) == worker_addresses(env, 1)
        assert client.submit(sum, range(10)).result(timeout=60) == 45

    # stop and start the root: its worker follows
    request(env, "stopped", workers=1, **settings)
    env.instance()
    assert partitions(env)["worker-0"]["instance"]["state"] == "stopped"
    assert refused(host, port) and refused(host, dashboard_port)
    request(env, workers=1, **settings)
    env.instance()
    assert env.info(TITLE)["connection_parameters"] == {**published, "workers": "1"}
    with Client(published["scheduler"], timeout=30) as client:
        wait_for_workers(client, 1)
        assert client.submit(sum, range(100)).result(timeout=60) == 4950

    # no worker at all: the last one is destroyed too (the root's request transaction is empty)
    last = env.partition_path(partitions(env)["worker-0"]["compute_partition_id"])
    last_user = last.owner()
    worker_endpoints = [a.split("//")[1].rsplit(":", 1) for a in worker_addresses(env, 1)]
    request(env, workers=0, **settings)
    env.instance()
    env.report()
    assert env.info(TITLE)["connection_parameters"]["workers"] == "0"
    assert sorted(partitions(env)) == [TITLE]
    assert freed(last) and no_process(last_user)
    assert all(refused(address, int(worker_port)) for address, worker_port in worker_endpoints)
    with Client(published["scheduler"], timeout=30) as client:
        wait_for_workers(client, 0)

    # and up again from none
    request(env, workers=1, **settings)
    env.instance()
    assert env.info(TITLE)["connection_parameters"]["workers"] == "1"
    with Client(published["scheduler"], timeout=30) as client:
        assert set(wait_for_workers(client, 1)) == worker_addresses(env, 1)

    # destroyed: every partition freed and empty, nothing of their users runs, the ports closed
    held = partitions(env)
    paths = {title: env.partition_path(p["compute_partition_id"]) for title, p in held.items()}
    users = {title: path.owner() for title, path in paths.items()}
    worker_endpoints = [a.split("//")[1].rsplit(":", 1) for a in worker_addresses(env, 1)]
    request(env, "destroyed")
    env.instance()
    env.report()
    assert partitions(env) == {}
    for title, path in paths.items():
        assert freed(path), title
        assert no_process(users[title]), title
    assert refused(host, port) and refused(host, dashboard_port)
    assert all(refused(address, int(worker_port)) for address, worker_port in worker_endpoints)


def test_descriptor_and_schemas_match_the_profiles() -> None:
    descriptor = json.loads((HERE / "software.cfg.json").read_text())
    types = descriptor["software-type"]
    schemas = {name: {kind: json.loads((HERE / entry[kind]).read_text()) for kind in ("request", "response")}
               for name, entry in types.items()}
    assert sorted(schemas) == ["default", "worker"]
    for pair in schemas.values():
        for schema in pair.values():
            jsonschema.Draft202012Validator.check_schema(schema)
    for name, profile_name in (("default", "instance-scheduler.cfg.in"), ("worker", "instance-worker.cfg.in")):
        profile = configparser.ConfigParser(interpolation=None, strict=False)
        text = "\n".join(line for line in (HERE / profile_name).read_text().splitlines()
                         if not line.lstrip().startswith("{"))  # without the Jinja2 statements
        profile.read_string(text)
        defaults = {key[len("configuration."):]: value for key, value in profile["slap-configuration"].items()
                    if key.startswith("configuration.")}
        properties = schemas[name]["request"]["properties"]
        for key, value in defaults.items():
            assert str(properties[key]["default"]) == value, (name, key)
        assert {key for key, declared in properties.items() if "default" in declared} - {"worker-sla"} == set(defaults)
    entry = configparser.ConfigParser(interpolation=None)
    entry.read(HERE / "instance.cfg.in")
    assert entry["slap-configuration"]["configuration.workers"] == str(schemas["default"]["request"]["properties"]["workers"]["default"])
    cluster = schemas["default"]["request"]
    jsonschema.validate({"workers": 0, "worker-sla": {"computer_guid": "COMP-2"}}, cluster)
    for wrong in ({"workers": 65}, {"workers": -1}, {"worker-sla": {"computer_guid": "a\nb"}},
                  {"worker-sla": {"Bad Key": "x"}}, {"worker-sla": {"region": 3}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(wrong, cluster)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"port": 8788}, schemas["worker"]["request"])  # the scheduler is required
    jsonschema.validate({"scheduler": "tcp://127.0.1.1:8786", "nthreads": 2}, schemas["worker"]["request"])
    jsonschema.validate({"scheduler": "tcp://127.0.1.1:8786", "dashboard": "http://127.0.1.1:8787/status",
                         "workers": "2"}, schemas["default"]["response"])
    jsonschema.validate({"address": "tcp://127.0.1.2:8788"}, schemas["worker"]["response"])
