"""partita:switch-softwaretype, through real buildout runs on fake partitions (the sub-buildout is real too)."""
from __future__ import annotations

from pathlib import Path

import pytest

from partita.node.toolchain import Toolchain
from tests.recipes.helpers import check_fails, check_ok, instance_document, run_buildout, write_partition

ROOT = """\
[buildout]
parts = switch

[slap-configuration]
recipe = partita:slapconfiguration

[switch]
recipe = partita:switch-softwaretype
default = profiles/default.cfg
replicate = ${buildout:directory}/profiles/replicate.cfg
"""
TYPE_PROFILE = """\
[buildout]
parts = {kind}

[slap-configuration]
recipe = partita:slapconfiguration

[{kind}]
recipe = partita:template
inline = {kind} ${{slap-configuration:software-type}} ${{slap-connection:partition-id}} ${{slap-configuration:configuration.size}}
output = ${{buildout:directory}}/etc/{kind}.txt
"""


def partition(tmp_path: Path, software_type: str, root: str = ROOT, **parameters: str) -> Path:
    directory = tmp_path / "slappart"
    write_partition(directory, root, instance_document(directory, software_type=software_type,
                                                        parameters={"size": "3", **parameters}))
    (directory / "profiles").mkdir(exist_ok=True)
    for kind in ("default", "replicate"):
        (directory / "profiles" / f"{kind}.cfg").write_text(TYPE_PROFILE.format(kind=kind))
    return directory


@pytest.mark.parametrize(("software_type", "kind"), [
    ("default", "default"), ("replicate", "replicate"), ("RootSoftwareInstance", "default")])
def test_runs_the_profile_of_the_software_type(toolchain: Toolchain, tmp_path: Path, software_type: str,
                                               kind: str) -> None:
    directory = partition(tmp_path, software_type)
    check_ok(run_buildout(toolchain, directory))
    assert (directory / "etc" / f"{kind}.txt").read_text() == f"{kind} {software_type} slappart0 3"
    assert (directory / ".installed-switch.cfg").is_file()


def test_a_new_type_replaces_the_parts_of_the_old_one(toolchain: Toolchain, tmp_path: Path) -> None:
    directory = partition(tmp_path, "default")
    check_ok(run_buildout(toolchain, directory))
    partition(tmp_path, "default", size="5")  # a new parameter: the sub-buildout runs again
    check_ok(run_buildout(toolchain, directory))
    assert (directory / "etc" / "default.txt").read_text() == "default default slappart0 5"
    partition(tmp_path, "replicate")
    check_ok(run_buildout(toolchain, directory))
    assert (directory / "etc" / "replicate.txt").is_file()
    assert not (directory / "etc" / "default.txt").exists()


def test_an_unknown_type_lists_the_known_ones(toolchain: Toolchain, tmp_path: Path) -> None:
    directory = partition(tmp_path, "cluster")
    error = check_fails(run_buildout(toolchain, directory), "[switch] unknown software type 'cluster'",
                        "this release knows: default, replicate")
    assert "\n" not in error
    assert not (directory / "etc").exists()


def test_a_failing_profile_fails_the_part_with_its_error(toolchain: Toolchain, tmp_path: Path) -> None:
    directory = partition(tmp_path, "default")
    (directory / "profiles" / "default.cfg").write_text(
        TYPE_PROFILE.format(kind="default").replace("configuration.size", "configuration.missing"))
    check_fails(run_buildout(toolchain, directory), "[switch] the 'default' profile failed:",
                "slap-configuration", "missing")


def test_without_slap_configuration_it_says_what_it_needs(toolchain: Toolchain, tmp_path: Path) -> None:
    root = ROOT.replace("[slap-configuration]\nrecipe = partita:slapconfiguration\n", "")
    check_fails(run_buildout(toolchain, partition(tmp_path, "default", root=root)),
                "[switch] needs a [slap-configuration] section")


def test_removing_the_switch_part_uninstalls_the_parts_of_its_type(toolchain: Toolchain, tmp_path: Path) -> None:
    """Issue 12: the part's uninstall step runs the sub-buildout with no parts."""
    directory = partition(tmp_path, "default")
    check_ok(run_buildout(toolchain, directory))
    assert (directory / "etc" / "default.txt").is_file()
    write_partition(directory, ROOT.replace("parts = switch", "parts ="),
                    instance_document(directory, software_type="default", parameters={"size": "3"}))
    result = check_ok(run_buildout(toolchain, directory))
    assert "Uninstalling default" in result.output
    assert not (directory / "etc" / "default.txt").exists()
    assert not (directory / ".installed-switch.cfg").exists() and not (directory / ".switch-switch.cfg").exists()
