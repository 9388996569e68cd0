"""The real slapos.core 1.26.1 against an authenticated master (HTTPS, mutual TLS): test helpers.

`SecureSetup` wraps a master started by `tests.support.secure_master` with its enrolled admin, and
makes the other identities a test needs: computers (an admin's computer token, then enrolment),
users (``slapos.post.v0.user``, then enrolment), partitions (a key and certificate the computer got
through SLAP XML ``getComputerPartitionCertificate``) and a self-signed stranger.

`SecurePeer` drives the peer as one of these identities: batches of `slap` library calls
(peer_scripts/slap_steps.py with ``key_file``/``cert_file``) and CLI commands with a client
configuration naming the certificate in ``[slapos]`` and ``[slapconsole]``. The 1.26.1 library
never verifies the master (``verify=False``); these tests check what the master accepts and refuses.
"""
from __future__ import annotations

import datetime
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.compat.conftest import (
    CLI_TIMEOUT,
    PEER_SCRIPTS,
    STEPS_TIMEOUT,
    CliResult,
    _brief,
    _describe,
)
from tests.support.peer import Peer
from tests.support.secure_master import Enrolled, SecureMaster, call, enrol


@dataclass
class SecureSetup:
    """A running authenticated master, its admin, and a directory for the identities made."""

    master: SecureMaster
    directory: Path
    admin: Enrolled
    backend: str

    @property
    def url(self) -> str:
        return self.master.url

    def log_tail(self, lines: int = 200) -> str:
        return "\n".join(self.master.log().splitlines()[-lines:])

    def json(self, who: Enrolled | None, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """A JSON API call that must succeed."""
        answer = call(self.master, who, method, body)
        assert answer.status_code == 200, f"{method}: {answer.status_code} {answer.text}"
        return answer.json()

    def computer(self, directory: Path, title: str) -> Enrolled:
        """A new computer: the admin makes a computer token, the computer enrols with it."""
        token = self.json(self.admin, "slapos.post.v0.compute_node_token", {"title": title})["token"]
        enrolled = enrol(self.master, token, directory, "computer")
        assert enrolled.kind == "computer" and enrolled.name.startswith("COMP-"), enrolled
        return enrolled

    def user(self, name: str) -> Enrolled:
        """A new (non-admin) user, enrolled with the token the admin got for them."""
        token = self.json(self.admin, "slapos.post.v0.user", {"name": name})["token"]
        enrolled = enrol(self.master, token, self.directory / name, name)
        assert (enrolled.kind, enrolled.name) == ("user", name), enrolled
        return enrolled

    def whoami(self, who: Enrolled) -> dict[str, Any]:
        return self.json(who, "slapos.get.v0.whoami")


def partition_identity(setup: SecureSetup, computer_guid: str, partition_id: str,
                       pem: dict[str, str], directory: Path) -> Enrolled:
    """Write what ``getCertificate()`` returned ({"certificate", "key"}) as a key and a certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = directory / f"{partition_id}.key", directory / f"{partition_id}.crt"
    key_file.touch(mode=0o600)
    key_file.write_text(pem["key"])
    cert_file.write_text(pem["certificate"])
    return Enrolled(key_file, cert_file, setup.master.ca_file, f"{computer_guid}/{partition_id}", "partition")


def self_signed(directory: Path, name: str = "stranger") -> Enrolled:
    """A key and a self-signed certificate this master's CA never issued."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = directory / f"{name}.key", directory / f"{name}.crt"
    key_file.touch(mode=0o600)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return Enrolled(key_file, cert_file, directory / "none.crt", name, "stranger")


def issuer_and_subject(cert_file: Path) -> tuple[str, str]:
    certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return certificate.issuer.rfc4514_string(), certificate.subject.rfc4514_string()


class SecurePeer:
    """The peer's library and CLI, presenting a given client certificate (or none)."""

    def __init__(self, peer: Peer, setup: SecureSetup) -> None:
        self.peer = peer
        self.setup = setup

    def steps(self, who: Enrolled | None, *steps: dict[str, Any]) -> list[dict[str, Any]]:
        """Run `steps` in one peer process as `who`; one {"ok"|"error": ...} per step."""
        document: dict[str, Any] = {"master_url": self.setup.url, "rest_url": None, "steps": list(steps)}
        if who is not None:
            document.update(key_file=str(who.key_file), cert_file=str(who.cert_file))
        result = subprocess.run(
            [str(self.peer.python), str(PEER_SCRIPTS / "slap_steps.py")], input=json.dumps(document),
            capture_output=True, text=True, timeout=STEPS_TIMEOUT, cwd="/", check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"peer slap_steps.py failed ({result.returncode}):\n{result.stderr}")
        answers = json.loads(result.stdout)
        assert len(answers) == len(steps)
        return answers

    def ok(self, who: Enrolled | None, *steps: dict[str, Any]) -> list[Any]:
        """Run `steps` as `who`; every one must succeed; return their results."""
        answers = self.steps(who, *steps)
        for step, answer in zip(steps, answers, strict=True):
            assert "ok" in answer, f"{step['op']} {_brief(step)} as {who and who.name} failed: {_describe(answer)}"
        return [answer["ok"] for answer in answers]

    def one(self, who: Enrolled | None, step: dict[str, Any]) -> Any:
        return self.ok(who, step)[0]

    def refused(self, who: Enrolled | None, step: dict[str, Any]) -> dict[str, Any]:
        """Run one step that must fail; return its error document."""
        (answer,) = self.steps(who, step)
        assert "error" in answer, f"{step['op']} {_brief(step)} as {who and who.name} succeeded: {_describe(answer)}"
        return answer

    def client_config(self, who: Enrolled | None, name: str, *, key_only: bool = False) -> Path:
        """A client slapos.cfg naming `who`'s key and certificate in [slapos] and [slapconsole].

        `key_only`: the key but no certificate (in [slapos] only). With an https master_url and
        neither, the 1.26.1 client stops before any call ("No option 'key_file' and/or
        'cert_file'"); with a key alone it calls the master without a client certificate."""
        credentials = [] if who is None else [f"key_file = {who.key_file}", f"cert_file = {who.cert_file}"]
        if key_only:
            lines = ["[slapos]", f"master_url = {self.setup.url}", *credentials[:1], ""]
        else:
            lines = ["[slapos]", f"master_url = {self.setup.url}", *credentials, "",
                     "[slapconsole]", *credentials, ""]
        text = "\n".join(lines)
        path = self.setup.directory / f"client-{name}.cfg"
        path.write_text(text)
        return path

    def cli(self, config: Path, *args: str, timeout: float = CLI_TIMEOUT) -> CliResult:
        """`slapos ARGS --cfg CONFIG` with the peer's CLI."""
        command = [str(self.peer.slapos), *args, "--cfg", str(config)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                cwd=self.setup.directory, check=False)
        return CliResult(command, result.returncode, result.stdout, result.stderr)
