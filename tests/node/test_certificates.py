"""node.certificates: the renewal rule, key and certificate replaced so that a crash never leaves
them mismatched, the computer's renewal (and the daemon's use of it), the partitions' certificates."""
from __future__ import annotations

import datetime
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from partita.node import certificates
from partita.node.config import NodeConfig
from partita.node.context import NodeContext, master_client
from partita.node.daemon import Daemon
from partita.node.errors import NodeError
from partita.slap.enrolment import (
    csr_pem, enrol, key_pem, load_certificate, load_key, matches_key, new_key, validity, write_certificate,
)
from tests.support.enrolment_server import EnrolmentServer

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 1, 1, tzinfo=UTC)
DAY = datetime.timedelta(days=1)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# -- the rule ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("elapsed_days", "due"), [(0, False), (59, False), (60.5, True), (89, True), (95, True)])
def test_a_certificate_is_renewed_with_less_than_a_third_of_its_life_left(elapsed_days: float, due: bool) -> None:
    assert certificates.needs_renewal(T0, T0 + 90 * DAY, T0 + elapsed_days * DAY) is due


# -- a node with a certificate -----------------------------------------------------------------

@pytest.fixture
def server() -> Iterator[EnrolmentServer]:
    with EnrolmentServer(days=90) as running:
        yield running


def registered(server: EnrolmentServer, directory: Path, *, issued_days_ago: float = 0) -> NodeConfig:
    """A node enrolled with `server`, its certificate issued `issued_days_ago`."""
    server.issued_at = datetime.datetime.now(UTC) - issued_days_ago * DAY if issued_days_ago else None
    key = new_key()
    enrolled = enrol(server.url, server.token("computer", "COMP-1"), key)
    server.issued_at = None
    ssl = directory / "ssl"
    ssl.mkdir(mode=0o711)
    write_certificate(ssl / "ca.crt", enrolled.ca_pem)
    certificates.replace_pair(ssl / "computer.key", ssl / "computer.crt", key, enrolled.certificate_pem)
    return NodeConfig(computer_id="COMP-1", master_url=server.url, instance_root=directory / "srv",
                      software_root=directory / "opt", key_file=str(ssl / "computer.key"),
                      cert_file=str(ssl / "computer.crt"), ca_file=str(ssl / "ca.crt"),
                      certificate_repository_path=ssl / "partition_pki")


def pair_matches(config: NodeConfig) -> bool:
    key = load_key(Path(config.key_file).read_bytes())
    return matches_key(key, load_certificate(Path(config.cert_file).read_bytes()))


def test_renewal_replaces_the_key_and_the_certificate(server: EnrolmentServer, tmp_path: Path) -> None:
    config = registered(server, tmp_path, issued_days_ago=70)
    old = Path(config.cert_file).read_bytes()
    assert certificates.computer_certificate_due(config)
    with master_client(config) as client:
        not_after = certificates.renew_computer_certificate(config, client)
    assert Path(config.cert_file).read_bytes() != old and pair_matches(config)
    assert mode(Path(config.key_file)) == 0o600 and not Path(config.key_file + ".next").exists()
    assert not certificates.computer_certificate_due(config)
    assert not_after > datetime.datetime.now(UTC) + 80 * DAY
    (call,) = server.posts("slapos.post.v0.compute_node_certificate")
    assert call.peer == "COMP-1" and call.body["computer_guid"] == "COMP-1"


def test_a_fresh_certificate_is_not_due_and_a_node_without_one_never_is(server: EnrolmentServer,
                                                                         tmp_path: Path) -> None:
    assert not certificates.computer_certificate_due(registered(server, tmp_path))
    plain = NodeConfig(computer_id="c", master_url="http://x", instance_root=tmp_path, software_root=tmp_path)
    assert not certificates.computer_certificate_due(plain)


def test_a_crash_after_the_certificate_leaves_the_new_key_to_settle(tmp_path: Path,
                                                                   server: EnrolmentServer) -> None:
    config = registered(server, tmp_path)
    key_file, cert_file = Path(config.key_file), Path(config.cert_file)
    new = new_key()
    issued = server.sign(csr_pem(new), "COMP-1")
    # steps 1 and 2 done, the process died before step 3:
    (key_file.parent / "computer.key.next").write_bytes(key_pem(new))
    cert_file.write_bytes(issued["certificate"].encode())
    assert not pair_matches(config)
    certificates.settle_pending(key_file, cert_file)
    assert pair_matches(config) and not (key_file.parent / "computer.key.next").exists()


def test_a_crash_before_the_certificate_drops_the_new_key(tmp_path: Path, server: EnrolmentServer) -> None:
    config = registered(server, tmp_path)
    key_file = Path(config.key_file)
    before = key_file.read_bytes()
    (key_file.parent / "computer.key.next").write_bytes(key_pem(new_key()))
    master_client(config).close()  # every client settles first
    assert key_file.read_bytes() == before and not (key_file.parent / "computer.key.next").exists()


def test_the_daemon_renews_once_and_goes_on_with_the_new_certificate(server: EnrolmentServer,
                                                                     tmp_path: Path) -> None:
    config = registered(server, tmp_path, issued_days_ago=70)
    first = master_client(config)
    daemon = Daemon(NodeContext(config, first, toolchain=None))  # type: ignore[arg-type]
    assert daemon.renew_computer_certificate() is True
    assert daemon.ctx.client is not first and pair_matches(config)
    assert daemon.renew_computer_certificate() is False  # not due any more
    assert len(server.posts("slapos.post.v0.compute_node_certificate")) == 1
    daemon.ctx.client.close()


def test_a_failed_renewal_is_logged_and_the_daemon_goes_on(server: EnrolmentServer, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    config = registered(server, tmp_path, issued_days_ago=70)
    before = Path(config.cert_file).read_bytes()
    client = master_client(config)
    daemon = Daemon(NodeContext(config, client, toolchain=None))  # type: ignore[arg-type]
    server.fail_renewals = True
    with caplog.at_level(logging.WARNING):
        assert daemon.renew_computer_certificate() is False
    assert "renewing the computer certificate failed" in caplog.text and "next iteration" in caplog.text
    assert daemon.ctx.client is client and Path(config.cert_file).read_bytes() == before
    server.fail_renewals = False
    assert daemon.renew_computer_certificate() is True  # the next iteration
    daemon.ctx.client.close()


# -- partitions --------------------------------------------------------------------------------

def test_a_partition_gets_its_own_key_and_certificate(server: EnrolmentServer, tmp_path: Path) -> None:
    config = registered(server, tmp_path)
    with master_client(config) as client:
        files = certificates.ensure_partition_certificate(config, client, "slappart0", None)
        assert files is not None
        assert files.key_file == str(config.certificate_repository_path / "slappart0.key")
        key_path, cert_path = Path(files.key_file), Path(files.cert_file)
        assert mode(config.certificate_repository_path) == 0o711
        assert mode(key_path) == 0o600 and mode(cert_path) == 0o644
        assert matches_key(load_key(key_path.read_bytes()), load_certificate(cert_path.read_bytes()))
        (call,) = server.posts("slapos.post.v0.compute_partition_certificate")
        assert call.body["compute_partition_id"] == "slappart0" and call.peer == "COMP-1"
        assert "PRIVATE" not in str(call.body)
        # valid: kept; due: renewed
        assert certificates.ensure_partition_certificate(config, client, "slappart0", None) == files
        assert len(server.posts("slapos.post.v0.compute_partition_certificate")) == 1
        not_after = validity(load_certificate(cert_path.read_bytes()))[1]
        certificates.ensure_partition_certificate(config, client, "slappart0", None, now=not_after - DAY)
        assert len(server.posts("slapos.post.v0.compute_partition_certificate")) == 2
    certificates.remove_partition_certificate(config, "slappart0")
    assert list(config.certificate_repository_path.iterdir()) == []


def test_a_node_without_a_certificate_makes_none(tmp_path: Path) -> None:
    plain = NodeConfig(computer_id="c", master_url="http://x", instance_root=tmp_path, software_root=tmp_path,
                       certificate_repository_path=tmp_path / "pki")
    assert certificates.ensure_partition_certificate(plain, None, "slappart0", None) is None  # type: ignore[arg-type]
    assert not (tmp_path / "pki").exists()


def test_a_repository_partition_users_cannot_reach_is_named(server: EnrolmentServer, tmp_path: Path) -> None:
    config = registered(server, tmp_path)
    tmp_path.chmod(0o700)
    with master_client(config) as client, pytest.raises(NodeError, match=f"{tmp_path} is not searchable"):
        certificates.ensure_partition_certificate(config, client, "slappart0", (65534, 65534))


@pytest.mark.root
def test_the_partition_key_belongs_to_the_partition_user(server: EnrolmentServer) -> None:
    directory = Path(tempfile.mkdtemp(prefix="pki", dir="/tmp"))
    try:
        directory.chmod(0o755)
        config = registered(server, directory)
        with master_client(config) as client:
            files = certificates.ensure_partition_certificate(config, client, "slappart0", (65534, 65534))
        assert files is not None
        info = os.stat(files.key_file)
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (65534, 0o600)
        repository = os.stat(config.certificate_repository_path)
        assert (repository.st_uid, stat.S_IMODE(repository.st_mode)) == (0, 0o711)
    finally:
        shutil.rmtree(directory)
