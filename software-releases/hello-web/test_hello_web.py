"""hello-web, built and deployed the way the Partita node does it, against a real proxy.

The software is built once per module in a temporary software directory; each test deploys an
instance in a temporary partition directory on a free 127.x.y.z address and port, runs the
service from the wrapper the instance buildout wrote, and reads it over HTTP.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from partita.node.toolchain import Toolchain
from tests.recipes.helpers import (Master, check_fails, check_ok, free_port, from_master, run_buildout, start_master,
                                   wait_until, write_partition)
from tests.support.releases import default_type_schemas, instance_profile

HERE = Path(__file__).resolve().parent
SOFTWARE_URL = str(HERE / "software.cfg")
PARTITIONS = 3
HTTP_TIMEOUT = 5


def free_address() -> str:
    """A loopback address (127.0.0.0/8) nothing listens on."""
    while True:
        address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
        with socket.socket() as sock:
            try:
                sock.bind((address, 0))
                return address
            except OSError:
                continue


def node_software_profile(directory: Path, cache: Path) -> str:
    """The ``buildout.cfg`` the node writes in a software directory."""
    return (
        "[buildout]\n"
        f"extends = {SOFTWARE_URL}\n"
        f"directory = {directory}\n"
        f"eggs-directory = {cache}/eggs\n"
        f"download-cache = {cache}/download\n"
        f"extends-cache = {cache}/extends\n"
        "newest = false\n"
        "[software-release]\n"
        f"url = {SOFTWARE_URL}\n"
        f"base = {HERE}\n"
    )


@pytest.fixture(scope="module")
def software(toolchain: Toolchain, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hello-web built in ``<software root>/<md5 of its URL>``."""
    root = tmp_path_factory.mktemp("software")
    directory = root / hashlib.md5(SOFTWARE_URL.encode()).hexdigest()
    directory.mkdir()
    (directory / "buildout.cfg").write_text(node_software_profile(directory, root / "cache"))
    check_ok(run_buildout(toolchain, directory))
    return directory


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    started = start_master(tmp_path_factory.mktemp("proxy"), [free_address() for _ in range(PARTITIONS)],
                           software_url=SOFTWARE_URL)
    yield started
    started.stop()


@pytest.fixture
def services() -> Iterator[list[subprocess.Popen]]:
    """Processes started by a test, killed at its end."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def deploy(toolchain: Toolchain, master: Master, software: Path, directory: Path,
           title: str, **parameters: Any) -> dict[str, Any]:
    """Request `title` with `parameters`, then run its instance buildout as the node would."""
    instance = master.client.request_instance(title, SOFTWARE_URL, parameters=parameters)
    profile = (software / "instance.cfg").read_text()
    write_partition(directory, profile, from_master(directory, master.url, instance, software_path=str(software)))
    check_ok(run_buildout(toolchain, directory))
    return instance


def start_service(directory: Path, services: list[subprocess.Popen]) -> subprocess.Popen:
    """Run the service's wrapper as supervisor would: cwd = the partition, a minimal environment."""
    process = subprocess.Popen([str(directory / "etc" / "service" / "hello-web")], cwd=directory,
                               env={"PATH": "/usr/bin:/bin", "HOME": str(directory)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    services.append(process)
    return process


def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of GET `url`, without any proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=HTTP_TIMEOUT) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


def answers(url: str) -> bool:
    try:
        get(url)
        return True
    except OSError:
        return False


def run_promise(toolchain: Toolchain, directory: Path) -> dict[str, Any]:
    plugin = directory / "etc" / "plugin" / "hello-web-answers.py"
    result = subprocess.run([str(toolchain.python), "-m", "partita.slap.promise", str(plugin)], cwd=directory,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_serves_the_greeting_then_restarts_with_a_new_one(toolchain: Toolchain, master: Master, software: Path,
                                                          tmp_path: Path, services: list) -> None:
    partition = tmp_path / "slappart"
    address = master.client.request_instance("hello", SOFTWARE_URL)["ip_list"][0][1]
    port = free_port(address)
    instance = deploy(toolchain, master, software, partition, "hello", greeting="Bonjour", port=port)
    url = f"http://{address}:{port}/"
    assert master.client.get_instance(instance["instance_guid"])["connection_parameters"] == {"url": url}
    assert (partition / "etc" / "greeting.txt").read_text() == "Bonjour"

    first = start_service(partition, services)
    wait_until(lambda: answers(url))
    assert get(url) == (200, "text/plain; charset=utf-8", "Bonjour\n")
    assert run_promise(toolchain, partition)["ok"]

    wrapper = partition / "etc" / "service" / "hello-web"
    before = wrapper.read_text()
    deploy(toolchain, master, software, partition, "hello", greeting="Hello again, ${name}!", port=port)
    after = wrapper.read_text()
    assert after != before  # the node restarts a service whose wrapper changed
    changed = [(old, new) for old, new in zip(before.splitlines(), after.splitlines(), strict=True) if old != new]
    assert [old.split(":")[0] for old, _ in changed] == ["# hash-files sha256"]

    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == 0
    promise = run_promise(toolchain, partition)
    assert not promise["ok"] and promise["message"].startswith(f"{url} does not answer")
    start_service(partition, services)
    wait_until(lambda: answers(url))
    assert get(url)[2] == "Hello again, ${name}!\n"  # user text, never a buildout reference
    assert run_promise(toolchain, partition)["ok"]


def test_defaults_from_the_profile(toolchain: Toolchain, master: Master, software: Path, tmp_path: Path) -> None:
    instance = deploy(toolchain, master, software, tmp_path / "slappart", "defaults")
    address = instance["ip_list"][0][1]
    assert (tmp_path / "slappart" / "etc" / "greeting.txt").read_text() == "Hello"
    assert "--port 8080 " in (tmp_path / "slappart" / "etc" / "service" / "hello-web").read_text()
    published = master.client.get_instance(instance["instance_guid"])["connection_parameters"]
    assert published == {"url": f"http://{address}:8080/"}


def test_a_bad_port_fails_the_buildout_with_one_line(toolchain: Toolchain, master: Master, software: Path,
                                                     tmp_path: Path) -> None:
    """partita:slapconfiguration checks the parameters against software.cfg.json (issue 12), also
    those a master that does not check them (an older one, SlapOS's) would pass on."""
    directory = tmp_path / "slappart"
    instance = master.client.request_instance("bad-port", SOFTWARE_URL)
    document = from_master(directory, master.url, instance, software_path=str(software))
    profile = (software / "instance.cfg").read_text()
    write_partition(directory, profile, dataclasses.replace(document, parameters={"port": "http"}))
    check_fails(run_buildout(toolchain, directory), "[slap-configuration] parameter 'port': 'http' is not of type 'integer'")
    assert not (directory / "etc" / "service" / "hello-web").exists()


def test_the_app_refuses_a_bad_port_with_one_line(tmp_path: Path) -> None:
    process = run_app(tmp_path, "127.0.0.1", "http")
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 1
    assert stderr == "hello-web: invalid port 'http': expected a number from 1 to 65535\n"


def run_app(tmp_path: Path, host: str, port: str) -> subprocess.Popen:
    greeting = tmp_path / "greeting.txt"
    greeting.write_text("Hi\n")
    return subprocess.Popen([sys.executable, str(HERE / "hello_web.py"), "--host", host, "--port", port,
                             "--greeting-file", str(greeting)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_the_app_serves_ipv6_and_refuses_a_busy_port(tmp_path: Path, services: list) -> None:
    port = free_port("::1")
    app = run_app(tmp_path, "::1", str(port))
    services.append(app)
    url = f"http://[::1]:{port}/"
    wait_until(lambda: answers(url))
    assert get(url) == (200, "text/plain; charset=utf-8", "Hi\n")
    busy = run_app(tmp_path, "::1", str(port))
    _, stderr = busy.communicate(timeout=10)
    assert busy.returncode == 1
    assert stderr == f"hello-web: cannot listen on ::1 port {port}: Address already in use\n"


def test_the_app_needs_its_greeting_file(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(HERE / "hello_web.py"), "--host", "127.0.0.1", "--port", "1",
                             "--greeting-file", str(tmp_path / "none.txt")], capture_output=True, text=True,
                            timeout=10)
    assert result.returncode == 1
    missing = tmp_path / "none.txt"
    assert result.stderr == f"hello-web: cannot read the greeting file {missing}: No such file or directory\n"


def test_descriptor_and_schemas_match_the_profile() -> None:
    request, response = default_type_schemas(HERE)
    profile = instance_profile(HERE)
    defaults = profile["slap-configuration"]
    assert request["properties"]["greeting"]["default"] == defaults["configuration.greeting"]
    assert str(request["properties"]["port"]["default"]) == defaults["configuration.port"]
    jsonschema.validate({"greeting": "Bonjour", "port": 8081}, request)
    jsonschema.validate({"url": "http://127.0.1.1:8080/"}, response)


def test_the_application_holds_no_buildout_reference() -> None:
    """software.cfg copies hello_web.py through partita:template, which substitutes references."""
    assert "${" not in (HERE / "hello_web.py").read_text()
