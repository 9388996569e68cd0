"""`slapos node format`: the plan (pure), then the real command against a real proxy, as the
unprivileged user ``slapnode`` (single-user mode) and as root (real users and addresses on lo)."""
from __future__ import annotations

import grp
import json
import os
import pwd
import random
import shutil
import stat
import string
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from partita.node import claims, format as fmt
from partita.node.cli.format import summary_lines
from partita.node.config import NodeConfig
from partita.slap.wire.node_state import ComputePartition
from partita.node.users import PartitionUser
from partita.slap.client import MasterClient
from partita.slap.errors import ConfigurationError
from tests.support.server import SLAPOS, ServerProcess, free_port, start
from tests.support.node import as_single_user, single_user

COMPUTER = "local_computer"
SR = "/some/sr.cfg"
NODE_USER = single_user()
ROOT_IPV4 = "127.0.93.0/24"
ROOT_IPV6 = "fd70:6172:7469:93::/64"


# -- pure --------------------------------------------------------------------------------------

def test_partition_index_reads_only_our_names() -> None:
    assert fmt.partition_index("slappart", "slappart0") == 0
    assert fmt.partition_index("slappart", "slappart12") == 12
    for other in ("slappart", "slappart01", "slappart-1", "slappartx", "etc", "slappart1.bak"):
        assert fmt.partition_index("slappart", other) is None


def _on_master(*busy: int, free: tuple[int, ...] = ()) -> list[ComputePartition]:
    rows = [ComputePartition(f"slappart{i}", "busy", (), None) for i in busy]
    return rows + [ComputePartition(f"slappart{i}", "free", (), None) for i in free]


def test_plan_grows_to_the_partition_amount() -> None:
    plan = fmt.plan_partitions(4, "slappart", ["slappart0", "slappart1", "etc"], _on_master(free=(0, 1)))
    assert plan == fmt.FormatPlan(keep=(0, 1, 2, 3))


def test_plan_shrinking_keeps_busy_partitions_and_drops_free_ones() -> None:
    local = ["slappart0", "slappart1", "slappart2", "slappart3", "slappart9x"]
    plan = fmt.plan_partitions(1, "slappart", local, _on_master(0, 2, free=(1, 3, 5)))
    assert plan.keep == (0, 2) and plan.busy_extra == (2,)
    assert plan.drop == (1, 3, 5)  # 5: known to the master only
    assert plan.unknown == ()


def test_plan_without_the_master_touches_no_extra_partition() -> None:
    plan = fmt.plan_partitions(1, "slappart", ["slappart0", "slappart1"], None)
    assert plan == fmt.FormatPlan(keep=(0,), unknown=(1,))


def test_plan_for_an_unknown_computer_and_zero_partitions() -> None:
    assert fmt.plan_partitions(0, "slappart", [], []) == fmt.FormatPlan(keep=())
    assert fmt.plan_partitions(0, "slappart", ["slappart0"], []).drop == (0,)


def _config(**values: object) -> NodeConfig:
    return NodeConfig(computer_id=COMPUTER, master_url="http://127.0.0.1:1", instance_root=Path("/nowhere/i"),
                      software_root=Path("/nowhere/s"), **values)  # type: ignore[arg-type]


def test_stale_routes_are_the_recorded_ranges_no_longer_given() -> None:
    before = claims.Record(7, "lo", ranges={"slappart0": "fd00:0:0:0:1::/80", "slappart1": "fd00:0:0:0:2::/80"})
    shifted = claims.Record(7, "lo", ranges={"slappart0": "fd00::100:0:0/88", "slappart1": "fd00:0:0:0:2::/80"})
    assert fmt.stale_routes(before, shifted, 7) == ["fd00:0:0:0:1::/80"]
    assert fmt.stale_routes(before, claims.Record(7, "lo"), 7) == ["fd00:0:0:0:1::/80", "fd00:0:0:0:2::/80"]
    assert fmt.stale_routes(before, before, 7) == []
    assert fmt.stale_routes(None, shifted, 7) == []
    assert fmt.stale_routes(before, shifted, 8) == []  # recorded in another namespace: not routed here


def test_mode_follows_the_uid_and_alter_user() -> None:
    assert fmt.node_mode(_config(), 1001) == fmt.MODE_SINGLE_USER
    assert fmt.node_mode(_config(alter_user=True, alter_network=True), 0) == fmt.MODE_ROOT
    assert fmt.node_mode(_config(alter_network=True), 0) == fmt.MODE_EXISTING_USERS
    with pytest.raises(ConfigurationError, match=r"alter_network = true needs root"):
        fmt.node_mode(_config(alter_network=True), 1001)


def test_posted_entry_and_resource_document() -> None:
    partition = fmt.FormattedPartition("slappart0", "slapuser0", "127.0.1.1", "fd70::1")
    assert fmt.partition_entry(partition, "lo", (32, 128)) == {"partition_id": "slappart0", "ip_list": [
        {"ip-address": "127.0.1.1", "network-interface": "lo", "netmask": "255.255.255.255"},
        {"ip-address": "fd70::1", "network-interface": "lo", "netmask": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
    ]}
    ipv4_only = fmt.FormattedPartition("slappart1", "u", "127.0.1.2", None)
    assert len(fmt.partition_entry(ipv4_only, "lo", (32, 128))["ip_list"]) == 1
    ranged = fmt.FormattedPartition("slappart2", "u", "127.0.1.3", "fd70::3", ipv6_range="fd70::1:0/112")
    assert fmt.partition_entry(ranged, "lo", (32, 128))["ipv6_range"] == "fd70::1:0/112"  # the master stores it
    document = json.loads(fmt.resource_document(partition, "lo", PartitionUser("slapuser0", 5, 6, Path("/h"), ("g",))))
    assert document == {"partition_id": "slappart0", "user": "slapuser0", "uid": 5, "gid": 6,
                        "network_interface": "lo", "ipv4_address": "127.0.1.1", "ipv6_address": "fd70::1"}


def test_summary_lines() -> None:
    report = fmt.FormatReport(mode=fmt.MODE_SINGLE_USER, user="me", master_url="http://m", posted=True,
                              partitions=[fmt.FormattedPartition("slappart0", "me", "127.0.1.1", None),
                                          fmt.FormattedPartition("slappart3", "me", "127.0.1.4", None, True)],
                              removed=["slappart1"])
    assert summary_lines(report) == [
        "mode: single-user as me",
        "slappart0  me  127.0.1.1        -",
        "slappart3  me  127.0.1.4        -  (busy, beyond partition_amount)",
        "dropped: slappart1",
        "posted to http://m",
    ]


# -- the command, for real -----------------------------------------------------------------------

@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user may reach and write (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="partita-format-", dir="/tmp"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ServerProcess]:
    server = start(tmp_path, ("proxy", "start"))
    try:
        yield server
    finally:
        server.stop()


def write_config(directory: Path, master_url: str, **slapformat: object) -> Path:
    # a network of its own, so that addresses another run left on lo do not change what is seen
    slapformat = {"ipv6_local_network": "fd70:6172:7469:96::/64", **slapformat}
    lines = ["[slapos]", f"computer_id = {COMPUTER}", f"master_url = {master_url}",
             f"instance_root = {directory / 'srv'}", f"software_root = {directory / 'opt'}", "[slapformat]"]
    lines += [f"{key} = {value}" for key, value in slapformat.items()]
    path = directory / "slapos.cfg"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


def run_format(config: Path, as_node_user: bool = False) -> subprocess.CompletedProcess[str]:
    """`slapos node format`: as slapnode with a Partita it can run, or as root with the project's."""
    if not as_node_user:
        command = [SLAPOS, "node", "format", "--cfg", str(config)]
    else:
        command = as_single_user("node", "format", "--cfg", str(config))
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=config.parent)


def master_partitions(url: str) -> dict[str, list[list[str]]]:
    with MasterClient(url) as client:
        state = client.get_compute_node_state(COMPUTER)
    return {p["compute_partition_id"]: p["ip_list"] for p in state["compute_partition_list"]}


def assert_partition_dir(path: Path, owner: str) -> None:
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o750, oct(info.st_mode)
    assert pwd.getpwuid(info.st_uid).pw_name == owner
    assert json.loads((path / ".slapos-resource").read_text())["user"] == owner


def test_single_user_format_is_idempotent(open_dir: Path, proxy: ServerProcess) -> None:
    config = write_config(open_dir, proxy.url, partition_amount=3)
    first = run_format(config, as_node_user=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == f"mode: single-user as {NODE_USER}"
    assert "IPv6: not altering the network (non-root)" in first.stderr
    for i in range(3):
        assert_partition_dir(open_dir / "srv" / f"slappart{i}", NODE_USER)
    assert master_partitions(proxy.url) == {f"slappart{i}": [["lo", f"127.0.1.{i + 1}"]] for i in range(3)}
    second = run_format(config, as_node_user=True)
    assert (second.returncode, second.stdout) == (0, first.stdout)
    assert master_partitions(proxy.url) == {f"slappart{i}": [["lo", f"127.0.1.{i + 1}"]] for i in range(3)}
    assert sorted(p.name for p in (open_dir / "srv").iterdir() if p.is_dir()) == ["slappart0", "slappart1", "slappart2"]


def test_single_user_shrink_keeps_busy_partitions_then_grows(open_dir: Path, proxy: ServerProcess) -> None:
    config = write_config(open_dir, proxy.url, partition_amount=4)
    assert run_format(config, as_node_user=True).returncode == 0
    with MasterClient(proxy.url) as client:
        client.supply(COMPUTER, SR)
        assert client.request_instance("t", SR)["compute_partition_id"] == "slappart0"
        assert client.request_instance("u", SR)["compute_partition_id"] == "slappart1"
    (open_dir / "srv" / "slappart3" / "leftover").write_text("data")  # runuser'd files: written as root
    write_config(open_dir, proxy.url, partition_amount=1)
    shrunk = run_format(config, as_node_user=True)
    assert shrunk.returncode == 0, shrunk.stderr
    assert "slappart1 is beyond partition_amount (1) but busy" in shrunk.stderr
    assert "slappart3 is dropped but holds files (leftover)" in shrunk.stderr
    assert "dropped: slappart2, slappart3" in shrunk.stdout
    assert sorted(master_partitions(proxy.url)) == ["slappart0", "slappart1"]
    assert not (open_dir / "srv" / "slappart2").exists()
    assert (open_dir / "srv" / "slappart3" / "leftover").read_text() == "data"
    assert_partition_dir(open_dir / "srv" / "slappart1", NODE_USER)
    write_config(open_dir, proxy.url, partition_amount=3)
    grown = run_format(config, as_node_user=True)
    assert grown.returncode == 0, grown.stderr
    assert sorted(master_partitions(proxy.url)) == ["slappart0", "slappart1", "slappart2"]
    with MasterClient(proxy.url) as client:
        assert client.get_instance_tree("u")["compute_partition_id"] == "slappart1"


@pytest.mark.root  # puts an address on lo for the node to find
def test_single_user_declares_ipv6_already_on_the_interface(open_dir: Path, proxy: ServerProcess) -> None:
    if not fmt.network.ipv6_enabled("lo"):
        pytest.fail("IPv6 is disabled on lo on this machine: this test needs it")
    address = "fd70:6172:7469:95::1"
    subprocess.run(["ip", "addr", "add", f"{address}/128", "dev", "lo", "nodad"], check=True, timeout=30)
    try:
        config = write_config(open_dir, proxy.url, partition_amount=2,
                              ipv6_local_network="fd70:6172:7469:95::/64")
        result = run_format(config, as_node_user=True)
        assert result.returncode == 0, result.stderr
        assert master_partitions(proxy.url) == {"slappart0": [["lo", "127.0.1.1"], ["lo", address]],
                                                "slappart1": [["lo", "127.0.1.2"]]}
    finally:
        subprocess.run(["ip", "addr", "del", f"{address}/128", "dev", "lo"], timeout=30)


def test_unreachable_master_formats_locally_and_exits_2(open_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_format(write_config(open_dir, url, partition_amount=2), as_node_user=True)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("slapos: error:")]
    assert errors == [f"slapos: error: formatted 2 partitions locally; cannot reach the master at {url}: "
                      "Connection refused"]
    assert_partition_dir(open_dir / "srv" / "slappart1", NODE_USER)


def test_non_root_cannot_alter_the_network(open_dir: Path) -> None:
    result = run_format(write_config(open_dir, "http://127.0.0.1:1", alter_network="true"), as_node_user=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "slapos: error: [slapformat] alter_network = true needs root: run as root, or set alter_network = false"]
    assert not (open_dir / "srv").exists()


@pytest.mark.parametrize(("option", "message"), [
    ({"ipv4_local_network": "127.0.93.0/30"},
     "[slapformat] ipv4_local_network 127.0.93.0/30 has room for 2 partitions, not 3"),
    pytest.param({"user_base_name": "Bad"}, "'Bad2' is not a valid partition user name (user_base_name)",
                 marks=pytest.mark.root),  # root mode makes users: single-user mode ignores the name
])
def test_bad_configuration_is_one_line_and_creates_nothing(open_dir: Path, option: dict[str, str],
                                                           message: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_format(write_config(open_dir, url, partition_amount=3, **option))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not (open_dir / "srv").exists() and not (open_dir / "opt").exists()


# -- root mode: real users and addresses ---------------------------------------------------------

def _lo_addresses() -> set[str]:
    output = subprocess.run(["ip", "-j", "addr", "show", "dev", "lo"], capture_output=True, text=True,
                            check=True, timeout=30).stdout
    return {f"{info['local']}/{info['prefixlen']}" for link in json.loads(output) for info in link["addr_info"]}


def cat_as(user: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", user, "--", "cat", str(path)], capture_output=True, text=True,
                          timeout=30)


@pytest.fixture
def root_names() -> Iterator[tuple[str, str]]:
    """A test-specific user base name and software user; users, groups and addresses removed after."""
    base = "ptf" + "".join(random.choices(string.ascii_lowercase, k=5))
    yield base + "u", base + "s"
    for name in [f"{base}u{i}" for i in range(4)] + [base + "s"]:
        subprocess.run(["userdel", name], capture_output=True, timeout=30)
        subprocess.run(["groupdel", name], capture_output=True, timeout=30)
    for i in range(1, 5):
        for address in (f"127.0.93.{i}/32", f"fd70:6172:7469:93::{i}/128"):
            subprocess.run(["ip", "addr", "del", address, "dev", "lo"], capture_output=True, timeout=30)


@pytest.mark.root
def test_root_format_creates_users_and_addresses(open_dir: Path, proxy: ServerProcess,
                                                 root_names: tuple[str, str]) -> None:
    user_base, software_user = root_names
    open_dir.chmod(0o755)
    config = write_config(open_dir, proxy.url, partition_amount=2, user_base_name=user_base,
                          software_user=software_user, ipv4_local_network=ROOT_IPV4, ipv6_local_network=ROOT_IPV6)
    first = run_format(config)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0] == f"mode: root, one user per partition (software user {software_user})"
    ipv6 = fmt.network.ipv6_enabled("lo")
    for i in range(2):
        name, path = f"{user_base}{i}", open_dir / "srv" / f"slappart{i}"
        entry = pwd.getpwnam(name)
        assert (entry.pw_dir, entry.pw_shell) == (str(path), "/bin/sh")
        assert grp.getgrgid(entry.pw_gid).gr_name == name
        assert name in grp.getgrnam(software_user).gr_mem
        assert_partition_dir(path, name)
        assert f"127.0.93.{i + 1}/32" in _lo_addresses()
        assert (f"fd70:6172:7469:93::{i + 1}/128" in _lo_addresses()) is ipv6
    software_root = (open_dir / "opt").stat()  # root's: the build user owns only what it builds (issue 10)
    assert (software_root.st_uid, stat.S_IMODE(software_root.st_mode)) == (0, 0o755)
    assert pwd.getpwnam(software_user).pw_dir == str(open_dir / "opt")
    expected = {f"slappart{i}": [["lo", f"127.0.93.{i + 1}"]]
                + ([["lo", f"fd70:6172:7469:93::{i + 1}"]] if ipv6 else []) for i in range(2)}
    assert master_partitions(proxy.url) == expected
    own = cat_as(f"{user_base}0", open_dir / "srv/slappart0/.slapos-resource")
    other = cat_as(f"{user_base}0", open_dir / "srv/slappart1/.slapos-resource")
    assert own.returncode == 0 and json.loads(own.stdout)["user"] == f"{user_base}0"
    assert other.returncode != 0 and "Permission denied" in other.stderr
    second = run_format(config)
    assert (second.returncode, second.stdout) == (0, first.stdout)
    assert master_partitions(proxy.url) == expected


@pytest.mark.root
def test_root_shrink_removes_a_free_partition_and_its_addresses(open_dir: Path, proxy: ServerProcess,
                                                                root_names: tuple[str, str]) -> None:
    user_base, software_user = root_names
    open_dir.chmod(0o755)  # only root writes where software_root is (issue 10)
    options = {"user_base_name": user_base, "software_user": software_user,
               "ipv4_local_network": ROOT_IPV4, "ipv6_local_network": ROOT_IPV6}
    config = write_config(open_dir, proxy.url, partition_amount=2, **options)
    assert run_format(config).returncode == 0
    write_config(open_dir, proxy.url, partition_amount=1, **options)
    shrunk = run_format(config)
    assert shrunk.returncode == 0, shrunk.stderr
    assert "dropped: slappart1" in shrunk.stdout
    assert not (open_dir / "srv" / "slappart1").exists()
    addresses = _lo_addresses()
    assert "127.0.93.2/32" not in addresses and "fd70:6172:7469:93::2/128" not in addresses
    assert "127.0.93.1/32" in addresses
    assert sorted(master_partitions(proxy.url)) == ["slappart0"]
    assert os.path.isdir(open_dir / "srv" / "slappart0")
    held = _claimed_by(open_dir / "srv")  # issue 13: slappart1's addresses are released
    assert "127.0.93.1" in held and "127.0.93.2" not in held and "fd70:6172:7469:93::2" not in held
    assert set(json.loads((open_dir / "srv" / ".slapos-addresses").read_text())["addresses"]) == held


def _claimed_by(instance_root: Path) -> set[str]:
    """The addresses the machine-wide registry says the node of `instance_root` holds (`node.claims`)."""
    netns = os.stat("/proc/self/ns/net").st_ino
    found = set()
    for path in claims.CLAIMS_DIRECTORY.glob(f"{netns}-*"):
        claim = claims.parse_claim(path.read_text())
        if claim is not None and claim.instance_root == str(instance_root):
            found.add(claim.address)
    return found
