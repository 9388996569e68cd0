"""`slap.format_settings`: the [slapformat] section `slapos configure local` and `slapos node
register` write (pure)."""
from __future__ import annotations

import configparser

import pytest

from partita.slap.errors import ValidationError
from partita.slap.format_settings import FormatSettings, format_section


def _section(settings: FormatSettings) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(format_section(settings))
    return dict(parser["slapformat"])


def test_ipv6_local_network_is_written_only_when_given() -> None:
    assert "ipv6_local_network" not in _section(FormatSettings())  # the node then picks it (issue 13)
    written = _section(FormatSettings(partitions=3, ipv4_network="127.0.42.0/24", ipv6_network="fd70:1::/64"))
    assert (written["ipv4_local_network"], written["ipv6_local_network"]) == ("127.0.42.0/24", "fd70:1::/64")
    assert written["partition_amount"] == "3" and written["alter_network"] == "True"


@pytest.mark.parametrize(("ipv6", "message"), [
    ("fd70::/zz", "bad IPv6 network 'fd70::/zz'"),
    ("127.0.9.0/24", "127.0.9.0/24 has no room for 10 partitions"),
    ("fd70::/126", "fd70::/126 has no room for 10 partitions"),
])
def test_a_bad_ipv6_network_is_refused(ipv6: str, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        format_section(FormatSettings(ipv6_network=ipv6))
    assert str(refused.value) == message
