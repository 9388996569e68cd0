"""partita:publish against a real proxy: what the master holds after an instance buildout."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from partita.node.toolchain import Toolchain
from tests.recipes.helpers import Master
from tests.recipes.helpers import (check_fails, check_ok, from_master, free_port, run_buildout,
                                   write_partition)


def publish_profile(*lines: str, extra: str = "") -> str:
    return "\n".join(["[buildout]", "parts = publish", "[publish]", "recipe = partita:publish", *lines]) \
        + "\n" + extra


def published(master: Master, instance: dict) -> dict:
    return master.client.get_instance(instance["instance_guid"])["connection_parameters"]


def test_publishes_every_plain_option_with_extends(toolchain: Toolchain, tmp_path: Path, master: Master) -> None:
    instance = master.root()
    profile = publish_profile(
        "url = http://${slap-configuration:ipv4-random}:8080/", "-extends = monitor",
        extra="[monitor]\nmonitor-url = http://m/\nuser = admin\n"
              "[slap-configuration]\nrecipe = partita:slapconfiguration\n",
    )
    write_partition(tmp_path, profile, from_master(tmp_path, master.url, instance))
    check_ok(run_buildout(toolchain, tmp_path))
    assert published(master, instance) == {"url": "http://127.0.1.1:8080/", "monitor-url": "http://m/",
                                           "user": "admin"}
    changed = profile.replace("user = admin", "user = root")
    write_partition(tmp_path, changed, from_master(tmp_path, master.url, instance))
    check_ok(run_buildout(toolchain, tmp_path))
    assert published(master, instance)["user"] == "root"


def test_publish_restricts_and_serialised_wraps(toolchain: Toolchain, tmp_path: Path, master: Master) -> None:
    instance = master.root()
    profile = publish_profile("url = http://a/", "password = secret", "note = x", "-publish = url password",
                              "-serialised = true")
    write_partition(tmp_path, profile, from_master(tmp_path, master.url, instance))
    check_ok(run_buildout(toolchain, tmp_path))
    found = published(master, instance)
    assert list(found) == ["_"]
    assert json.loads(found["_"]) == {"url": "http://a/", "password": "secret"}


@pytest.mark.parametrize("by", ["instance_guid", "title"])
def test_slave_reference_publishes_for_a_hosted_shared_instance(toolchain: Toolchain, tmp_path: Path,
                                                                master: Master, by: str) -> None:
    host = master.root("host")
    shared = master.as_partition(host).request_instance(
        f"route-{by}", host["software_release_uri"], shared=True,
        sla_parameters={"instance_guid": host["instance_guid"]})
    assert shared["compute_partition_id"] == host["compute_partition_id"]
    profile = publish_profile("url = https://route/", f"-slave-reference = {shared[by]}")
    write_partition(tmp_path, profile, from_master(tmp_path, master.url, host))
    check_ok(run_buildout(toolchain, tmp_path))
    assert published(master, shared) == {"url": "https://route/"}
    assert published(master, host) == {}


def test_master_errors_are_one_line(toolchain: Toolchain, tmp_path: Path, master: Master) -> None:
    instance = master.root()
    profile = publish_profile("url = x", "-slave-reference = nobody")
    write_partition(tmp_path, profile, from_master(tmp_path, master.url, instance))
    check_fails(run_buildout(toolchain, tmp_path), "[publish] cannot publish:", "hosts no shared instance 'nobody'")
    unreachable = f"http://127.0.0.1:{free_port()}"
    write_partition(tmp_path, publish_profile("url = x"), from_master(tmp_path, unreachable, instance))
    check_fails(run_buildout(toolchain, tmp_path),
                f"[publish] cannot publish: cannot reach the master at {unreachable}")


@pytest.mark.parametrize(("lines", "expected"), [
    (["url = x", "-extend = other"], "unknown option '-extend'"),
    (["url = x", "-extends = nowhere"], "-extends names a section that does not exist: [nowhere]"),
    (["url = x", "-publish = url password"], "-publish names values that are not defined: password"),
    (["url = x", "-serialised = maybe"], "option '-serialised' must be true or false"),
])
def test_bad_options_are_one_line_errors(toolchain: Toolchain, tmp_path: Path, master: Master,
                                         lines: list[str], expected: str) -> None:
    instance = master.root()
    write_partition(tmp_path, publish_profile(*lines), from_master(tmp_path, master.url, instance))
    check_fails(run_buildout(toolchain, tmp_path), "[publish]", expected)
    assert published(master, instance) == {}
