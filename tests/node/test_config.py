"""`node.config`: the [slapformat] address options (issue 13)."""
from __future__ import annotations

import configparser

import pytest

from partita.node.config import DEFAULT_IPV6_NETWORK, node_config
from partita.slap.errors import ConfigurationError


def _config(**slapformat: str):  # type: ignore[no-untyped-def]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict({"slapos": {"computer_id": "C", "master_url": "http://127.0.0.1:1"}, "slapformat": slapformat})
    return node_config(parser)


def test_ipv6_options_default_to_the_interface_and_no_ranges() -> None:
    config = _config()
    assert (config.ipv6_local_network, config.ipv6_configured) == (DEFAULT_IPV6_NETWORK, False)
    assert (config.partition_has_ipv6_range, config.ipv6_prefixshift) == (False, 16)
    given = _config(ipv6_local_network="2001:db8::/64", partition_has_ipv6_range="true", ipv6_prefixshift="8")
    assert (given.ipv6_local_network, given.ipv6_configured) == ("2001:db8::/64", True)
    assert (given.partition_has_ipv6_range, given.ipv6_prefixshift) == (True, 8)
    assert _config(ipv6_local_network="").ipv6_configured is False


@pytest.mark.parametrize(("options", "message"), [
    ({"ipv6_prefixshift": "0"}, "[slapformat] ipv6_prefixshift must be between 1 and 64, not 0"),
    ({"ipv6_prefixshift": "65"}, "[slapformat] ipv6_prefixshift must be between 1 and 64, not 65"),
    ({"partition_has_ipv6_range": "maybe"}, "[slapformat] partition_has_ipv6_range must be true or false, not 'maybe'"),
    ({"ipv6_local_network": "127.0.0.0/8"}, "[slapformat] ipv6_local_network must be an IPv6 network, not '127.0.0.0/8'"),
])
def test_bad_address_options_are_one_line(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        _config(**options)
    assert str(refused.value) == message
