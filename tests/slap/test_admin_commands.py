"""The identity commands against a real master with certificates (`tests.support.secure_master`):
an admin enrolled with init's token creates computer and user tokens, API tokens, lists and
revokes; the audit log shows it; TLS failures and refusals are one line each."""
from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from partita.slap.cli.main import cli
from tests.slap.tls_server import make_pki
from tests.support.secure_master import Enrolled, SecureMaster, enrol, start_secure_master
from tests.support.server import SLAPOS


@dataclass(frozen=True)
class Admin:
    master: SecureMaster
    identity: Enrolled
    cfg: Path
    directory: Path


def client_cfg(path: Path, master: SecureMaster, *, who: Enrolled | None = None, api_token: str | None = None,
               ca_file: Path | str | None = None) -> Path:
    """A client configuration: the master's CA file (or `ca_file`), then a certificate or a token."""
    lines = ["[slapos]", f"master_url = {master.url}", f"partita_ca_file = {ca_file or master.ca_file}"]
    if who is not None:
        lines += [f"key_file = {who.key_file}", f"cert_file = {who.cert_file}"]
    if api_token is not None:
        lines.append(f"api_token = {api_token}")
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    directory = tmp_path_factory.mktemp("secure-master")
    with start_secure_master(directory) as master:
        identity = enrol(master, master.admin_token, directory / "admin", "admin")
        yield Admin(master, identity, client_cfg(directory / "admin.cfg", master, who=identity), directory)


def slapos(cfg: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--cfg", str(cfg)])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def error_line(result: Result) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("slapos: error: "), result.stderr
    return lines[0].removeprefix("slapos: error: ")


def test_a_node_enrols_with_a_computer_token_and_shows_in_list_and_info(admin: Admin) -> None:
    done = subprocess.run([SLAPOS, "-q", "computer", "token", "create", "--title", "rack 4", "--ttl", "30m",
                           "--cfg", str(admin.cfg)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert done.stdout == token + "\n" and token.count(".") == 2
    assert f"slapos node register --token {token} --master-url {admin.master.url}" in done.stderr
    assert "(in 30m)" in done.stderr
    node = enrol(admin.master, token, admin.directory / "node-rack4", "computer")
    assert node.kind == "computer"
    computers = as_json(slapos(admin.cfg, "computer", "list", "--format", "json"))
    listed = {entry["computer_guid"]: entry for entry in computers}
    entry = listed[node.name]
    assert (entry["title"], entry["owner"], entry["certificate"]["state"]) == ("rack 4", admin.identity.name, "valid")
    table = ok(slapos(admin.cfg, "computer", "list")).stdout
    assert any(line.split()[:1] == [node.name] and "valid" in line for line in table.splitlines())
    info = as_json(slapos(admin.cfg, "computer", "info", node.name, "--format", "json"))
    assert [c["state"] for c in info["certificates"]] == ["valid"]
    assert "Certificates:" in ok(slapos(admin.cfg, "computer", "info", node.name)).stdout


def test_revoking_a_computer_refuses_its_certificate(admin: Admin) -> None:
    token = ok(slapos(admin.cfg, "computer", "token", "create")).stdout.strip()
    node = enrol(admin.master, token, admin.directory / "node-lost", "computer")
    node_cfg = client_cfg(admin.directory / "node-lost.cfg", admin.master, who=node)
    own = as_json(slapos(node_cfg, "computer", "info", node.name, "--format", "json"))
    assert own["computer_guid"] == node.name  # the computer may read itself
    assert ok(slapos(admin.cfg, "computer", "revoke", node.name)).stdout == f"revoked 1 certificate of {node.name}\n"
    info = as_json(slapos(admin.cfg, "computer", "info", node.name, "--format", "json"))
    assert info["certificate"]["state"] == "revoked"
    assert "revoked" in error_line(slapos(node_cfg, "computer", "info", node.name))


def test_a_user_enrols_makes_an_api_token_that_works_until_revoked(admin: Admin) -> None:
    created = ok(slapos(admin.cfg, "user", "create", "bob", "--ttl", "1h"))
    token = created.stdout.strip()
    assert f"the user runs: slapos configure client --token {token} --master-url {admin.master.url}" in created.stderr
    assert error_line(slapos(admin.cfg, "user", "create", "bob")).startswith("user 'bob' exists")
    bob = enrol(admin.master, token, admin.directory / "bob", "bob")
    assert (bob.kind, bob.name) == ("user", "bob")
    bob_cfg = client_cfg(admin.directory / "bob.cfg", admin.master, who=bob)
    assert error_line(slapos(bob_cfg, "computer", "token", "create")) == "only an admin may create enrolment tokens"
    assert ok(slapos(bob_cfg, "computer", "list")).stdout == "No computers.\n"  # a user sees their own
    again = ok(slapos(admin.cfg, "user", "token", "bob", "--ttl", "10m"))
    assert f"slapos configure client --token {again.stdout.strip()}" in again.stderr
    made = ok(slapos(bob_cfg, "token", "create", "--title", "ci", "--ttl", "never"))
    api_token = made.stdout.strip()
    assert "never expires" in made.stderr
    script_cfg = client_cfg(admin.directory / "script.cfg", admin.master, api_token=api_token)
    tokens = as_json(slapos(script_cfg, "token", "list", "--format", "json"))
    token_id = api_token.split(".")[0]
    mine = [t for t in tokens if t["token_id"] == token_id]
    assert [(t["kind"], t["title"], t["owner"], t["state"], t["expires_at"]) for t in mine] == \
        [("api", "ci", "bob", "active", None)]
    assert all(t["owner"] == "bob" for t in tokens)
    assert token_id in ok(slapos(bob_cfg, "token", "list")).stdout
    ok(slapos(bob_cfg, "token", "revoke", token_id))
    assert error_line(slapos(script_cfg, "token", "list")) == f"the API token {token_id} was revoked"
    assert api_token.split(".")[1] not in (admin.master.log())
    every_token = as_json(slapos(admin.cfg, "token", "list", "--format", "json"))  # an admin sees all
    states = {t["token_id"]: t["state"] for t in every_token}
    assert states[token_id] == "revoked"


def test_the_audit_log_shows_who_did_what(admin: Admin) -> None:
    ok(slapos(admin.cfg, "user", "create", "carol"))
    ok(slapos(admin.cfg, "token", "create", "--title", "audit-me", "--ttl", "1h"))
    events = as_json(slapos(admin.cfg, "audit", "list", "--since", "1h", "--format", "json"))
    actions = [(e["actor"], e["action"], e["outcome"]) for e in events]
    assert (f"user:{admin.identity.name}", "user.create", "ok") in actions
    assert (f"user:{admin.identity.name}", "token.create", "ok") in actions
    assert any(e["action"] == "user.create" and e["target"] == "carol" for e in events)
    assert len(as_json(slapos(admin.cfg, "audit", "list", "--limit", "1", "--format", "json"))) == 1
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    assert as_json(slapos(admin.cfg, "audit", "list", "--since", tomorrow, "--format", "json")) == []
    assert "user.create" in ok(slapos(admin.cfg, "audit", "list")).stdout


def test_tls_failures_and_a_missing_identity_are_one_line(admin: Admin, tmp_path: Path) -> None:
    other = make_pki(tmp_path)
    wrong_ca = client_cfg(tmp_path / "wrong-ca.cfg", admin.master, who=admin.identity, ca_file=other.ca_file)
    assert error_line(slapos(wrong_ca, "token", "list")).startswith(
        f"cannot verify the master at {admin.master.url} against the CA in {other.ca_file}: certificate verify failed")
    stranger = tmp_path / "stranger.cfg"
    stranger.write_text(f"[slapos]\nmaster_url = {admin.master.url}\npartita_ca_file = {admin.master.ca_file}\n"
                        f"key_file = {other.client.key_file}\ncert_file = {other.client.cert_file}\n")
    line = error_line(slapos(stranger, "token", "list"))
    assert line.startswith(f"the master at {admin.master.url} ")  # an alert, or a close that overtook it
    assert f"refused the client certificate {other.client.cert_file}" in line
    expired = stranger.with_name("expired.cfg")
    expired.write_text(stranger.read_text().replace(other.client.key_file, other.expired.key_file)
                       .replace(other.client.cert_file, other.expired.cert_file))
    assert error_line(slapos(expired, "token", "list")).endswith(
        "it expired on 2020-03-04: renew it or enrol again (docs/operations.md)")
    anonymous = client_cfg(tmp_path / "anonymous.cfg", admin.master)
    assert error_line(slapos(anonymous, "token", "list")).startswith(
        "this master requires a client certificate or an API token")
