"""partita:slapconfiguration, through real buildout runs on fake partitions."""
from __future__ import annotations

import json
from pathlib import Path

from partita.node.toolchain import Toolchain
from partita.slap.wire.instance import SharedInstance
from partita.slap.wire.instance_file import InstanceFile
from tests.recipes.helpers import (check_fails, check_ok, instance_document, listing, read_values,
                                   run_buildout, write_partition)

OUTPUTS = [
    "configuration", "configuration.greeting", "configuration.port", "configuration.nested",
    "configuration.color", "software-type", "slap-software-type", "instance-title", "root-instance-title",
    "instance-guid", "instance-state", "computer-id", "slap-computer-id", "partition-id",
    "slap-computer-partition-id", "software-release-url", "slap-software-release-url", "ipv4", "ipv6",
    "ipv4-random", "ipv6-random", "slave-instance-list", "timestamp", "partition-path", "software-path",
]


def profile(*lines: str, extra: str = "") -> str:
    """A profile with a [slap-configuration] section, a part listing its values, and `extra`
    (more sections, each of them a part)."""
    extra_parts = " ".join(line[1:-1] for line in extra.splitlines() if line.startswith("["))
    return extra + "\n".join([
        "[buildout]", f"parts = values {extra_parts}",
        "[slap-configuration]", "recipe = partita:slapconfiguration", *lines,
        "[values]", "recipe = partita:template", "url = values.in", "output = values.txt",
    ]) + "\n"


def run(toolchain: Toolchain, directory: Path, document: InstanceFile, *lines: str,
        names: list[str] = OUTPUTS, extra: str = "") -> dict[str, str]:
    write_partition(directory, profile(*lines, extra=extra), document)
    (directory / "values.in").write_text(listing("slap-configuration", names))
    check_ok(run_buildout(toolchain, directory))
    return read_values(directory / "values.txt")


def test_exposes_the_instance_document_as_strings(toolchain: Toolchain, tmp_path: Path) -> None:
    shared = SharedInstance(instance_guid="SOFTINST-9", title="front", software_type="route",
                            parameters={"url": "http://a/"}, connection_parameters={})
    document = instance_document(
        tmp_path, parameters={"greeting": "Bonjour", "port": 8081, "nested": {"a": [1, True]}, "bad key": "x"},
        ip_list=(("lo", "127.0.1.9"), ("lo", "127.0.1.2"), ("lo", "fd70::2"), ("lo", "fd70::1")),
        shared_instance_list=(shared,), title="web", root_instance_title="tree", instance_guid="SOFTINST-7",
        state="stopped", software_type="custom", partition_id="slappart3",
    )
    values = run(toolchain, tmp_path, document, "configuration.color = blue")
    assert json.loads(values["configuration"]) == document.parameters
    assert values["configuration.greeting"] == "Bonjour"
    assert values["configuration.port"] == "8081"
    assert json.loads(values["configuration.nested"]) == {"a": [1, True]}
    assert values["configuration.color"] == "blue"  # a default no parameter replaces
    assert values["software-type"] == values["slap-software-type"] == "custom"
    assert (values["instance-title"], values["root-instance-title"]) == ("web", "tree")
    assert (values["instance-guid"], values["instance-state"]) == ("SOFTINST-7", "stopped")
    assert values["computer-id"] == values["slap-computer-id"] == "local_computer"
    assert values["partition-id"] == values["slap-computer-partition-id"] == "slappart3"
    assert values["software-release-url"] == values["slap-software-release-url"] == document.software_release_uri
    assert (values["ipv4"], values["ipv4-random"]) == ("127.0.1.2 127.0.1.9", "127.0.1.2")
    assert (values["ipv6"], values["ipv6-random"]) == ("fd70::1 fd70::2", "fd70::1")
    assert json.loads(values["slave-instance-list"]) == [
        {"slave_title": "front", "slave_reference": "SOFTINST-9", "slap_software_type": "route", "url": "http://a/"}]
    assert values["timestamp"] == "1732230000.5"
    assert values["partition-path"] == str(tmp_path)
    assert values["software-path"] == "/opt/slapgrid/test"


def test_defaults_are_kept_unless_the_parameter_is_set(toolchain: Toolchain, tmp_path: Path) -> None:
    document = instance_document(tmp_path, parameters={"greeting": "Bonjour"})
    values = run(toolchain, tmp_path, document, "configuration.greeting = Hello", "configuration.port = 8080",
                 names=["configuration.greeting", "configuration.port", "configuration"])
    assert values == {"configuration.greeting": "Bonjour", "configuration.port": "8080",
                      "configuration": '{"greeting": "Bonjour"}'}


def test_values_holding_references_are_written_verbatim(toolchain: Toolchain, tmp_path: Path) -> None:
    """zc.buildout substitutes a recipe's value again when another option references it; the
    template recipe inserts it once, so a parameter holding ${ is only text."""
    greeting = "Price: ${nope:x} $${y} $$ %(z)s"
    document = instance_document(tmp_path, parameters={"greeting": greeting})
    values = run(toolchain, tmp_path, document, names=["configuration.greeting"],
                 extra="[inline]\nrecipe = partita:template\noutput = inline.txt\n"
                       "inline = ${slap-configuration:configuration.greeting}\n")
    assert values["configuration.greeting"] == greeting
    assert (tmp_path / "inline.txt").read_text() == greeting


def test_no_addresses_give_empty_values(toolchain: Toolchain, tmp_path: Path) -> None:
    document = instance_document(tmp_path, ip_list=())
    values = run(toolchain, tmp_path, document, names=["ipv4", "ipv6", "ipv4-random", "ipv6-random"])
    assert set(values.values()) == {""}


def test_serialised_decodes_the_json_parameter(toolchain: Toolchain, tmp_path: Path) -> None:
    inner = {"greeting": "Hi", "port": 9000}
    document = instance_document(tmp_path, parameters={"_": json.dumps(inner)})
    values = run(toolchain, tmp_path, document, "serialised = true",
                 names=["configuration", "configuration.greeting", "configuration.port"])
    assert json.loads(values["configuration"]) == inner
    assert (values["configuration.greeting"], values["configuration.port"]) == ("Hi", "9000")


def test_serialised_refuses_a_parameter_that_is_not_json(toolchain: Toolchain, tmp_path: Path) -> None:
    write_partition(tmp_path, profile("serialised = true"), instance_document(tmp_path, parameters={"_": "{no"}))
    (tmp_path / "values.in").write_text(listing("slap-configuration", ["configuration"]))
    check_fails(run_buildout(toolchain, tmp_path), "[slap-configuration]", "'_' is not valid JSON")
    assert not (tmp_path / "values.txt").exists()


def test_a_missing_instance_file_is_one_clear_error(toolchain: Toolchain, tmp_path: Path) -> None:
    write_partition(tmp_path, profile(), instance_document(tmp_path))
    (tmp_path / "values.in").write_text(listing("slap-configuration", ["ipv4"]))
    (tmp_path / ".slapgrid" / "instance.json").unlink()
    error = check_fails(run_buildout(toolchain, tmp_path), "[slap-configuration]", "instance-file",
                        "Partita node")
    assert "\n" not in error
    assert not (tmp_path / "values.txt").exists()


def test_without_slap_connection_it_says_what_it_needs(toolchain: Toolchain, tmp_path: Path) -> None:
    (tmp_path / "values.in").write_text(listing("slap-configuration", ["ipv4"]))
    (tmp_path / "buildout.cfg").write_text(profile() + "[buildout]\nnewest = false\n")
    check_fails(run_buildout(toolchain, tmp_path), "[slap-connection] instance-file", "Partita node")


def test_a_malformed_instance_file_is_one_clear_error(toolchain: Toolchain, tmp_path: Path) -> None:
    write_partition(tmp_path, profile(), instance_document(tmp_path))
    (tmp_path / "values.in").write_text(listing("slap-configuration", ["ipv4"]))
    instance_file = tmp_path / ".slapgrid" / "instance.json"
    instance_file.write_text(json.dumps({**json.loads(instance_file.read_text()), "timestamp": "later"}))
    error = check_fails(run_buildout(toolchain, tmp_path), "[slap-configuration]",
                        "field 'timestamp' must be a number, not a string")
    assert "\n" not in error


def test_a_value_holding_references_survives_a_reinstall_of_slap_configuration(
        toolchain: Toolchain, tmp_path: Path) -> None:
    """Regression (issue 10, a user's parameter against the node): with a greeting holding
    ``${name}`` deployed, stopping the instance reinstalled [slap-configuration]; buildout then
    read the template part's recorded options back and parsed the greeting as a reference, the
    buildout failed and left an empty .installed.cfg, and every later pass failed."""
    extra = ("[inline]\nrecipe = partita:template\noutput = inline.txt\n"
             "inline = ${slap-configuration:configuration.greeting}\n")
    greeting = "Salut ${name} $${x} $$ $y"
    for state in ("started", "stopped", "started"):
        run(toolchain, tmp_path, instance_document(tmp_path, parameters={"greeting": greeting}, state=state),
            names=["configuration.greeting"], extra=extra)
        assert (tmp_path / "inline.txt").read_text() == greeting
    again = run_buildout(toolchain, tmp_path)
    check_ok(again)
    assert "Installing inline" not in again.output  # recorded as it reads back: no reinstall each pass


RANGE_OUTPUTS = ["ipv6-range", "ipv6-range-network", "ipv6-range-addr", "ipv6-range-prefixlen", "ipv6-range-netmask"]


def test_the_partitions_ipv6_range_under_its_own_and_slapos_cookbooks_names(toolchain: Toolchain, tmp_path: Path) -> None:
    document = instance_document(tmp_path, ipv6_range="2001:db8::1:0/112")
    values = run(toolchain, tmp_path, document, names=RANGE_OUTPUTS)
    assert values == {"ipv6-range": "2001:db8::1:0/112", "ipv6-range-network": "2001:db8::1:0/112",
                      "ipv6-range-addr": "2001:db8::1:0", "ipv6-range-prefixlen": "112",
                      "ipv6-range-netmask": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:0"}


def test_a_partition_without_an_ipv6_range_has_none(toolchain: Toolchain, tmp_path: Path) -> None:
    values = run(toolchain, tmp_path, instance_document(tmp_path), names=RANGE_OUTPUTS)
    assert set(values.values()) == {""}
