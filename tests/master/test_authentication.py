"""An authenticated master in process (Flask's test client), on SQLite and PostgreSQL: enrolment
with tokens, identity from client certificates and API tokens, the access rules between users,
computers and partitions, revocation, admins, and the audit log.

The client certificate reaches the app as the server hands it over: the DER in the WSGI environ
(``partita.peer_certificate``). Every answer is checked against ``openapi.yaml``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from partita.master.api import openapi
from partita.master.api.authentication import FRONTEND_HEADER, PEER_CERTIFICATE
from partita.master.app import create_app
from partita.master.db.database import Database
from partita.master.db.models import AuditEvent, Computer, IssuedCertificate, Partition, Token
from partita.master.pki import certificates as certs
from partita.master.services import users
from partita.master.services.certificates import Authority
from partita.master.settings import AppSettings
from partita.slap import tokens

SR = "https://example.org/software/hello/software.cfg"
FRONTEND = "10.0.0.9"


@dataclass(frozen=True)
class Identity:
    name: str
    kind: str
    der: bytes
    key: ec.EllipticCurvePrivateKey


def csr_for(key: ec.EllipticCurvePrivateKey) -> str:
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def der_of(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode("ascii")).public_bytes(serialization.Encoding.DER)


class Realm:
    """An authenticated master app, its CA, and helpers to enrol and call as someone."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.authority = Authority(certs.new_ca())
        self.app = create_app(db, AppSettings(mode="master", authentication=True, tls_frontends=(FRONTEND,)),
                              self.authority)
        self.client: FlaskClient = self.app.test_client()
        _owner, token = db.run_write(lambda session: users.ensure_first_admin(
            session, "admin", 3600, self.authority.fingerprint, False))
        assert token is not None
        self.admin = self.enrol(token)

    def call(self, who: Identity | None, method: str, body: dict[str, Any] | None = None, *,
             headers: dict[str, str] | None = None, address: str = "127.0.0.1", check: bool = True) -> Any:
        environ = {"REMOTE_ADDR": address}
        if who is not None:
            environ[PEER_CERTIFICATE] = who.der  # type: ignore[assignment]
        response = self.client.post(f"/{method}", json=body or {}, headers=headers or {}, environ_base=environ)
        if check and response.status_code in (200, 400, 401, 403, 404, 409) and method in openapi.documented_methods():
            openapi.validate_response(method, response.status_code, response.get_json())
        return response

    def ok(self, who: Identity | None, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.call(who, method, body)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def xml(self, who: Identity | None, path: str, **fields: str) -> Any:
        environ = {"REMOTE_ADDR": "127.0.0.1"}
        if who is not None:
            environ[PEER_CERTIFICATE] = who.der  # type: ignore[assignment]
        return self.client.get(f"/{path}", query_string=fields, environ_base=environ)

    def enrol(self, token: str) -> Identity:
        key = certs.new_key()
        answer = self.ok(None, "slapos.post.v0.enrolment", {"token": token, "csr": csr_for(key)})
        return Identity(answer["name"], answer["kind"], der_of(answer["certificate"]), key)

    def user(self, name: str, *, admin: bool = False) -> Identity:
        token = self.ok(self.admin, "slapos.post.v0.user", {"name": name, "admin": admin})["token"]
        return self.enrol(token)

    def computer(self, partitions: int = 2, supplied: bool = True) -> Identity:
        token = self.ok(self.admin, "slapos.post.v0.compute_node_token", {"title": "a node"})["token"]
        computer = self.enrol(token)
        self.ok(computer, "slapos.put.v0.compute_node_format", {
            "computer_guid": computer.name,
            "compute_partition_list": [{"partition_id": f"slappart{i}", "ip_list": [
                {"ip-address": f"127.0.{len(computer.name)}.{i + 1}", "network-interface": "lo"}]}
                for i in range(partitions)]})
        if supplied:  # a master places an instance only where its release is supplied (issue 13)
            self.ok(self.admin, "slapos.post.v0.software_installation",
                    {"computer_guid": computer.name, "software_release_uri": SR})
        return computer

    def partition_identity(self, computer: Identity, partition: str) -> Identity:
        key = certs.new_key()
        answer = self.ok(computer, "slapos.post.v0.compute_partition_certificate",
                         {"computer_guid": computer.name, "compute_partition_id": partition, "csr": csr_for(key)})
        return Identity(f"{computer.name}/{partition}", "partition", der_of(answer["certificate"]), key)

    def request(self, who: Identity, title: str, **extra: Any) -> dict[str, Any]:
        return self.ok(who, "slapos.post.v0.software_instance",
                       {"title": title, "software_release_uri": SR, "software_type": "default", **extra})

    def count(self, model: type) -> int:
        with self.db.read() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def realm(db: Database) -> Realm:
    return Realm(db)


def self_signed_der() -> bytes:
    """A certificate signed by a CA the master does not know."""
    other = certs.new_ca()
    key = certs.new_key()
    certificate = certs.sign_csr(other, csr_for(key), "intruder", 1)
    return certificate.public_bytes(serialization.Encoding.DER)


# ---------------------------------------------------------------------------------------- enrolment

def test_register_a_computer_with_a_token(realm: Realm) -> None:
    computer = realm.computer(partitions=3)
    assert computer.kind == "computer" and computer.name.startswith("COMP-")
    assert realm.ok(computer, "slapos.get.v0.whoami") == {
        "kind": "computer", "name": computer.name, "admin": False, "computer_guid": computer.name,
        "compute_partition_id": None}
    state = realm.ok(computer, "slapos.get.v0.compute_node_state", {"computer_guid": computer.name})
    assert len(state["compute_partition_list"]) == 3


def test_an_enrolment_token_is_single_use(realm: Realm) -> None:
    token = realm.ok(realm.admin, "slapos.post.v0.compute_node_token", {})["token"]
    realm.enrol(token)
    computers = realm.count(Computer)
    again = realm.call(None, "slapos.post.v0.enrolment", {"token": token, "csr": csr_for(certs.new_key())})
    assert again.status_code == 403 and again.get_json()["code"] == "BAD_TOKEN"
    assert realm.count(Computer) == computers


def test_an_expired_token_is_refused(realm: Realm) -> None:
    answer = realm.ok(realm.admin, "slapos.post.v0.compute_node_token", {"ttl": 60})
    realm.db.run_write(lambda session: session.execute(
        update(Token).where(Token.id == answer["token_id"]).values(expires_at=time.time() - 1)))
    refused = realm.call(None, "slapos.post.v0.enrolment", {"token": answer["token"], "csr": csr_for(certs.new_key())})
    assert refused.status_code == 403
    assert refused.get_json()["title"] == "the enrolment token is unknown, expired, revoked or already used"


def test_a_token_for_another_ca_is_refused_and_not_consumed(realm: Realm) -> None:
    answer = realm.ok(realm.admin, "slapos.post.v0.compute_node_token", {})
    parsed = tokens.parse_token(answer["token"], enrolment=True)
    wrong = tokens.Token(parsed.id, parsed.secret, "sha256:" + "0" * 64).text()
    refused = realm.call(None, "slapos.post.v0.enrolment", {"token": wrong, "csr": csr_for(certs.new_key())})
    assert refused.status_code == 403 and "another master" in refused.get_json()["title"]
    assert realm.enrol(answer["token"]).kind == "computer"  # the real token still works


def test_a_bad_csr_does_not_burn_the_token(realm: Realm) -> None:
    token = realm.ok(realm.admin, "slapos.post.v0.compute_node_token", {})["token"]
    refused = realm.call(None, "slapos.post.v0.enrolment", {"token": token, "csr": "not a CSR"})
    assert refused.status_code == 400 and refused.get_json()["code"] == "INVALID"
    assert realm.enrol(token).kind == "computer"


def test_the_ca_certificate_is_public_and_matches_the_token_fingerprint(realm: Realm) -> None:
    answer = realm.client.get("/partita/ca.crt")
    assert answer.status_code == 200
    ca = x509.load_pem_x509_certificate(answer.data)
    token = realm.ok(realm.admin, "slapos.post.v0.compute_node_token", {})["token"]
    assert tokens.parse_token(token, enrolment=True).ca_fingerprint == certs.fingerprint(ca)


def test_only_an_admin_makes_tokens_and_users(realm: Realm) -> None:
    alice = realm.user("alice")
    for method, body in (("slapos.post.v0.compute_node_token", {}), ("slapos.post.v0.user", {"name": "eve"}),
                         ("slapos.post.v0.user_token", {"name": "alice"})):
        refused = realm.call(alice, method, body)
        assert refused.status_code == 403, method
    assert realm.ok(realm.admin, "slapos.post.v0.user", {"name": "bob"})["name"] == "bob"
    assert realm.call(realm.admin, "slapos.post.v0.user", {"name": "bob"}).status_code == 409


# ---------------------------------------------------------------------------------------- identity

def test_no_certificate_is_401_with_a_clear_message(realm: Realm) -> None:
    refused = realm.call(None, "slapos.get.v0.whoami")
    assert refused.status_code == 401
    assert "requires a client certificate or an API token" in refused.get_json()["title"]
    xml = realm.xml(None, "getFullComputerInformation", computer_id="COMP-1")
    assert xml.status_code == 401 and b"client certificate" in xml.data


def test_a_certificate_of_another_ca_is_refused(realm: Realm) -> None:
    intruder = Identity("intruder", "user", self_signed_der(), certs.new_key())
    refused = realm.call(intruder, "slapos.get.v0.whoami")
    assert refused.status_code == 401 and "not known to this master" in refused.get_json()["title"]


def test_garbage_in_place_of_a_certificate_is_refused(realm: Realm) -> None:
    garbage = Identity("garbage", "user", b"\x30\x03\x02\x01\x00", certs.new_key())
    refused = realm.call(garbage, "slapos.get.v0.whoami")
    assert refused.status_code == 401


def test_the_x_slappartition_header_alone_is_refused(realm: Realm) -> None:
    computer = realm.computer()
    realm.request(realm.admin, "mine")
    header = {"Authorization": f"X-SlapPartition computer_id={computer.name}, computer_partition_id=slappart0"}
    refused = realm.call(None, "slapos.get.v0.compute_node_state", {"computer_guid": computer.name}, headers=header)
    assert refused.status_code == 401 and "X-SlapPartition is not an identity" in refused.get_json()["title"]


def test_a_user_certificate_cannot_act_as_a_partition(realm: Realm) -> None:
    computer = realm.computer()
    alice = realm.user("alice")
    header = {"Authorization": f"X-SlapPartition computer_id={computer.name}, computer_partition_id=slappart0"}
    refused = realm.call(alice, "slapos.get.v0.compute_node_state", {"computer_guid": computer.name}, headers=header)
    assert refused.status_code == 403


def test_a_front_end_header_is_believed_only_from_a_front_end(realm: Realm) -> None:
    alice = realm.user("alice")
    pem = x509.load_der_x509_certificate(alice.der).public_bytes(serialization.Encoding.PEM).decode("ascii")
    from urllib.parse import quote
    header = {FRONTEND_HEADER: quote(pem)}
    assert realm.call(None, "slapos.get.v0.whoami", headers=header, address="127.0.0.1").status_code == 403
    answer = realm.call(None, "slapos.get.v0.whoami", headers=header, address=FRONTEND)
    assert answer.status_code == 200 and answer.get_json()["name"] == "alice"
    forged = certs.sign_csr(certs.new_ca(), csr_for(certs.new_key()), "alice", 1)
    header = {FRONTEND_HEADER: quote(forged.public_bytes(serialization.Encoding.PEM).decode("ascii"))}
    assert realm.call(None, "slapos.get.v0.whoami", headers=header, address=FRONTEND).status_code == 401


# ---------------------------------------------------------------------------------------- revocation

def test_a_revoked_computer_is_refused_on_its_next_call(realm: Realm) -> None:
    computer = realm.computer()
    partition = realm.partition_identity(computer, "slappart0")
    assert realm.call(computer, "slapos.get.v0.compute_node_state", {"computer_guid": computer.name}).status_code == 200
    answer = realm.ok(realm.admin, "slapos.post.v0.compute_node_revocation", {"computer_guid": computer.name})
    assert answer["revoked"] == 2  # the computer's and its partition's
    refused = realm.call(computer, "slapos.get.v0.compute_node_state", {"computer_guid": computer.name})
    assert refused.status_code == 401 and refused.get_json()["code"] == "REVOKED"
    assert realm.call(partition, "slapos.get.v0.whoami").status_code == 401
    listed = realm.ok(realm.admin, "slapos.get.v0.compute_node", {"computer_guid": computer.name})
    assert listed["certificate"]["state"] == "revoked"


def test_an_expired_certificate_is_refused(realm: Realm) -> None:
    alice = realm.user("alice")
    realm.db.run_write(lambda session: session.execute(update(IssuedCertificate).values(not_after=time.time() - 1)))
    refused = realm.call(alice, "slapos.get.v0.whoami")
    assert refused.status_code == 401 and "expired" in refused.get_json()["title"]


def test_a_computer_renews_its_certificate(realm: Realm) -> None:
    computer = realm.computer()
    key = certs.new_key()
    answer = realm.ok(computer, "slapos.post.v0.compute_node_certificate",
                      {"computer_guid": computer.name, "csr": csr_for(key)})
    renewed = Identity(computer.name, "computer", der_of(answer["certificate"]), key)
    assert realm.ok(renewed, "slapos.get.v0.whoami")["name"] == computer.name
    assert realm.ok(computer, "slapos.get.v0.whoami")["name"] == computer.name  # the old one lives on
    other = realm.computer()
    refused = realm.call(other, "slapos.post.v0.compute_node_certificate",
                         {"computer_guid": computer.name, "csr": csr_for(certs.new_key())})
    assert refused.status_code == 403


def test_a_computer_enrols_again_after_its_certificate_expired(realm: Realm) -> None:
    computer = realm.computer(partitions=2)
    realm.db.run_write(lambda session: session.execute(update(IssuedCertificate).values(not_after=time.time() - 1)))
    assert realm.call(computer, "slapos.get.v0.whoami").status_code == 401
    realm.admin = Identity("admin", "user", realm.admin.der, realm.admin.key)
    # the admin's own certificate expired too in this test: a fresh admin token from `master init`
    _owner, token = realm.db.run_write(lambda session: users.ensure_first_admin(
        session, "admin", 3600, realm.authority.fingerprint, True))
    assert token is not None
    realm.admin = realm.enrol(token)
    again = realm.ok(realm.admin, "slapos.post.v0.compute_node_token", {"computer_guid": computer.name})
    assert again["computer_guid"] == computer.name
    back = realm.enrol(again["token"])
    assert back.name == computer.name  # the same computer, with its partitions
    state = realm.ok(back, "slapos.get.v0.compute_node_state", {"computer_guid": computer.name})
    assert len(state["compute_partition_list"]) == 2


# ---------------------------------------------------------------------------------------- isolation

def test_computer_a_cannot_read_or_change_computer_b(realm: Realm) -> None:
    a, b = realm.computer(), realm.computer()
    realm.request(realm.admin, "on-some-node")
    for method, body in (
        ("slapos.get.v0.compute_node_state", {"computer_guid": b.name}),
        ("slapos.put.v0.compute_node_format", {"computer_guid": b.name, "compute_partition_list": []}),
        ("slapos.allDocs.v0.compute_node_instance_list", {"computer_guid": b.name}),
        ("slapos.put.v0.software_installation_reported_state",
         {"computer_guid": b.name, "software_release_uri": SR, "reported_state": "available"}),
        ("slapos.post.v0.compute_partition_certificate",
         {"computer_guid": b.name, "compute_partition_id": "slappart0", "csr": csr_for(certs.new_key())}),
    ):
        assert realm.call(a, method, body).status_code == 403, method
    assert realm.xml(a, "getFullComputerInformation", computer_id=b.name).status_code == 403
    with realm.db.read() as session:
        assert len(session.scalars(select(Computer).where(Computer.reference == b.name)).one().partitions) == 2


def test_user_x_cannot_see_or_destroy_user_y_instances(realm: Realm) -> None:
    realm.computer(partitions=3)
    alice, bob = realm.user("alice"), realm.user("bob")
    mine = realm.request(alice, "mine")
    assert realm.call(bob, "slapos.get.v0.software_instance", {"instance_guid": mine["instance_guid"]}).status_code == 403
    assert realm.ok(bob, "slapos.allDocs.v0.instance_tree_list")["result_list"] == []
    assert realm.call(bob, "slapos.get.v0.instance_tree", {"title": "mine"}).status_code == 404
    # bob's "destroy mine" is a request in bob's own namespace: nothing of alice's changes
    realm.call(bob, "slapos.post.v0.software_instance", {"title": "mine", "software_release_uri": SR,
                                                         "software_type": "default", "state": "destroyed"})
    assert realm.ok(alice, "slapos.get.v0.software_instance",
                    {"instance_guid": mine["instance_guid"]})["state"] == "started"
    assert [t["title"] for t in realm.ok(alice, "slapos.allDocs.v0.instance_tree_list")["result_list"]] == ["mine"]


def test_a_partition_publishes_only_for_itself_and_requests_inside_its_tree(realm: Realm) -> None:
    computer = realm.computer(partitions=4)
    alice, bob = realm.user("alice"), realm.user("bob")
    root = realm.request(alice, "root")
    other = realm.request(bob, "bobs")
    me = realm.partition_identity(computer, root["compute_partition_id"])
    child = realm.request(me, "child")  # lands in alice's tree
    assert child["root_instance_title"] == "root" if "root_instance_title" in child else True
    realm.ok(me, "slapos.put.v0.software_instance_connection_parameter",
             {"instance_guid": root["instance_guid"], "connection_parameter_dict": {"url": "http://x"}})
    for target in (other["instance_guid"], child["instance_guid"]):
        refused = realm.call(me, "slapos.put.v0.software_instance_connection_parameter",
                             {"instance_guid": target, "connection_parameter_dict": {"url": "http://evil"}})
        assert refused.status_code == 403, target
    assert realm.call(me, "slapos.get.v0.software_instance", {"instance_guid": other["instance_guid"]}).status_code == 403
    assert [t["title"] for t in realm.ok(bob, "slapos.allDocs.v0.instance_tree_list")["result_list"]] == ["bobs"]
    assert realm.ok(bob, "slapos.get.v0.software_instance",
                    {"instance_guid": other["instance_guid"]})["connection_parameters"] == {}
    # the partition may not act as another partition, nor manage its computer
    bobs_partition = other["compute_partition_id"]
    header = {"Authorization": f"X-SlapPartition computer_id={computer.name}, computer_partition_id={bobs_partition}"}
    assert realm.call(me, "slapos.get.v0.whoami", headers=header).status_code == 403
    assert realm.call(me, "slapos.get.v0.compute_node_state", {"computer_guid": computer.name}).status_code == 403


def test_users_supply_to_registered_computers_only_and_remove_only_their_own(realm: Realm) -> None:
    computer = realm.computer()
    alice = realm.user("alice")
    supply = {"computer_guid": computer.name, "software_release_uri": SR}
    realm.ok(alice, "slapos.post.v0.software_installation", supply)
    assert realm.call(alice, "slapos.post.v0.software_installation",
                      {**supply, "state": "destroyed"}).status_code == 403
    assert realm.call(alice, "slapos.post.v0.software_installation",
                      {**supply, "computer_guid": "COMP-999"}).status_code == 404
    realm.ok(realm.admin, "slapos.post.v0.software_installation", {**supply, "state": "destroyed"})


# ---------------------------------------------------------------------------------------- tokens, audit

def test_api_tokens_authenticate_until_revoked(realm: Realm) -> None:
    alice = realm.user("alice")
    made = realm.ok(alice, "slapos.post.v0.api_token", {"title": "ci"})
    bearer = {"Authorization": f"Bearer {made['token']}"}
    assert realm.call(None, "slapos.get.v0.whoami", headers=bearer).get_json()["name"] == "alice"
    listed = realm.ok(alice, "slapos.allDocs.v0.api_token_list")["result_list"]
    assert [t["last_used_at"] is not None for t in listed if t["kind"] == "api"] == [True]
    assert {(t["kind"], t["state"]) for t in listed} == {("user-enrolment", "used"), ("api", "active")}
    assert [t["token_id"] for t in listed if t["kind"] == "api"] == [made["token_id"]]
    bob = realm.user("bob")
    assert realm.call(bob, "slapos.remove.v0.api_token", {"token_id": made["token_id"]}).status_code == 404
    realm.ok(alice, "slapos.remove.v0.api_token", {"token_id": made["token_id"]})
    refused = realm.call(None, "slapos.get.v0.whoami", headers=bearer)
    assert refused.status_code == 401 and refused.get_json()["code"] == "REVOKED"
    assert realm.call(None, "slapos.get.v0.whoami", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    computer = realm.computer()
    assert realm.call(computer, "slapos.post.v0.api_token", {}).status_code == 403


def test_the_audit_log_records_changes_and_refusals(realm: Realm) -> None:
    computer = realm.computer()
    alice = realm.user("alice")
    realm.request(alice, "mine")
    realm.call(alice, "slapos.post.v0.user", {"name": "eve"})  # refused: not an admin
    realm.ok(realm.admin, "slapos.post.v0.compute_node_revocation", {"computer_guid": computer.name})
    events = realm.ok(realm.admin, "slapos.allDocs.v0.audit_event_list", {"limit": 1000})["result_list"]
    seen = {(e["actor"], e["action"], e["outcome"]) for e in events}
    assert ("user:admin", "user.create", "ok") in seen
    assert ("anonymous", "computer.register", "ok") in seen
    assert ("user:alice", "instance.request", "ok") in seen
    assert ("user:alice", "refused POST /slapos.post.v0.user", "refused") in seen
    assert ("user:admin", "computer.revoke", "ok") in seen
    assert {e["address"] for e in events} == {"127.0.0.1", "slapos master init"}
    own = realm.ok(alice, "slapos.allDocs.v0.audit_event_list")["result_list"]
    assert own and {e["actor"] for e in own} == {"user:alice"}
    since = realm.ok(realm.admin, "slapos.allDocs.v0.audit_event_list", {"since": time.time() + 60})["result_list"]
    assert since == []
    assert realm.count(AuditEvent) >= len(events)


def test_a_revoked_user_is_refused_with_all_their_tokens(realm: Realm) -> None:
    alice = realm.user("alice")
    bearer = {"Authorization": f"Bearer {realm.ok(alice, 'slapos.post.v0.api_token', {})['token']}"}
    assert realm.call(alice, "slapos.post.v0.user_revocation", {"name": "bob"}).status_code == 403
    assert realm.call(realm.admin, "slapos.post.v0.user_revocation", {"name": "admin"}).status_code == 409
    assert realm.call(realm.admin, "slapos.post.v0.user_revocation", {"name": "nobody"}).status_code == 404
    answer = realm.ok(realm.admin, "slapos.post.v0.user_revocation", {"name": "alice"})
    assert answer["revoked"] == 3  # her certificate, her (used) enrolment token, her API token
    assert realm.call(alice, "slapos.get.v0.whoami").get_json()["code"] == "REVOKED"
    assert realm.call(None, "slapos.get.v0.whoami", headers=bearer).get_json()["code"] == "REVOKED"


def test_a_freed_partition_s_certificate_never_acts_for_the_next_instance(realm: Realm) -> None:
    computer = realm.computer(partitions=1)
    alice, bob = realm.user("alice"), realm.user("bob")
    hers = realm.request(alice, "hers")
    kept = realm.partition_identity(computer, hers["compute_partition_id"])  # what her code could copy away
    realm.request(alice, "hers", state="destroyed")
    realm.ok(computer, "slapos.put.v0.software_instance_reported_state",
             {"instance_guid": hers["instance_guid"], "reported_state": "destroyed"})
    his = realm.request(bob, "his")
    assert his["compute_partition_id"] == hers["compute_partition_id"]  # the same partition, reused
    refused = realm.call(kept, "slapos.put.v0.software_instance_connection_parameter",
                         {"instance_guid": his["instance_guid"], "connection_parameter_dict": {"url": "http://evil"}})
    assert refused.status_code == 401 and refused.get_json()["code"] == "REVOKED"
    fresh = realm.partition_identity(computer, his["compute_partition_id"])
    realm.ok(fresh, "slapos.put.v0.software_instance_connection_parameter",
             {"instance_guid": his["instance_guid"], "connection_parameter_dict": {"url": "http://his"}})


def test_slap_xml_partition_certificate_is_the_same_answer_while_valid(realm: Realm) -> None:
    from partita.master.api.slap_xml.marshal import loads
    computer = realm.computer(partitions=1)
    realm.request(realm.admin, "mine")

    def fetch() -> dict[str, str]:
        answer = realm.xml(computer, "getComputerPartitionCertificate", computer_id=computer.name,
                           computer_partition_id="slappart0")
        assert answer.status_code == 200, answer.data
        return loads(answer.data)

    first, second = fetch(), fetch()
    assert first == second and "PRIVATE KEY" in first["key"] and "CERTIFICATE" in first["certificate"]
    key = serialization.load_pem_private_key(first["key"].encode(), None)
    certificate = x509.load_pem_x509_certificate(first["certificate"].encode())
    assert certs.same_public_key(key, certificate)  # type: ignore[arg-type]
    with realm.db.read() as session:  # the catalog keeps the certificate and a label, never the key
        rows = session.scalars(select(IssuedCertificate).where(IssuedCertificate.kind == "partition")).all()
    assert len(rows) == 1 and rows[0].key_label and "PRIVATE" not in (rows[0].pem or "")
    realm.db.run_write(lambda session: session.execute(
        update(IssuedCertificate).where(IssuedCertificate.kind == "partition")
        .values(not_before=time.time() - 1000, not_after=time.time() + 10)))  # now expiring
    third = fetch()
    assert third["certificate"] != first["certificate"] and third["key"] != first["key"]
    assert fetch() == third


def test_only_the_hosting_computer_frees_a_partition(realm: Realm) -> None:
    """Issue 10: an owner's or an admin's "destroyed" report does not free a partition (its node has
    not wiped it yet: the next tenant would find the files inside); they request the state
    destroyed, and the partition is freed when its computer reports it destroyed."""
    computer, other = realm.computer(partitions=1), realm.computer(partitions=1)
    alice = realm.user("alice")
    hers = realm.request(alice, "hers")
    realm.request(alice, "hers", state="destroyed")
    report = {"instance_guid": hers["instance_guid"], "reported_state": "destroyed"}
    for who in (alice, realm.admin, other):
        refused = realm.call(who, "slapos.put.v0.software_instance_reported_state", report)
        assert refused.status_code == 403, (who.name, refused.get_json())
    with realm.db.read() as session:
        partition = session.scalar(select(Partition).where(Partition.reference == hers["compute_partition_id"])
                                   .join(Computer).where(Computer.reference == computer.name))
        assert partition is not None and partition.state != "free" and partition.instance is not None
    refused = realm.client.post("/destroyedComputerPartition", data={
        "computer_id": computer.name, "computer_partition_id": hers["compute_partition_id"]},
        environ_base={"REMOTE_ADDR": "127.0.0.1", PEER_CERTIFICATE: alice.der})
    assert refused.status_code == 403
    # nor the partition's own certificate (its instance's code holds it), on either protocol
    own = realm.partition_identity(computer, hers["compute_partition_id"])
    assert realm.call(own, "slapos.put.v0.software_instance_reported_state", report).status_code == 403
    refused = realm.client.post("/destroyedComputerPartition", data={
        "computer_id": computer.name, "computer_partition_id": hers["compute_partition_id"]},
        environ_base={"REMOTE_ADDR": "127.0.0.1", PEER_CERTIFICATE: own.der})
    assert refused.status_code == 403
    # the computer, as SlapOS's node says it (SLAP XML, acting for its partition)
    freed = realm.client.post("/destroyedComputerPartition", data={
        "computer_id": computer.name, "computer_partition_id": hers["compute_partition_id"]},
        environ_base={"REMOTE_ADDR": "127.0.0.1", PEER_CERTIFICATE: computer.der})
    assert freed.status_code == 200, freed.data
    with realm.db.read() as session:
        partition = session.scalar(select(Partition).where(Partition.reference == hers["compute_partition_id"])
                                   .join(Computer).where(Computer.reference == computer.name))
        assert partition is not None and partition.state == "free" and partition.instance is None
