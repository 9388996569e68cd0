"""An authenticated master for tests: `slapos master init` then `slapos master start` over HTTPS.

`start_secure_master(directory)` gives a running master (SQLite, or the PostgreSQL URL given) with
its CA file and the admin's enrolment token printed by init; `enrol(master, token, directory)`
trades a token for a certificate over HTTPS without the CLI (setup for tests about other things).
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.server import SLAPOS, START_DEADLINE, ServerProcess, free_port, write_config

_TOKEN = re.compile(r"enrolment token \(single use, valid 24 hours\): (\S+)")
_FINGERPRINT = re.compile(r"CA fingerprint: (sha256:[0-9a-f]{64})")


@dataclass
class SecureMaster:
    url: str
    ca_file: Path
    ca_fingerprint: str
    admin_token: str
    directory: Path
    config_path: Path
    server: ServerProcess

    @property
    def process(self) -> subprocess.Popen:
        return self.server.process

    def stop(self) -> None:
        self.server.stop()

    def log(self) -> str:
        return self.server.log()

    def __enter__(self) -> SecureMaster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Enrolled:
    key_file: Path
    cert_file: Path
    ca_file: Path
    name: str
    kind: str

    @property
    def cert(self) -> tuple[str, str]:
        """requests' ``cert=`` for this identity."""
        return str(self.cert_file), str(self.key_file)


def start_secure_master(directory: Path, *, database_url: str | None = None, workers: int = 1,
                        extra: str = "") -> SecureMaster:
    """Init and start a master with certificates on a free loopback port; `extra` is appended to
    its ``[slapmaster]`` section (e.g. ``computer_certificate_days = 1``)."""
    port = free_port()
    config = write_config(directory, port, database=database_url or str(directory / "master.db"),
                          workers=workers, authentication="certificates")
    if extra:
        config.write_text(config.read_text() + extra.strip() + "\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    init = subprocess.run([SLAPOS, "master", "init", "--cfg", str(config)], capture_output=True, text=True,
                          cwd=directory, env=env, timeout=120)
    if init.returncode != 0:
        raise RuntimeError(f"slapos master init failed: {init.stderr}{init.stdout}")
    token, fingerprint = _TOKEN.search(init.stdout), _FINGERPRINT.search(init.stdout)
    assert token and fingerprint, init.stdout
    log_path = directory / "master-start.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([SLAPOS, "master", "start", "--cfg", str(config)], stdout=log,
                                   stderr=subprocess.STDOUT, env=env, cwd=directory)
    url = f"https://127.0.0.1:{port}"
    server = ServerProcess(url, process, log_path, config)
    ca_file = directory / "pki" / "ca.crt"
    _wait_ready(server, ca_file)
    return SecureMaster(url, ca_file, fingerprint.group(1), token.group(1), directory, config, server)


def _wait_ready(server: ServerProcess, ca_file: Path) -> None:
    """Until the master answers; one that never does is stopped, whatever ends the wait."""
    deadline = time.monotonic() + START_DEADLINE
    try:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"master exited with {server.process.returncode}:\n{server.log()}")
            try:
                requests.get(server.url + "/partita/ca.crt", timeout=2, verify=str(ca_file))
                return
            except (requests.ConnectionError, requests.Timeout):  # bound before it serves: a wait, not a failure
                time.sleep(0.1)
        raise RuntimeError(f"master did not answer within {START_DEADLINE} s:\n{server.log()}")
    except BaseException:
        server.stop()
        raise


def new_key_and_csr() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, csr.public_bytes(serialization.Encoding.PEM)


def enrol(master: SecureMaster, token: str, directory: Path, name: str = "client") -> Enrolled:
    """Trade `token` for a certificate; the key and certificate land in `directory`/`name`.key|.crt."""
    key_pem, csr_pem = new_key_and_csr()
    answer = requests.post(f"{master.url}/slapos.post.v0.enrolment", verify=str(master.ca_file), timeout=30,
                           json={"token": token, "csr": csr_pem.decode("ascii")})
    assert answer.status_code == 200, answer.text
    document = answer.json()
    directory.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = directory / f"{name}.key", directory / f"{name}.crt"
    key_file.touch(mode=0o600)
    key_file.write_bytes(key_pem)
    cert_file.write_text(document["certificate"])
    return Enrolled(key_file, cert_file, master.ca_file, document["name"], document["kind"])


def call(master: SecureMaster, who: Enrolled | None, method: str, body: dict | None = None,
         **kwargs: object) -> requests.Response:
    """POST a JSON API method as `who` (None: no client certificate)."""
    return requests.post(f"{master.url}/{method}", json=body or {}, verify=str(master.ca_file),
                         cert=who.cert if who else None, timeout=30, **kwargs)  # type: ignore[arg-type]
