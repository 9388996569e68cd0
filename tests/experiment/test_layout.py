"""`experiment.layout`: each host's directory, ranges and node settings, as pure functions."""
from __future__ import annotations

import pytest

from partita.experiment import layout
from partita.experiment.errors import ExperimentError


def test_placeholders_name_the_host_and_its_number() -> None:
    assert layout.expand("/srv/{host}/n{index}", "h2", 2) == "/srv/h2/n2"
    with pytest.raises(ExperimentError, match="unknown placeholder {user}"):
        layout.expand("/srv/{user}", "h2", 2)


@pytest.mark.parametrize("template", ["relative/{host}", "/", "/tmp/../etc", "/srv/{host}/.."])
def test_a_remote_directory_is_absolute_below_root(template: str) -> None:
    with pytest.raises(ExperimentError, match="remote directory"):
        layout.remote_dir(template, "h1", 1)


def test_each_host_takes_its_own_ranges() -> None:
    assert layout.ipv4_range("10.42.0.0/16", 2) == "10.42.2.0/24"
    assert layout.ipv4_range("10.42.0.0/16", 3) == "10.42.3.0/24"
    assert layout.ipv6_range("2001:db8:0:7::a:2/64", 2) == "2001:db8:0:7:0:2::/96"
    assert layout.ipv6_range("2001:db8:0:7::a:2/64", 3) != layout.ipv6_range("2001:db8:0:7::a:3/64", 2)
    with pytest.raises(ExperimentError, match="too few"):
        layout.ipv4_range("10.42.0.0/23", 2)


def test_the_interface_prefix_is_its_first_global_one() -> None:
    assert layout.pick_ipv6(["fe80::1/64", "2001:db8::5/64"]) == "2001:db8::5/64"
    assert layout.pick_ipv6(["2001:db8::5/128"]) is None


def test_node_settings_name_a_key_and_optionally_its_section() -> None:
    assert layout.parse_node_setting("cache_directory=/x/{host}") == layout.NodeSetting("slapos", "cache_directory",
                                                                                        "/x/{host}")
    assert layout.parse_node_setting("slapformat.user_base_name=e{index}u").section == "slapformat"
    for bad in ("novalue", "=x", "a.b.c=1", "Key=1"):
        with pytest.raises(ExperimentError, match="--node-setting"):
            layout.parse_node_setting(bad)
