"""`node.network`: the address plan (pure) and real addresses on ``lo`` (root)."""
from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from partita.node import network
from partita.node.errors import SetupError
from partita.slap.errors import ConfigurationError

TEST_IPV4 = "127.0.94.7"
TEST_IPV6 = "fd70:6172:7469:94::7"


@dataclass(frozen=True)
class Networks:
    ipv4_local_network: str = "127.0.1.0/24"
    ipv6_local_network: str = "fd70:6172:7469:7461::/64"


def test_partition_addresses_start_after_the_network_address() -> None:
    assert network.partition_addresses(Networks(), 0) == ("127.0.1.1", "fd70:6172:7469:7461::1")
    assert network.partition_addresses(Networks(), 9) == ("127.0.1.10", "fd70:6172:7469:7461::a")


def test_partition_addresses_use_the_whole_network_but_its_broadcast() -> None:
    assert network.partition_addresses(Networks(), 253)[0] == "127.0.1.254"
    with pytest.raises(ConfigurationError, match="127.0.1.0/24 has room for 254 partitions, not 255"):
        network.partition_addresses(Networks(), 254)


def test_a_network_given_with_host_bits_counts_from_its_network_address() -> None:
    assert network.partition_addresses(Networks("10.1.2.77/29", "fd00::99/120"), 0) == ("10.1.2.73", "fd00::1")


def test_too_small_networks_are_configuration_errors() -> None:
    assert network.capacity("127.0.93.0/30") == 2
    assert network.capacity("127.0.93.0/31") == 0
    assert network.capacity("fd00::/126") == 3
    network.check_room(Networks("127.0.93.0/30"), 2)
    network.check_room(Networks("127.0.93.0/31"), 0)
    with pytest.raises(ConfigurationError, match="room for 2 partitions, not 3"):
        network.check_room(Networks("127.0.93.0/30"), 3)
    with pytest.raises(ConfigurationError, match="ipv6_local_network fd00::/126 has room for 3"):
        network.check_room(Networks(ipv6_local_network="fd00::/126"), 4)


def test_prefix_lengths_and_netmasks() -> None:
    assert network.address_prefixlen("lo", "127.0.1.0/24") == 32
    assert network.address_prefixlen("lo", "fd00::/64") == 128
    assert network.address_prefixlen("eth0", "10.0.0.0/24") == 24
    assert network.netmask("127.0.1.1", 32) == "255.255.255.255"
    assert network.netmask("fd00::1", 128) == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    assert network.netmask("fd00::1", 64) == "ffff:ffff:ffff:ffff::"


@pytest.mark.parametrize("name", ["", "../etc", "..", "a/b", "x" * 16, "eth 0"])
def test_interface_names_with_path_tricks_are_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="interface_name"):
        network.check_interface_name(name)


def test_parse_ip_json_keeps_inet_and_inet6_addresses() -> None:
    text = json.dumps([{"ifname": "lo", "addr_info": [
        {"family": "inet", "local": "127.0.0.1", "prefixlen": 8},
        {"family": "inet6", "local": "::1", "prefixlen": 128},
        {"family": "link", "local": "00:00"},
    ]}])
    found = network.parse_ip_json(text)
    assert found == [network.InterfaceAddress("127.0.0.1", 8, 4), network.InterfaceAddress("::1", 128, 6)]
    assert network.has_address(found, "0:0::1") and not network.has_address(found, "127.0.0.2")
    with pytest.raises(SetupError, match="not JSON"):
        network.parse_ip_json("<html>")


def _fake_proc(root: Path, disabled: str | None, if_inet6: bool) -> Path:
    if if_inet6:
        (root / "net").mkdir(parents=True)
        (root / "net" / "if_inet6").write_text("")
    if disabled is not None:
        conf = root / "sys" / "net" / "ipv6" / "conf" / "lo"
        conf.mkdir(parents=True)
        (conf / "disable_ipv6").write_text(disabled + "\n")
    return root


@pytest.mark.parametrize(("disabled", "if_inet6", "expected"), [
    ("0", True, True), ("1", True, False), (None, True, False), ("0", False, False),
])
def test_ipv6_enabled_reads_proc(tmp_path: Path, disabled: str | None, if_inet6: bool, expected: bool) -> None:
    assert network.ipv6_enabled("lo", proc=_fake_proc(tmp_path, disabled, if_inet6)) is expected


def test_ipv6_enabled_on_this_machines_loopback() -> None:
    disabled = Path("/proc/sys/net/ipv6/conf/lo/disable_ipv6")
    expected = Path("/proc/net/if_inet6").exists() and disabled.exists() and disabled.read_text().strip() == "0"
    assert network.ipv6_enabled("lo") is expected


def test_interface_addresses_of_loopback_and_of_a_missing_interface() -> None:
    assert network.has_address(network.interface_addresses("lo"), "127.0.0.1")
    with pytest.raises(SetupError, match=r"cannot read the addresses of ptnope0: .*does not exist") as failure:
        network.interface_addresses("ptnope0")
    assert "\n" not in str(failure.value)


def _ip_addresses() -> list[str]:
    output = subprocess.run(["ip", "-j", "addr", "show", "dev", "lo"], capture_output=True, text=True,
                            check=True, timeout=30).stdout
    return [info["local"] for link in json.loads(output) for info in link["addr_info"]]


@pytest.fixture
def test_addresses() -> Iterator[None]:
    yield
    for address, prefix in ((TEST_IPV4, 32), (TEST_IPV6, 128)):
        subprocess.run(["ip", "addr", "del", f"{address}/{prefix}", "dev", "lo"], capture_output=True, timeout=30)


@pytest.mark.root
def test_ensure_and_remove_address_are_idempotent(test_addresses: None) -> None:
    assert network.ensure_address("lo", TEST_IPV4, 32) is True
    assert network.ensure_address("lo", TEST_IPV4, 32) is False
    assert TEST_IPV4 in _ip_addresses()
    if network.ipv6_enabled("lo"):
        assert network.ensure_address("lo", TEST_IPV6, 128) is True
        assert network.ensure_address("lo", TEST_IPV6, 128) is False
        assert TEST_IPV6 in _ip_addresses()
        assert network.remove_address("lo", TEST_IPV6, 128) is True
    assert network.remove_address("lo", TEST_IPV4, 32) is True
    assert network.remove_address("lo", TEST_IPV4, 32) is False
    assert TEST_IPV4 not in _ip_addresses() and TEST_IPV6 not in _ip_addresses()


@pytest.mark.root
def test_adding_to_a_missing_interface_is_one_line() -> None:
    with pytest.raises(SetupError, match="ptnope0") as failure:
        network.ensure_address("ptnope0", TEST_IPV4, 32)
    assert "\n" not in str(failure.value)


# -- IPv6 from the interface's global prefix (issue 13) ----------------------------------------

def _v6(address: str, prefixlen: int = 64, scope: str = "global", usable: bool = True) -> network.InterfaceAddress:
    return network.InterfaceAddress(address, prefixlen, 6, scope, usable)


ETH0 = [network.InterfaceAddress("192.0.2.5", 24, 4), _v6("fe80::1", scope="link"),
        _v6("2001:db8:7::1"), _v6("2001:db8:7::3")]


def test_a_configured_network_wins_over_the_interface() -> None:
    chosen = network.choose_ipv6("fd00:1::/64", "fd70::/64", "eth0", ETH0, set())
    assert chosen == network.IPv6Network("fd00:1::/64", "ipv6_local_network")


def test_loopback_or_no_global_address_keeps_the_default() -> None:
    on_lo = [_v6("fd70:6172:7469:93::1", 128), _v6("2001:db8::1")]
    assert network.choose_ipv6(None, "fd70::/64", "lo", on_lo, set()).source == "the default"
    only_local = [_v6("fe80::1", scope="link"), _v6("2001:db8::9", 128), _v6("2001:db8:1::1", usable=False)]
    assert network.choose_ipv6(None, "fd70::/64", "eth0", only_local, set()) == network.IPv6Network("fd70::/64", "the default")


def test_a_shared_prefix_gives_this_machine_a_block_of_its_own() -> None:
    chosen = network.choose_ipv6(None, "fd70::/64", "eth0", ETH0, set())
    assert chosen == network.IPv6Network("2001:db8:7::/64", "eth0 (2001:db8:7::1/64)",
                                         ("2001:db8:7::1", "2001:db8:7::3"), "2001:db8:7::1:0/112", "2001:db8:7::1")
    found = [network.partition_addresses(Networks(), i, chosen)[1] for i in range(3)]
    assert found == ["2001:db8:7::1:1", "2001:db8:7::1:2", "2001:db8:7::1:3"]
    other_machine = network.choose_ipv6(None, "fd70::/64", "eth0", [_v6("2001:db8:7::5054:ff:fe12:3456")], set())
    assert other_machine.block == "2001:db8:7:0:ff:fe12:3456:0/112"  # a SLAAC address: its MAC's block


def test_addresses_of_the_interface_in_the_block_are_skipped_and_stay_skipped() -> None:
    eth0 = [*ETH0, _v6("2001:db8:7::1:2")]
    chosen = network.choose_ipv6(None, "fd70::/64", "eth0", eth0, set())
    assert [network.partition_addresses(Networks(), i, chosen)[1] for i in range(2)] == [
        "2001:db8:7::1:1", "2001:db8:7::1:3"]
    mine = {"2001:db8:7::1:1", "2001:db8:7::1:3"}
    formatted = [_v6("2001:db8:7::1:1"), *ETH0, _v6("2001:db8:7::1:3")]  # ::1:2 gone; the node's own first
    again = network.choose_ipv6(None, "fd70::/64", "eth0", formatted, mine, skipped_before=chosen.skip + ("2001:db8:99::1",))
    assert again.network == "2001:db8:7::/64" and again.block == chosen.block  # the node's own are never the base
    assert again.skip == ("2001:db8:7::1", "2001:db8:7::3", "2001:db8:7::1:2")  # another prefix's is forgotten
    assert network.partition_addresses(Networks(), 1, again)[1] == "2001:db8:7::1:3"


def test_a_small_interface_prefix_is_a_configuration_error_naming_it() -> None:
    chosen = network.choose_ipv6(None, "fd70::/64", "eth0", [_v6("2001:db8::1", 126)], set())
    assert network.partition_addresses(Networks(), 1, chosen)[1] == "2001:db8::3"
    with pytest.raises(ConfigurationError, match=r"^the IPv6 prefix 2001:db8::/126 of eth0 \(2001:db8::1/126\) "
                                                 r"has room for 2 partitions, not 3$"):
        network.check_room(Networks(), 3, chosen)


def test_parse_ip_json_reads_scope_and_unusable_flags() -> None:
    text = json.dumps([{"addr_info": [
        {"family": "inet6", "local": "2001:db8::5", "prefixlen": 64, "scope": "global", "temporary": True},
        {"family": "inet6", "local": "2001:db8::6", "prefixlen": 64, "scope": "global", "deprecated": True},
        {"family": "inet6", "local": "2001:db8::7", "prefixlen": 64, "scope": "global", "dadfailed": True},
        {"family": "inet6", "local": "2001:db8::8", "prefixlen": 64, "scope": "global", "tentative": True},
        {"family": "inet6", "local": "fe80::8", "prefixlen": 64, "scope": "link"},
    ]}])
    found = network.parse_ip_json(text)
    assert [(a.address, a.scope, a.usable) for a in found] == [
        ("2001:db8::5", "global", False), ("2001:db8::6", "global", False), ("2001:db8::7", "global", False),
        ("2001:db8::8", "global", True), ("fe80::8", "link", True)]
    assert network.interface_prefix(found, set()) == network.IPv6Network(
        "2001:db8::/64", "2001:db8::8/64", ("2001:db8::5", "2001:db8::6", "2001:db8::7", "2001:db8::8"),
        base="2001:db8::8")


def test_the_base_address_is_kept_while_there_else_the_lowest() -> None:
    listed = [_v6("2001:db8:7::9"), _v6("2001:db8:7::4"), _v6("2001:db8:8::1", 48)]  # newest first, as ip lists
    assert network.interface_prefix(listed, set()).base == "2001:db8:8::1"  # the shortest prefix first
    same_length = listed[:2]
    assert network.interface_prefix(same_length, set()).base == "2001:db8:7::4"
    assert network.interface_prefix(same_length, set(), previous="2001:db8:7::9").base == "2001:db8:7::9"
    assert network.interface_prefix(same_length[1:], set(), previous="2001:db8:7::9").base == "2001:db8:7::4"


def test_partition_ranges_are_sub_prefixes_after_the_first() -> None:
    ula = network.IPv6Network("fd70:6172:7469:7461::/64", "the default")
    assert network.partition_range(ula, 0, 16) == "fd70:6172:7469:7461:1::/80"
    assert network.partition_range(ula, 9, 16) == "fd70:6172:7469:7461:a::/80"
    assert network.partition_range(ula, 0, 8) == "fd70:6172:7469:7461:100::/72"
    with pytest.raises(ConfigurationError, match=r"ipv6_local_network fd70:6172:7469:7461::/64 has room for "
                                                 r"3 /66 ranges \(ipv6_prefixshift 2\), not 4"):
        network.partition_range(ula, 3, 2)
    with pytest.raises(ConfigurationError, match=r"ipv6_prefixshift 64 does not fit .*/128 \(at most /126\)"):
        network.partition_range(ula, 0, 64)


def test_ranges_skip_the_sub_prefix_of_the_machines_block() -> None:
    chosen = network.choose_ipv6(None, "fd70::/64", "eth0", [_v6("2001:db8:7::2:0:1")], set())
    assert chosen.block == "2001:db8:7:0:2:0:1:0/112"  # in sub-prefix 2 of the /80s
    assert [network.partition_range(chosen, i, 16) for i in range(2)] == ["2001:db8:7:0:1::/80", "2001:db8:7:0:3::/80"]


def test_a_range_holding_an_address_of_the_interface_is_skipped() -> None:
    eth0 = network.IPv6Network("2001:db8:7::/64", "eth0 (2001:db8:7::1/64)",
                               ("2001:db8:7::1", "2001:db8:7:0:2:5054:ff:fe12"))  # in sub-prefix 0, then 2
    assert [network.partition_range(eth0, i, 16) for i in range(3)] == [
        "2001:db8:7:0:1::/80", "2001:db8:7:0:3::/80", "2001:db8:7:0:4::/80"]
