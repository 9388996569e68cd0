"""The identity commands (computer, user, token, audit) against a fake master: what they send,
what they print where, and their one-line errors."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from partita.slap.cli import common
from partita.slap.cli.main import cli
from partita.slap.client import MasterClient

URL = "https://master.example:8443"
ENROLMENT_TOKEN = "0123456789ab." + "a" * 40 + "." + "b" * 64
API_TOKEN = "0123456789cd." + "c" * 40
COMPUTER = {"computer_guid": "COMP-1", "title": "rack 4", "owner": "admin", "created_at": "2026-11-30T09:00:00+00:00",
            "partition_count": 10, "busy_partition_count": 3,
            "certificate": {"serial": "1f2e", "not_after": "2027-11-30T09:00:00+00:00", "state": "valid"},
            "allocation_scope": "drain", "tags": {"region": "rennes"}, "network_guid": "rack-4",
            "contact_state": "unreachable", "last_contact": "2026-11-30T09:00:00+00:00"}
NEW_COMPUTER = {"computer_guid": "COMP-2", "title": None, "owner": "admin", "created_at": "2026-12-01T09:00:00+00:00",
                "partition_count": 0, "busy_partition_count": 0, "certificate": None}


class Reply:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self._body, self.reason = status, body, "Fake"
        self.text = json.dumps(body)

    def json(self) -> Any:
        return self._body


class FakeMaster:
    """The transport seam of `MasterClient`, answering by JSON method name."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {}
        self.calls: list[tuple[str, Any]] = []
        self.connections: list[dict[str, Any]] = []
        self.headers: dict[str, str] = {}
        self.cert: Any = None
        self.verify: Any = True

    def post(self, url: str, json: Any = None, timeout: Any = None, verify: Any = True) -> Reply:
        method = url.rsplit("/", 1)[1]
        self.calls.append((method, json))
        status, body = self.answers.get(method, (404, {"status": 404, "code": "NOT_FOUND", "title": "no " + method}))
        return Reply(status, body)

    def close(self) -> None:
        pass

    def connect(self, master_url: str, **kwargs: Any) -> MasterClient:
        self.connections.append({"master_url": master_url, **kwargs})
        kwargs.pop("key_file", None), kwargs.pop("cert_file", None)
        return MasterClient(master_url, session=self, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeMaster:
    master = FakeMaster()
    monkeypatch.setattr(common, "connect", master.connect)
    return master


@pytest.fixture
def cfg(tmp_path: Path) -> str:
    path = tmp_path / "slapos-client.cfg"
    path.write_text(f"[slapos]\nmaster_url = {URL}\npartita_ca_file = {tmp_path}/ca.crt\n"
                    f"key_file = {tmp_path}/client.key\ncert_file = {tmp_path}/client.crt\n")
    return str(path)


def run(cfg: str, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--cfg", cfg])


def in_one_hour() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))


def test_computer_token_create_prints_the_token_alone_and_the_node_command_on_stderr(
        fake: FakeMaster, cfg: str, tmp_path: Path) -> None:
    fake.answers["slapos.post.v0.compute_node_token"] = (200, {
        "token": ENROLMENT_TOKEN, "token_id": "0123456789ab", "expires_at": in_one_hour(), "computer_guid": "COMP-9"})
    result = run(cfg, "computer", "token", "create", "--title", "rack", "--ttl", "2h", "--computer", "COMP-9")
    assert result.exit_code == 0, result.output
    assert result.stdout == ENROLMENT_TOKEN + "\n"
    assert f"on the node, run: slapos node register --token {ENROLMENT_TOKEN} --master-url {URL}" in result.stderr
    assert "for computer COMP-9, single use, expires on" in result.stderr
    assert fake.calls == [("slapos.post.v0.compute_node_token",
                           {"title": "rack", "ttl": 7200, "computer_guid": "COMP-9"})]
    assert fake.connections[0] == {"master_url": URL, "key_file": f"{tmp_path}/client.key",
                                   "cert_file": f"{tmp_path}/client.crt", "ca_file": f"{tmp_path}/ca.crt",
                                   "api_token": None}


def test_bad_duration_is_one_error_line_and_nothing_is_sent(fake: FakeMaster, cfg: str) -> None:
    result = run(cfg, "computer", "token", "create", "--ttl", "2x")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["slapos: error: --ttl: '2x' is not a duration: expected a number and "
                                          "a unit (s, m, h, d, w), e.g. 30m, 2h, 7d"]
    assert fake.calls == []


def test_computer_revoke_says_how_many(fake: FakeMaster, cfg: str) -> None:
    fake.answers["slapos.post.v0.compute_node_revocation"] = (200, {"type": "success", "title": "ok", "revoked": 3})
    result = run(cfg, "computer", "revoke", "COMP-1")
    assert (result.exit_code, result.stdout) == (0, "revoked 3 certificates of COMP-1\n")
    assert fake.calls == [("slapos.post.v0.compute_node_revocation", {"computer_guid": "COMP-1"})]


def test_computer_list_table_and_json(fake: FakeMaster, cfg: str) -> None:
    fake.answers["slapos.allDocs.v0.compute_node_list"] = (200, {"result_list": [COMPUTER, NEW_COMPUTER]})
    result = run(cfg, "computer", "list")
    assert result.exit_code == 0, result.output
    header, _rule, first, second = result.stdout.splitlines()
    assert header.split() == ["computer", "scope", "state", "last", "contact", "instances", "certificate"]
    assert first.split()[:3] == ["COMP-1", "draining", "unreachable"] and first.split()[-2:] == ["3/10", "valid"]
    assert first.split()[4:6] == ["d", "ago"]
    assert second.split() == ["COMP-2", "open", "never", "seen", "never", "0/0", "none"]
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    result = run(cfg, "computer", "list", "--format", "json")
    assert json.loads(result.stdout) == [COMPUTER, NEW_COMPUTER]
    fake.answers["slapos.allDocs.v0.compute_node_list"] = (200, {"result_list": []})
    assert run(cfg, "computer", "list").stdout == "No computers.\n"


def test_computer_list_and_info_count_instances_not_destroyed(fake: FakeMaster, cfg: str) -> None:
    """A destroyed instance keeps its partition busy until freed; it is no longer an instance (issue 13)."""
    counted = {**COMPUTER, "instance_count": 2, "certificates": [], "partitions": []}
    fake.answers["slapos.allDocs.v0.compute_node_list"] = (200, {"result_list": [counted]})
    assert run(cfg, "computer", "list").stdout.splitlines()[2].split()[-2:] == ["2/10", "valid"]
    fake.answers["slapos.get.v0.compute_node"] = (200, counted)
    lines = [line.split() for line in run(cfg, "computer", "info", "COMP-1").stdout.splitlines()]
    assert ["instances", "2"] in lines and ["partitions", "busy/total", "3/10"] in lines


def test_computer_info_shows_certificates_and_partitions(fake: FakeMaster, cfg: str) -> None:
    detail = {**COMPUTER, "certificates": [
        {"serial": "1f2e", "not_before": "2026-11-30T09:00:00+00:00", "not_after": "2027-11-30T09:00:00+00:00",
         "state": "valid", "revoked_at": None},
        {"serial": "0a0b", "not_before": "2025-11-30T09:00:00+00:00", "not_after": "2026-11-30T09:00:00+00:00",
         "state": "revoked", "revoked_at": "2026-06-01T08:00:00+00:00"}],
        "partitions": [{"partition_id": "slappart0", "state": "busy"}, {"partition_id": "slappart1", "state": "free"}]}
    fake.answers["slapos.get.v0.compute_node"] = (200, detail)
    result = run(cfg, "computer", "info", "COMP-1")
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["partitions", "busy/total", "3/10"] in lines
    assert ["allocation", "scope", "draining", "(3", "instances", "remain)"] in lines
    assert ["tags", "region=rennes"] in lines and ["network", "rack-4"] in lines
    assert ["node", "unreachable", "(last", "contact"] == lines[[line[:1] for line in lines].index(["node"])][:4]
    assert ["0a0b", "2025-11-30", "09:00", "UTC", "2026-11-30", "09:00", "UTC", "revoked", "2026-06-01", "08:00",
            "UTC"] in lines
    assert ["slappart1", "free"] in lines
    assert fake.calls[-1] == ("slapos.get.v0.compute_node", {"computer_guid": "COMP-1"})
    assert json.loads(run(cfg, "computer", "info", "COMP-1", "--format", "json").stdout) == detail


def test_user_create_prints_the_token_and_the_command_the_user_runs(fake: FakeMaster, cfg: str) -> None:
    fake.answers["slapos.post.v0.user"] = (200, {"name": "bob", "admin": True, "token": ENROLMENT_TOKEN,
                                                 "token_id": "0123456789ab", "expires_at": in_one_hour()})
    result = run(cfg, "user", "create", "bob", "--admin", "--ttl", "1d")
    assert result.exit_code == 0, result.output
    assert result.stdout == ENROLMENT_TOKEN + "\n"
    assert f"the user runs: slapos configure client --token {ENROLMENT_TOKEN} --master-url {URL}" in result.stderr
    assert "admin bob created" in result.stderr
    assert fake.calls == [("slapos.post.v0.user", {"name": "bob", "admin": True, "ttl": 86400})]


def test_user_that_exists_is_one_error_line(fake: FakeMaster, cfg: str) -> None:
    fake.answers["slapos.post.v0.user"] = (409, {"status": 409, "type": "Conflict", "code": "CONFLICT",
                                                 "title": "the user bob exists"})
    result = run(cfg, "user", "create", "bob")
    assert (result.exit_code, result.stderr) == (1, "slapos: error: the user bob exists\n")
    assert result.stdout == ""


@pytest.mark.parametrize(("args", "body", "expiry"), [
    (["--ttl", "never", "--title", "ci"], {"title": "ci", "ttl": None}, "never expires"),
    (["--ttl", "30m"], {"ttl": 1800}, "expires on"),
    ([], {}, "expires on"),
])
def test_token_create(fake: FakeMaster, cfg: str, args: list[str], body: dict[str, Any], expiry: str) -> None:
    fake.answers["slapos.post.v0.api_token"] = (200, {
        "token_id": "0123456789cd", "token": API_TOKEN, "title": body.get("title"),
        "expires_at": None if body.get("ttl", 0) is None else in_one_hour()})
    result = run(cfg, "token", "create", *args)
    assert result.exit_code == 0, result.output
    assert result.stdout == API_TOKEN + "\n"
    assert f"API token 0123456789cd, {expiry}" in result.stderr
    assert fake.calls == [("slapos.post.v0.api_token", body)]


def test_token_list_and_revoke(fake: FakeMaster, cfg: str) -> None:
    tokens = [{"token_id": "0123456789cd", "kind": "api", "title": "ci", "owner": "alice",
               "created_at": "2026-12-01T09:00:00+00:00", "expires_at": None, "last_used_at": None, "state": "active"}]
    fake.answers["slapos.allDocs.v0.api_token_list"] = (200, {"result_list": tokens})
    result = run(cfg, "token", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2].split() == ["0123456789cd", "api", "ci", "alice", "active", "2026-12-01",
                                                     "09:00", "UTC", "never"]
    assert json.loads(run(cfg, "token", "list", "--format", "json").stdout) == tokens
    fake.answers["slapos.remove.v0.api_token"] = (200, {"type": "success", "title": "token 0123456789cd revoked"})
    result = run(cfg, "token", "revoke", API_TOKEN)  # a whole token names its id
    assert (result.exit_code, result.stdout) == (0, "token 0123456789cd revoked\n")
    assert fake.calls[-1] == ("slapos.remove.v0.api_token", {"token_id": "0123456789cd"})


def test_audit_list_since_and_limit(fake: FakeMaster, cfg: str) -> None:
    events = [{"at": "2026-12-02T10:00:05+00:00", "actor": "user:alice", "address": "127.0.0.1",
               "action": "api_token.create", "target": "token:0123456789cd", "outcome": "ok", "detail": ""}]
    fake.answers["slapos.allDocs.v0.audit_event_list"] = (200, {"result_list": events})
    before = time.time()
    result = run(cfg, "audit", "list", "--since", "2h", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[2].split() == ["2026-12-02", "10:00:05", "UTC", "user:alice", "127.0.0.1",
                                                     "api_token.create", "token:0123456789cd", "ok"]
    method, body = fake.calls[-1]
    assert method == "slapos.allDocs.v0.audit_event_list" and body["limit"] == 5
    assert before - 7200 - 1 <= body["since"] <= time.time() - 7200
    result = run(cfg, "audit", "list", "--since", "2026-12-01", "--format", "json")
    assert json.loads(result.stdout) == events
    assert fake.calls[-1][1] == {"since": 1796083200.0}


def test_audit_list_bad_input(fake: FakeMaster, cfg: str) -> None:
    result = run(cfg, "audit", "list", "--since", "last week")
    assert result.exit_code == 1 and result.stderr.startswith("slapos: error: --since: 'last week' is neither")
    assert run(cfg, "audit", "list", "--limit", "0").exit_code == 64  # usage errors: EX_USAGE (issue 11)
    assert run(cfg, "audit", "list", "--format", "xml").exit_code == 64
    assert fake.calls == []


def test_api_token_of_the_configuration_reaches_connect(fake: FakeMaster, tmp_path: Path) -> None:
    path = tmp_path / "script.cfg"
    path.write_text(f"[slapos]\nmaster_url = {URL}\napi_token = {API_TOKEN}\n")
    fake.answers["slapos.allDocs.v0.api_token_list"] = (200, {"result_list": []})
    result = run(str(path), "token", "list")
    assert (result.exit_code, result.stdout) == (0, "No tokens.\n")
    assert fake.connections[0]["api_token"] == API_TOKEN
    assert fake.headers["Authorization"] == f"Bearer {API_TOKEN}"


def test_user_token_gives_an_existing_user_a_new_enrolment_token(fake: FakeMaster, cfg: str) -> None:
    fake.answers["slapos.post.v0.user_token"] = (200, {"name": "bob", "admin": False, "token": ENROLMENT_TOKEN,
                                                       "token_id": "0123456789ab", "expires_at": in_one_hour()})
    result = run(cfg, "user", "token", "bob", "--ttl", "2h")
    assert result.exit_code == 0, result.output
    assert result.stdout == ENROLMENT_TOKEN + "\n"
    assert f"the user runs: slapos configure client --token {ENROLMENT_TOKEN} --master-url {URL}" in result.stderr
    assert fake.calls == [("slapos.post.v0.user_token", {"name": "bob", "ttl": 7200})]


def test_user_revoke_prints_the_masters_line(fake: FakeMaster, cfg: str) -> None:
    fake.answers["slapos.post.v0.user_revocation"] = (
        200, {"type": "success", "title": "Revoked 1 certificates and 2 tokens of alice", "revoked": 3})
    result = run(cfg, "user", "revoke", "alice")
    assert (result.exit_code, result.stdout) == (0, "Revoked 1 certificates and 2 tokens of alice\n")
    assert fake.calls[-1] == ("slapos.post.v0.user_revocation", {"name": "alice"})
