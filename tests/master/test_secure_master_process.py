"""`slapos master start` over HTTPS as a real process: mutual TLS, refusals a client sees, and a
revocation that every worker of a PostgreSQL master applies on the next call.
"""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from partita.master.pki import certificates as certs
from partita.slap.client import connect
from partita.slap.errors import AuthenticationFailed, RemoteError
from tests.support.secure_master import Enrolled, SecureMaster, call, enrol, new_key_and_csr, start_secure_master
from tests.support.server import SLAPOS, free_port, write_config

WORKERS = 2


@pytest.fixture
def pg_master(tmp_path: Path, postgres_url: str) -> Iterator[SecureMaster]:
    with start_secure_master(tmp_path, database_url=postgres_url, workers=WORKERS) as master:
        yield master


@pytest.fixture
def master(tmp_path: Path) -> Iterator[SecureMaster]:
    with start_secure_master(tmp_path) as master:
        yield master


def register(master: SecureMaster, admin: Enrolled, directory: Path) -> Enrolled:
    token = call(master, admin, "slapos.post.v0.compute_node_token", {"title": "node"}).json()["token"]
    computer = enrol(master, token, directory, "computer")
    answer = call(master, computer, "slapos.put.v0.compute_node_format", {
        "computer_guid": computer.name,
        "compute_partition_list": [{"partition_id": "slappart0", "ip_list": []}]})
    assert answer.status_code == 200, answer.text
    return computer


@pytest.mark.postgresql
def test_a_revoked_certificate_is_refused_by_every_worker_on_its_next_call(
        pg_master: SecureMaster, tmp_path: Path) -> None:
    admin = enrol(pg_master, pg_master.admin_token, tmp_path / "admin", "admin")
    computer = register(pg_master, admin, tmp_path / "node")
    body = {"computer_guid": computer.name}
    # Kept-alive connections, each pinned to the worker that accepted it: with enough of them,
    # every worker serves (and has seen) the computer's certificate before the revocation.
    sessions = []
    for _ in range(4 * WORKERS):
        session = requests.Session()
        session.cert = computer.cert
        answer = session.post(f"{pg_master.url}/slapos.get.v0.compute_node_state", json=body, timeout=30,
                              verify=str(pg_master.ca_file))  # per call: $REQUESTS_CA_BUNDLE beats a session's
        assert answer.status_code == 200, answer.text
        sessions.append(session)
    revoked = call(pg_master, admin, "slapos.post.v0.compute_node_revocation", body)
    assert revoked.status_code == 200 and revoked.json()["revoked"] == 1
    for session in sessions:
        answer = session.post(f"{pg_master.url}/slapos.get.v0.compute_node_state", json=body, timeout=30,
                              verify=str(pg_master.ca_file))
        assert answer.status_code == 401 and answer.json()["code"] == "REVOKED", answer.text
        session.close()
    xml = requests.get(f"{pg_master.url}/getFullComputerInformation", params={"computer_id": computer.name},
                       verify=str(pg_master.ca_file), cert=computer.cert, timeout=30)
    assert xml.status_code == 401 and "revoked" in xml.text


def test_missing_self_signed_and_good_client_certificates(master: SecureMaster, tmp_path: Path) -> None:
    admin = enrol(master, master.admin_token, tmp_path / "admin", "admin")
    with connect(master.url, key_file=str(admin.key_file), cert_file=str(admin.cert_file),
                 ca_file=str(master.ca_file)) as client:
        assert client.whoami()["name"] == "admin"
    with connect(master.url, ca_file=str(master.ca_file)) as client, pytest.raises(RemoteError) as missing:
        client.whoami()
    assert missing.value.status == 401 and "requires a client certificate" in str(missing.value)
    # a certificate from a CA of its own: the handshake fails, the client says so in one line
    other = certs.new_ca()
    key_pem, csr = new_key_and_csr()
    forged = certs.sign_csr(other, csr, "admin", 1)
    (tmp_path / "forged.key").write_bytes(key_pem)
    (tmp_path / "forged.crt").write_bytes(certs.certificate_pem(forged))
    with connect(master.url, key_file=str(tmp_path / "forged.key"), cert_file=str(tmp_path / "forged.crt"),
                 ca_file=str(master.ca_file)) as client, pytest.raises(AuthenticationFailed) as refused:
        client.whoami()
    assert "refused the client certificate" in str(refused.value) and "\n" not in str(refused.value)
    # a client that does not trust the master's CA does not talk to it
    (tmp_path / "other-ca.crt").write_bytes(certs.certificate_pem(other.certificate))
    with connect(master.url, ca_file=str(tmp_path / "other-ca.crt")) as client, \
            pytest.raises(AuthenticationFailed) as unverified:
        client.whoami()
    assert "cannot verify the master" in str(unverified.value)


def test_plain_http_is_not_served(master: SecureMaster) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(master.url.replace("https://", "http://") + "/partita/ca.crt", timeout=10)


def test_a_master_without_authentication_stays_on_loopback(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), database=str(tmp_path / "m.db"))
    result = subprocess.run([SLAPOS, "master", "start", "--cfg", str(config), "--host", "0.0.0.0"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "slapos: error: --host = 0.0.0.0: a master with [slapmaster] authentication = none has no "
        "authentication, so it listens on loopback only (127.0.0.1, ::1, localhost); remove that "
        "option to serve HTTPS with certificates"]


def test_a_master_with_certificates_needs_its_pki(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), database=str(tmp_path / "m.db"), authentication="certificates")
    result = subprocess.run([SLAPOS, "master", "start", "--cfg", str(config)], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"slapos: error: no certificate authority in {tmp_path / 'pki'} "
                                     "(run `slapos master init`)")
