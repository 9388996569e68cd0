"""``slapos node register`` against a real master with certificates, end to end: the admin makes a
computer token through the JSON API, the node registers with the real command, ``slapos node
format`` works over HTTPS with the computer's certificate; renewal of a short-lived certificate;
registering again after the certificate expired.

The node commands run as `single_user()` (``slapnode`` through ``runuser`` when the tests run as
root), as a node in single-user mode does; the node's files belong to that user.
"""
from __future__ import annotations

import configparser
import datetime
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from partita.master.pki import certificates as master_pki
from partita.master.pki.store import Pki
from partita.node.config import node_config
from partita.node.supervisor import Supervisor
from partita.slap.client import connect
from partita.slap.config import read_config
from partita.slap.enrolment import csr_pem, load_key
from tests.support.node import CACHE_ROOT, HELLO_WEB, as_single_user, single_user
from tests.support.secure_master import Enrolled, SecureMaster, call, enrol, start_secure_master
from tests.support.toolchain import TOOLCHAIN_ROOT, node_environment, test_toolchain

RENEW = """
import datetime, sys
from partita.node.certificates import computer_certificate_due, renew_computer_certificate
from partita.node.config import node_config
from partita.node.context import master_client
from partita.node.supervisor import Supervisor
from partita.slap.client import connect
from partita.slap.config import read_config
config = node_config(read_config(sys.argv[1]))
now = datetime.datetime.now(datetime.timezone.utc)
assert not computer_certificate_due(config, now), "a fresh certificate is not due"
assert computer_certificate_due(config, now + datetime.timedelta(hours=17)), "due with 7 h of 24 left"
with master_client(config) as client:
    print(renew_computer_certificate(config, client).isoformat())
"""


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureMaster]:
    with start_secure_master(tmp_path_factory.mktemp("master"), extra="computer_certificate_days = 1") as running:
        yield running


@pytest.fixture(scope="module")
def admin(master: SecureMaster, tmp_path_factory: pytest.TempPathFactory) -> Enrolled:
    return enrol(master, master.admin_token, tmp_path_factory.mktemp("admin"))


@pytest.fixture
def node_dir() -> Iterator[Path]:
    """A directory the node's user owns, that it can reach (not below a 0700 temporary directory)."""
    directory = Path(tempfile.mkdtemp(prefix="reg", dir="/tmp"))
    directory.chmod(0o755)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(single_user())
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def computer_token(master: SecureMaster, admin: Enrolled, computer_guid: str | None = None) -> str:
    body = {"title": "test node"} | ({"computer_guid": computer_guid} if computer_guid else {})
    answer = call(master, admin, "slapos.post.v0.compute_node_token", body)
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def as_node_python() -> list[str]:
    """Python with Partita, as the node's user (the node environment through runuser as root)."""
    if os.geteuid() != 0:
        return [sys.executable]
    return ["runuser", "-u", single_user(), "--", str(node_environment() / "bin" / "python")]


def node(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(as_single_user(*args), capture_output=True, text=True, timeout=300)


def register(master: SecureMaster, token: str, directory: Path) -> subprocess.CompletedProcess[str]:
    return node("node", "register", "--token", token, "--master-url", master.url,
                "--cfg", str(directory / "etc" / "slapos.cfg"), "--partition-number", "2",
                "--instance-root", str(directory / "srv"), "--software-root", str(directory / "opt"))


def registered(master: SecureMaster, admin: Enrolled, directory: Path) -> Path:
    done = register(master, computer_token(master, admin), directory)
    assert done.returncode == 0, done.stderr
    return directory / "etc" / "slapos.cfg"


def certificates_of(master: SecureMaster, admin: Enrolled, computer_guid: str) -> list[dict]:
    answer = call(master, admin, "slapos.get.v0.compute_node", {"computer_guid": computer_guid})
    assert answer.status_code == 200, answer.text
    return answer.json()["certificates"]


def test_a_registered_node_formats_over_https(master: SecureMaster, admin: Enrolled, node_dir: Path) -> None:
    cfg = registered(master, admin, node_dir)
    config = node_config(read_config(str(cfg)))
    assert config.computer_id.startswith("COMP-") and config.master_url == master.url
    assert Path(config.ca_file).read_bytes() == master.ca_file.read_bytes()
    formatted = node("node", "format", "--cfg", str(cfg))
    assert formatted.returncode == 0, formatted.stderr
    assert f"posted to {master.url}" in formatted.stdout
    answer = call(master, admin, "slapos.get.v0.compute_node", {"computer_guid": config.computer_id})
    assert [p["partition_id"] for p in answer.json()["partitions"]] == ["slappart0", "slappart1"]


def test_a_short_lived_certificate_is_renewed_and_used(master: SecureMaster, admin: Enrolled,
                                                       node_dir: Path) -> None:
    cfg = registered(master, admin, node_dir)
    config = node_config(read_config(str(cfg)))
    before = Path(config.cert_file).read_bytes()
    renewed = subprocess.run([*as_node_python(), "-c", RENEW, str(cfg)], capture_output=True, text=True,
                             timeout=120)
    assert renewed.returncode == 0, renewed.stderr
    assert Path(config.cert_file).read_bytes() != before
    assert len(certificates_of(master, admin, config.computer_id)) == 2
    formatted = node("node", "format", "--cfg", str(cfg))  # with the new key and certificate
    assert formatted.returncode == 0, formatted.stderr


def test_registering_again_after_expiry(master: SecureMaster, admin: Enrolled, node_dir: Path) -> None:
    cfg = registered(master, admin, node_dir)
    config = node_config(read_config(str(cfg)))
    cert_file, key_file = Path(config.cert_file), Path(config.key_file)
    # the certificate expired: the same key, signed by the master's CA, ended yesterday
    ca = Pki(master.directory / "pki").load_ca()
    key = load_key(key_file.read_bytes())  # the tests run as root or as the node's user
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)
    expired = master_pki.sign_csr(ca, csr_pem(key), config.computer_id, 1, now=past)
    cert_file.write_bytes(master_pki.certificate_pem(expired))  # in place: its owner stays
    refused = node("node", "format", "--cfg", str(cfg))
    assert refused.returncode != 0 and "expired" in refused.stderr, refused.stderr
    settings = cfg.read_bytes()
    again = register(master, computer_token(master, admin, config.computer_id), node_dir)
    assert again.returncode == 0, again.stderr
    assert f"registered again as computer {config.computer_id}" in again.stdout
    assert cfg.read_bytes() == settings
    formatted = node("node", "format", "--cfg", str(cfg))
    assert formatted.returncode == 0, formatted.stderr


def test_a_partition_talks_to_the_master_with_its_own_certificate(master: SecureMaster, admin: Enrolled,
                                                                   node_dir: Path) -> None:
    cfg = registered(master, admin, node_dir)
    cache = CACHE_ROOT / f"cache-{single_user()}"
    cache.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(single_user())
        os.chown(cache, entry.pw_uid, entry.pw_gid)
    test_toolchain()  # built once for every node test
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(cfg)
    parser["slapos"].update({"toolchain_directory": str(TOOLCHAIN_ROOT), "cache_directory": str(cache),
                             "promise_timeout": "10", "buildout_timeout": "120", "software_timeout": "300"})
    with open(cfg, "w") as handle:  # the same file: its owner stays
        parser.write(handle)
    config = node_config(parser)
    assert node("node", "format", "--cfg", str(cfg)).returncode == 0
    with connect(master.url, key_file=str(admin.key_file), cert_file=str(admin.cert_file),
                 ca_file=str(master.ca_file)) as client:
        client.supply(config.computer_id, str(HELLO_WEB))
        client.request_instance("web", str(HELLO_WEB), sla_parameters={"computer_guid": config.computer_id})
        try:
            for step in ("software", "instance"):
                done = node("node", step, "--cfg", str(cfg))
                assert done.returncode == 0, done.stdout + done.stderr
            tree = client.get_instance_tree("web")
            assert tree["connection_parameters"].get("url", "").startswith("http://")
            partition = tree["compute_partition_id"]
            repository = config.certificate_repository_path
            assert stat.S_IMODE((repository / f"{partition}.key").stat().st_mode) == 0o600
            tail = (config.instance_root / partition / "buildout.cfg").read_text()
            assert f"key-file = {repository / partition}.key" in tail
            assert f"cert-file = {repository / partition}.crt" in tail
            assert f"partita-ca-file = {config.ca_file}" in tail
            # the url was published by partita:publish: the master takes no call without a client
            # certificate, and the partition's buildout has only its own
            with connect(master.url, key_file=f"{repository / partition}.key",
                         cert_file=f"{repository / partition}.crt", ca_file=config.ca_file) as as_partition:
                me = as_partition.call("slapos.get.v0.whoami", {})
            assert (me["kind"], me["compute_partition_id"]) == ("partition", partition)
        finally:
            try:
                Supervisor(config).shutdown()
            except Exception as error:  # noqa: BLE001 - cleanup goes on
                print(f"cleanup: supervisord shutdown: {error}", file=sys.stderr)


def test_the_token_is_read_from_standard_input(master: SecureMaster, admin: Enrolled, node_dir: Path) -> None:
    """``--token -``: the token never shows in the process list (slapos experiment passes it so)."""
    argv = as_single_user("node", "register", "--token", "-", "--master-url", master.url,
                          "--cfg", str(node_dir / "etc" / "slapos.cfg"), "--partition-number", "1",
                          "--instance-root", str(node_dir / "srv"), "--software-root", str(node_dir / "opt"))
    empty = subprocess.run(argv, input="\n", capture_output=True, text=True, timeout=300)
    assert empty.returncode == 1, empty.stderr
    assert empty.stderr.strip().splitlines() == ["slapos: error: --token -: no enrolment token on standard input"]
    assert not (node_dir / "etc" / "slapos.cfg").exists()
    done = subprocess.run(argv, input=computer_token(master, admin) + "\n", capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert node_config(read_config(str(node_dir / "etc" / "slapos.cfg"))).computer_id.startswith("COMP-")
