"""slap.client.MasterClient against a real master on loopback, plus its transport seam."""
from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any

import pytest

from partita.slap.client import WAIT_MARGIN, MasterClient, connect
from partita.slap.errors import ClientError, MasterRefused, MasterUnreachable, RemoteError
from tests.slap.live_master import COMPUTER, SR, LiveMaster, closed_port, master  # noqa: F401


def test_request_allocates_a_partition_and_is_idempotent(master: LiveMaster) -> None:
    doc = master.client.request_instance("web", SR, parameters={"foo": "bar"})
    assert doc["compute_partition_id"] == "slappart0"
    assert doc["computer_guid"] == COMPUTER
    assert doc["parameters"] == {"foo": "bar"}
    assert doc["state"] == "started"
    again = master.client.request_instance("web", SR, parameters={"foo": "bar"})
    assert again["instance_guid"] == doc["instance_guid"]
    assert again["compute_partition_id"] == "slappart0"


def test_get_instance_and_tree_and_list(master: LiveMaster) -> None:
    doc = master.client.request_instance("web", SR)
    assert master.client.get_instance(doc["instance_guid"])["title"] == "web"
    assert master.client.get_instance_tree("web")["instance_guid"] == doc["instance_guid"]
    trees = master.client.list_instance_trees()
    assert [t["title"] for t in trees] == ["web"]
    assert trees[0]["compute_partition_id"] == "slappart0"


def test_request_without_free_partition_is_stored_waiting(master: LiveMaster) -> None:
    for i in range(3):
        master.client.request_instance(f"i{i}", SR)
    doc = master.client.request_instance("extra", SR)
    assert doc["compute_partition_id"] is None
    assert "waiting for a free partition" in doc["status_reason"]


def test_supply_and_software_installations(master: LiveMaster) -> None:
    master.client.supply(COMPUTER, SR)
    installations = master.client.list_software_installations(COMPUTER)
    assert [(i["software_release_uri"], i["state"]) for i in installations] == [(SR, "available")]
    master.client.supply(COMPUTER, SR, "destroyed")
    assert master.client.list_software_installations(COMPUTER)[0]["state"] == "destroyed"


def test_node_calls(master: LiveMaster) -> None:
    doc = master.client.request_instance("web", SR)
    guid = doc["instance_guid"]
    state = master.client.get_compute_node_state(COMPUTER)
    assert state["computer_guid"] == COMPUTER
    busy = [p for p in state["compute_partition_list"] if p["instance"]]
    assert [p["compute_partition_id"] for p in busy] == ["slappart0"]
    master.act_as_node(guid, {"url": "http://127.0.1.1:8080/"})
    master.client.bang(guid, "again")
    doc = master.client.get_instance(guid)
    assert doc["reported_state"] == "started"
    assert doc["connection_parameters"] == {"url": "http://127.0.1.1:8080/"}


def test_wait_compute_node_change_answers_after_its_timeout(master: LiveMaster) -> None:
    generation = master.client.get_compute_node_state(COMPUTER)["generation"]
    started = time.monotonic()
    answer = master.client.wait_compute_node_change(COMPUTER, generation, timeout=0.3)
    assert answer["changed"] is False
    assert time.monotonic() - started < 5
    assert master.client.wait_compute_node_change(COMPUTER, generation - 1, timeout=5)["changed"] is True


def test_partition_identity_requests_in_its_tree(master: LiveMaster) -> None:
    master.client.request_instance("root", SR)
    with master.partition_client("slappart0") as child_client:
        child = child_client.request_instance("child", SR)
    assert child["root_instance_title"] == "root"
    assert [t["title"] for t in master.client.list_instance_trees()] == ["root"]


def test_unknown_instance_is_a_remote_not_found(master: LiveMaster) -> None:
    with pytest.raises(RemoteError) as raised:
        master.client.get_instance("SOFTINST-nope")
    assert raised.value.code == "NOT_FOUND"
    assert raised.value.status == 404
    assert "SOFTINST-nope" in str(raised.value)


def test_invalid_body_is_a_remote_invalid(master: LiveMaster) -> None:
    with pytest.raises(RemoteError) as raised:
        master.client.call("slapos.get.v0.software_instance", {})
    assert raised.value.status == 400
    assert raised.value.code == "INVALID"


def test_unknown_method_is_a_remote_not_found(master: LiveMaster) -> None:
    with pytest.raises(RemoteError) as raised:
        master.client.call("slapos.get.v0.no_such_method", {})
    assert (raised.value.code, raised.value.status) == ("NOT_FOUND", 404)


def test_non_json_error_gives_first_line_and_http_code(master: LiveMaster) -> None:
    with pytest.raises(RemoteError) as raised:
        master.client.call("no-such-path", {})  # outside the JSON API: a plain-text 404
    assert raised.value.code == "HTTP_404"
    assert raised.value.status == 404
    assert str(raised.value).startswith("404 Not Found")
    assert "\n" not in str(raised.value)


def test_closed_port_is_master_unreachable() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(MasterUnreachable) as raised:
        MasterClient(url, timeout=2).list_instance_trees()
    assert str(raised.value).startswith(f"cannot reach the master at {url}: ")
    assert "refused" in str(raised.value).lower()
    assert isinstance(raised.value, MasterRefused)  # the kind, for the node's back-off
    with pytest.raises(MasterRefused):  # over TLS too: refused before any handshake
        MasterClient(f"https://127.0.0.1:{closed_port()}", timeout=2).list_instance_trees()


def test_a_reset_connection_is_master_refused() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        thread = threading.Thread(target=_reset_one, args=(listener,), daemon=True)
        thread.start()
        with pytest.raises(MasterRefused) as raised:
            MasterClient(url, timeout=5).list_instance_trees()
        thread.join(5)
    assert str(raised.value).startswith(f"cannot reach the master at {url}: ")


def _reset_one(listener: socket.socket) -> None:
    """Accept one connection, read the request, then close it with a reset (linger 0)."""
    connection, _ = listener.accept()
    connection.recv(65536)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def test_silent_server_hits_the_read_deadline() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts connections (backlog) but never answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(MasterUnreachable, match="no answer within") as raised:
            MasterClient(url, timeout=0.5).list_instance_trees()
        assert not isinstance(raised.value, MasterRefused)
        assert time.monotonic() - started < 5


def test_bad_url_is_a_client_error() -> None:
    with pytest.raises(ClientError, match="bad master URL"):
        MasterClient("localhost-without-scheme").list_instance_trees()


class FakeResponse:
    def __init__(self, status: int, body: Any = None, text: str = "") -> None:
        self.status_code = status
        self._body = body
        self.text = text
        self.reason = "Fake"

    def json(self) -> Any:
        if self._body is None:
            raise ValueError("not JSON")
        return self._body


class FakeSession:
    """The transport seam: what `MasterClient` needs of a requests.Session."""

    def __init__(self, response: FakeResponse) -> None:
        self.response = response
        self.headers: dict[str, str] = {}
        self.cert = None
        self.verify = True
        self.calls: list[tuple[str, Any, Any, dict[str, str]]] = []
        self.verified: list[Any] = []

    def post(self, url: str, json: Any = None, timeout: Any = None, verify: Any = True) -> FakeResponse:
        self.verified.append(verify)
        self.calls.append((url, json, timeout, dict(self.headers)))
        return self.response

    def close(self) -> None:
        pass


def test_fake_session_sees_partition_header_and_deadlines() -> None:
    session = FakeSession(FakeResponse(200, {"changed": False}))
    client = MasterClient("http://master/", timeout=7, partition=("COMP-1", "slappart3"),
                          session=session)  # type: ignore[arg-type]
    client.wait_compute_node_change("COMP-1", 4, timeout=20)
    url, body, timeout, headers = session.calls[0]
    assert url == "http://master/slapos.wait.v0.compute_node_change"
    assert body == {"computer_guid": "COMP-1", "generation": 4, "timeout": 20}
    assert timeout == (7.0, 20 + WAIT_MARGIN)
    assert headers["Authorization"] == "X-SlapPartition computer_id=COMP-1, computer_partition_id=slappart3"
    client.get_instance("x")
    assert session.calls[1][2] == (7.0, 7.0)


def test_fake_session_error_shapes() -> None:
    json_error = FakeSession(FakeResponse(409, {"status": 409, "type": "Conflict", "title": "no",
                                                "code": "CONFLICT"}))
    with pytest.raises(RemoteError) as raised:
        MasterClient("http://m", session=json_error).get_instance("x")  # type: ignore[arg-type]
    assert (str(raised.value), raised.value.code, raised.value.status) == ("no", "CONFLICT", 409)
    slapproxy_error = FakeSession(FakeResponse(403, {"status": 403, "type": "Forbidden", "title": "nope"}))
    with pytest.raises(RemoteError) as raised:
        MasterClient("http://m", session=slapproxy_error).get_instance("x")  # type: ignore[arg-type]
    assert (raised.value.code, raised.value.status) == ("HTTP_403", 403)
    html = FakeSession(FakeResponse(502, None, "\n<html>Bad gateway</html>\nmore"))
    with pytest.raises(RemoteError) as raised:
        MasterClient("http://m", session=html).get_instance("x")  # type: ignore[arg-type]
    assert (str(raised.value), raised.value.code, raised.value.status) == \
        ("<html>Bad gateway</html>", "HTTP_502", 502)


def test_api_token_is_a_bearer_header_and_the_ca_file_is_verified_on_every_call() -> None:
    session = FakeSession(FakeResponse(200, {"kind": "user", "name": "alice", "admin": False}))
    client = MasterClient("https://m", ca_file="/etc/partita/ca.crt", api_token=" 0123456789ab.secret ",
                          session=session)  # type: ignore[arg-type]
    assert client.whoami()["name"] == "alice"
    url, body, _timeout, headers = session.calls[0]
    assert (url, body) == ("https://m/slapos.get.v0.whoami", {})
    assert headers["Authorization"] == "Bearer 0123456789ab.secret"
    assert session.verified == ["/etc/partita/ca.crt"] and session.verify == "/etc/partita/ca.crt"


def test_without_ca_file_requests_default_verification_is_kept() -> None:
    session = FakeSession(FakeResponse(200, {}))
    MasterClient("https://m", session=session).whoami()  # type: ignore[arg-type]
    assert session.verified == [True]


def test_partition_and_api_token_are_exclusive() -> None:
    with pytest.raises(ClientError, match="not both"):
        MasterClient("https://m", partition=("C", "p"), api_token="x",
                     session=FakeSession(FakeResponse(200, {})))  # type: ignore[arg-type]


def test_connect_passes_ca_file_token_and_the_certificate_pair() -> None:
    client = connect("https://m", key_file="/k", cert_file="/c", ca_file="/ca", api_token="t")
    assert (client.session.cert, client.verify, client.cert_file) == (("/c", "/k"), "/ca", "/c")
    assert client.session.headers["Authorization"] == "Bearer t"
    assert connect("https://m", cert_file="/c").session.cert is None


IDENTITY_CALLS = [
    (lambda c: c.create_compute_node_token(), "slapos.post.v0.compute_node_token", {}),
    (lambda c: c.create_compute_node_token("rack 4", 600, "COMP-1"), "slapos.post.v0.compute_node_token",
     {"title": "rack 4", "ttl": 600, "computer_guid": "COMP-1"}),
    (lambda c: c.revoke_compute_node("COMP-1"), "slapos.post.v0.compute_node_revocation", {"computer_guid": "COMP-1"}),
    (lambda c: c.get_compute_node("COMP-1"), "slapos.get.v0.compute_node", {"computer_guid": "COMP-1"}),
    (lambda c: c.create_user("bob"), "slapos.post.v0.user", {"name": "bob", "admin": False}),
    (lambda c: c.create_user("bob", admin=True, ttl=60), "slapos.post.v0.user",
     {"name": "bob", "admin": True, "ttl": 60}),
    (lambda c: c.create_user_token("bob", 60), "slapos.post.v0.user_token", {"name": "bob", "ttl": 60}),
    (lambda c: c.create_api_token(), "slapos.post.v0.api_token", {}),
    (lambda c: c.create_api_token("ci", 3600), "slapos.post.v0.api_token", {"title": "ci", "ttl": 3600}),
    (lambda c: c.create_api_token("ci", never_expires=True), "slapos.post.v0.api_token", {"title": "ci", "ttl": None}),
    (lambda c: c.revoke_api_token("0123456789ab"), "slapos.remove.v0.api_token", {"token_id": "0123456789ab"}),
]


@pytest.mark.parametrize(("call", "method", "body"), IDENTITY_CALLS)
def test_identity_methods_send_their_json_method_and_body(call: Any, method: str, body: dict[str, Any]) -> None:
    session = FakeSession(FakeResponse(200, {"type": "success", "title": "done"}))
    client = MasterClient("https://m", session=session)  # type: ignore[arg-type]
    assert call(client) == {"type": "success", "title": "done"}
    assert session.calls[0][:2] == (f"https://m/{method}", body)


@pytest.mark.parametrize(("call", "method", "body"), [
    (lambda c: c.list_compute_nodes(), "slapos.allDocs.v0.compute_node_list", {}),
    (lambda c: c.list_api_tokens(), "slapos.allDocs.v0.api_token_list", {}),
    (lambda c: c.list_audit_events(), "slapos.allDocs.v0.audit_event_list", {}),
    (lambda c: c.list_audit_events(since=1700000000.5, limit=5), "slapos.allDocs.v0.audit_event_list",
     {"since": 1700000000.5, "limit": 5}),
])
def test_identity_lists_return_the_result_list(call: Any, method: str, body: dict[str, Any]) -> None:
    session = FakeSession(FakeResponse(200, {"result_list": [{"a": 1}]}))
    assert call(MasterClient("https://m", session=session)) == [{"a": 1}]  # type: ignore[arg-type]
    assert session.calls[0][:2] == (f"https://m/{method}", body)


def test_revoked_certificate_answer_is_a_remote_error_with_its_title() -> None:
    session = FakeSession(FakeResponse(401, {"status": 401, "type": "Revoked", "code": "REVOKED",
                                             "title": "the certificate 1f was revoked on 2026-12-01"}))
    with pytest.raises(RemoteError) as raised:
        MasterClient("https://m", session=session).whoami()  # type: ignore[arg-type]
    assert (str(raised.value), raised.value.code, raised.value.status) == \
        ("the certificate 1f was revoked on 2026-12-01", "REVOKED", 401)
