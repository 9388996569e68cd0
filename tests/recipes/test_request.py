"""partita:request against a real proxy: children, shared instances, waiting for published values."""
from __future__ import annotations

from pathlib import Path

import pytest

from partita.node.toolchain import Toolchain
from partita.recipes.request import sla_options
from partita.slap import request_transaction
from tests.recipes.helpers import Master
from tests.recipes.helpers import (COMPUTER_ID, check_fails, check_ok, from_master, free_port, listing,
                                   read_values, run_buildout, write_partition)

OUTPUTS = ["instance-guid", "instance-state", "instance-status"]


def request_profile(*lines: str) -> str:
    """A [child] request and a part writing its outputs to values.txt (see `read_values`)."""
    return "\n".join([
        "[buildout]", "parts = values",
        "[child]", "recipe = partita:request", "software-url = ${slap-connection:software-release-url}", *lines,
        "[values]", "recipe = partita:template", "url = values.in", "output = values.txt",
    ]) + "\n"


def prepare(directory: Path, master: Master, requester: dict, *lines: str, server_url: str | None = None,
            requested_state: str | None = None) -> None:
    write_partition(directory, request_profile(*lines), from_master(directory, server_url or master.url, requester),
                    requested_state=requested_state)
    returned = [f"connection-{name}" for line in lines if line.startswith("return = ")
                for name in line.split(" = ", 1)[1].split()]
    (directory / "values.in").write_text(listing("child", OUTPUTS + returned))


def find_instance(master: Master, root_title: str, title: str) -> dict:
    """The instance `title` of the tree `root_title`, from the computer's view."""
    for partition in master.client.get_compute_node_state(COMPUTER_ID)["compute_partition_list"]:
        instance = partition["instance"]
        if instance and (instance["title"], instance["root_instance_title"]) == (title, root_title):
            return instance
    raise AssertionError(f"no instance {title!r} in tree {root_title!r}")


def test_waits_for_the_child_then_reads_what_it_published(toolchain: Toolchain, tmp_path: Path,
                                                          master: Master) -> None:
    root = master.root()
    prepare(tmp_path, master, root, "name = db", "software-type = postgres", "config-user = app",
            "config-size = 10", f"sla-computer_guid = {COMPUTER_ID}", "return = url password")
    error = check_fails(run_buildout(toolchain, tmp_path),
                        "waiting for db: connection parameter 'url' not published yet (")
    assert error.endswith(")")
    child = find_instance(master, root["title"], "db")
    assert (child["software_type"], child["parameters"], child["state"]) == (
        "postgres", {"user": "app", "size": "10"}, "started")
    assert child["sla_parameters"] == {"computer_guid": COMPUTER_ID}
    assert not (tmp_path / "values.txt").exists()

    master.as_partition(child).set_connection_parameters(
        child["instance_guid"], {"url": "postgresql://db/", "password": "s3cret"})
    check_ok(run_buildout(toolchain, tmp_path))
    values = read_values(tmp_path / "values.txt")
    assert values["connection-url"] == "postgresql://db/"
    assert values["connection-password"] == "s3cret"
    assert (values["instance-guid"], values["instance-state"]) == (child["instance_guid"], "started")
    assert values["instance-status"]


def test_optional_never_fails(toolchain: Toolchain, tmp_path: Path, master: Master) -> None:
    root = master.root()
    prepare(tmp_path, master, root, "name = cache", "return = url password", "optional = true")
    check_ok(run_buildout(toolchain, tmp_path))
    values = read_values(tmp_path / "values.txt")
    assert (values["connection-url"], values["connection-password"]) == ("", "")
    assert values["instance-guid"] == find_instance(master, root["title"], "cache")["instance_guid"]
    # the request is in the pass's request transaction, which the node sends after a success
    transaction = tmp_path / request_transaction.file_name(root["compute_partition_id"])
    assert transaction.read_text() == "cache\n"

    unreachable = f"http://127.0.0.1:{free_port()}"
    prepare(tmp_path / "offline", master, root, "name = cache", "return = url password", "optional = true",
            server_url=unreachable)
    check_ok(run_buildout(toolchain, tmp_path / "offline"))
    assert read_values(tmp_path / "offline" / "values.txt")["instance-guid"] == ""


def test_a_stopped_requester_requests_stopped_children(toolchain: Toolchain, tmp_path: Path,
                                                       master: Master) -> None:
    root = master.root()
    prepare(tmp_path, master, root, "name = worker", requested_state="stopped")
    check_ok(run_buildout(toolchain, tmp_path))
    assert find_instance(master, root["title"], "worker")["state"] == "stopped"
    assert read_values(tmp_path / "values.txt")["instance-state"] == "stopped"


def test_a_shared_request_is_hosted_by_an_instance(toolchain: Toolchain, tmp_path: Path, master: Master) -> None:
    host = master.root("frontend")
    root = master.root()
    prepare(tmp_path, master, root, "name = route", "shared = true", "config-url = http://backend/",
            f"sla-instance_guid = {host['instance_guid']}")
    check_ok(run_buildout(toolchain, tmp_path))
    values = read_values(tmp_path / "values.txt")
    assert values["instance-status"] == f"hosted by instance {host['title']}"
    shared = master.client.get_instance(values["instance-guid"])
    assert (shared["shared"], shared["parameters"]) == (True, {"url": "http://backend/"})


@pytest.mark.parametrize(("lines", "expected"), [
    ([], "[child] needs option 'name'"),
    (["name = x", "state = destroyed"], "[child] option 'state' must be started or stopped, not 'destroyed'"),
    (["name = x", "shared = perhaps"], "[child] option 'shared' must be true or false"),
])
def test_bad_options_are_one_line_errors(toolchain: Toolchain, tmp_path: Path, master: Master,
                                         lines: list[str], expected: str) -> None:
    prepare(tmp_path, master, master.root(), *lines)
    check_fails(run_buildout(toolchain, tmp_path), expected)
    assert not (tmp_path / "values.txt").exists()


def test_master_errors_are_one_line(toolchain: Toolchain, tmp_path: Path, master: Master) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    prepare(tmp_path, master, master.root(), "name = db", server_url=unreachable)
    check_fails(run_buildout(toolchain, tmp_path),
                f"[child] cannot request 'db': cannot reach the master at {unreachable}")


def test_an_empty_sla_option_is_no_constraint() -> None:
    options = {"sla-computer_guid": "", "sla-tag.region": " rennes", "sla-": "x", "config-a": "1"}
    assert sla_options(options) == {"tag.region": " rennes"}
    assert sla_options({"sla-network_guid": "   "}) == {}
