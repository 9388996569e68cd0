"""`node.claims`: who holds which address on this machine (issue 13). The conflict rules over plain
data, then the registry and the records on disk (as root: the registry must be root's)."""
from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

import pytest

from partita.node import claims
from partita.node.claims import Claim, Record
from partita.node.errors import SetupError

NS = 4026531840
ROOT_A, ROOT_B = "/srv/a", "/srv/b"


def _claim(address: str, root: str = ROOT_A, option: str = "ipv4_local_network",
           label: str = "ipv4_local_network 127.0.1.0/24") -> Claim:
    return Claim(address, root, NS, option, label)


def test_another_nodes_live_claim_is_a_conflict_naming_it() -> None:
    held = {"127.0.1.1": _claim("127.0.1.1")}
    wanted = [_claim("127.0.1.1", ROOT_B), _claim("127.0.1.2", ROOT_B)]
    assert claims.find_conflict(wanted, held, ["127.0.1.1"], ["127.0.1.1"], "lo") == (
        "127.0.1.1 is already used by the node of /srv/a (ipv4_local_network 127.0.1.0/24); "
        "give this node another ipv4_local_network")


def test_own_and_stale_claims_are_no_conflict() -> None:
    held = {"127.0.1.1": _claim("127.0.1.1"), "127.0.1.2": _claim("127.0.1.2")}
    assert claims.find_conflict([_claim("127.0.1.1")], held, ["127.0.1.1"], ["127.0.1.1"], "lo") is None
    stale = [_claim("127.0.1.2", ROOT_B)]  # its holder is gone; the address it left on lo is taken over
    assert claims.find_conflict(stale, held, ["127.0.1.1"], ["127.0.1.2"], "lo") is None


def test_an_unclaimed_address_on_the_interface_is_a_conflict() -> None:
    wanted = [_claim("127.0.1.1"), _claim("fd00::1", option="ipv6_local_network", label="-")]
    assert claims.find_conflict(wanted, {}, [], ["fd00:0::1"], "eth0") == (
        "fd00::1 is already on eth0 and no Partita node claims it; remove it from eth0 or give this node "
        "another ipv6_local_network")
    assert claims.find_conflict(wanted, {}, [], [], "eth0") is None


def test_claims_and_records_round_trip_and_garbage_is_none() -> None:
    claim = _claim("fd00::1", option="ipv6_local_network", label="ipv6_local_network fd00::/64")
    assert claims.parse_claim(claims.render_claim(claim)) == claim
    assert claim.name == f"{NS}-fd00::1"
    record = Record(NS, "lo", ("127.0.1.1", "fd00::1"), "fd00::/64", ("fd00::9",), {"slappart0": "fd00:0:0:0:1::/80"})
    assert record.partition_range("slappart0") == ipaddress.IPv6Network("fd00:0:0:0:1::/80")
    assert record.partition_range("slappart1") is None
    assert claims.parse_record(claims.render_record(record)) == record
    for text in (None, "", "[]", '{"address": "x"}', '{"address": "nope", "instance_root": "/", "netns": 1, '
                 '"option": "o", "label": "l"}'):
        assert claims.parse_claim(text) is None
    assert claims.parse_record("{}") is None and claims.parse_record("[1]") is None


def test_a_claim_lives_while_its_holders_record_lists_the_address(tmp_path: Path) -> None:
    claim = _claim("127.0.1.1", str(tmp_path))
    assert not claims.holder_is_live(claim)  # no record
    claims.write_record(tmp_path, Record(NS, "lo", ("127.0.1.1",)))
    assert claims.holder_is_live(claim)
    assert not claims.holder_is_live(Claim("127.0.1.2", str(tmp_path), NS, "o", "l"))  # dropped since
    assert not claims.holder_is_live(Claim("127.0.1.1", str(tmp_path), NS + 1, "o", "l"))  # another namespace
    assert not claims.holder_is_live(_claim("127.0.1.1", str(tmp_path / "gone")))


@pytest.mark.root
def test_the_registry_is_roots_alone_and_never_followed_through_a_link(tmp_path: Path) -> None:
    directory = tmp_path / "claims"
    registry = claims.Registry(NS, directory)
    with registry.locked() as view:
        view.take([_claim("127.0.1.1"), _claim("127.0.1.2")])
        view.release([_claim("127.0.1.2")])
        assert view.claims() == {"127.0.1.1": _claim("127.0.1.1")}
        os.symlink("/etc/passwd", directory / f"{NS}-127.0.1.9")  # a planted link is not read
        (directory / f"{NS}-127.0.1.8").write_text("garbage")
        assert list(view.claims()) == ["127.0.1.1"]
    assert (directory.stat().st_mode & 0o777, directory.stat().st_uid) == (0o700, 0)
    with claims.Registry(NS + 1, directory).locked() as other_namespace:
        assert other_namespace.claims() == {}
    tmp_path.chmod(0o755)
    peek = subprocess.run(["runuser", "-u", "nobody", "--", "ls", str(directory)], capture_output=True, text=True,
                          timeout=30)
    assert peek.returncode != 0 and "Permission denied" in peek.stderr
    directory.chmod(0o755)
    with pytest.raises(SetupError, match=r"refusing the address claims directory .* mode 0700 .*mode 0755"):
        with registry.locked():
            pass
    directory.chmod(0o700)
    moved = tmp_path / "elsewhere"
    directory.rename(moved)
    directory.symlink_to(moved)
    with pytest.raises(SetupError, match="cannot use the address claims"):
        with registry.locked():
            pass


def test_a_node_without_a_record_adopts_its_partitions_addresses() -> None:
    """A node formatted before claims existed: its addresses are on lo, unclaimed (issue 13)."""
    wanted = [_claim("127.0.1.1"), _claim("127.0.1.2")]
    assert claims.find_conflict(wanted, {}, [], ["127.0.1.1", "127.0.1.2"], "lo", adoptable=["127.0.1.1"]) == (
        "127.0.1.2 is already on lo and no Partita node claims it; remove it from lo or give this node "
        "another ipv4_local_network")
    assert claims.find_conflict(wanted, {}, [], ["127.0.1.1"], "lo", adoptable=["127.0.1.1"]) is None
