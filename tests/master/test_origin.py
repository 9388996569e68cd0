"""Issue 10: cross-site requests (master/api/origin.py). A web page in the user's browser tries to
drive the loopback proxy: form posts, foreign origins, DNS rebinding; every try is refused and
changes nothing, while the real clients' requests pass."""
from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from partita.master.api import origin
from partita.master.api.slap_xml.marshal import dumps
from partita.master.app import create_app
from partita.master.cli.start import allowed_hosts
from partita.master.db.database import Database
from partita.master.db.models import SoftwareInstance
from partita.master.settings import LOOPBACK_HOSTS, AppSettings
from partita.slap.config import MasterConfig
from tests.slap.live_master import LiveMaster, master  # noqa: F401

SR = "/opt/software/demo/software.cfg"
BODY = {"title": "t", "software_release_uri": SR, "software_type": "default"}
XML_FORM = {"software_release": SR, "partition_reference": "t", "partition_parameter_xml": dumps({}),
            "filter_xml": dumps({}), "software_type": "default", "state": dumps(None), "shared_xml": dumps(False)}


# ------------------------------------------------------------------------------------ pure rules

@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8080", "127.0.0.1:8080", "[::1]:8080", "10.1.2.3",
                                  "[2001:db8::1]", "localhost.:80"])
def test_our_hosts(host: str) -> None:
    assert origin.host_allowed(host, LOOPBACK_HOSTS)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.1.nip.io",
                                  "", "[::1"])
def test_foreign_hosts(host: str) -> None:
    assert not origin.host_allowed(host, LOOPBACK_HOSTS)
    assert origin.host_allowed(host, ("*",))


def test_origins() -> None:
    assert origin.origin_allowed("http://localhost:8080", "localhost:8080")
    assert not origin.origin_allowed("http://localhost:9999", "localhost:8080")  # another local site
    assert not origin.origin_allowed("https://evil.example", "localhost:8080")
    assert not origin.origin_allowed("null", "localhost:8080")


def test_the_master_answers_to_its_configured_names() -> None:
    config = MasterConfig(database_uri="sqlite://", host="0.0.0.0", port=1, workers=1, threads=1,
                          tls_names=("master.example",), allowed_hosts=("lb.example",))
    names = allowed_hosts(config)
    assert {"localhost", "master.example", "lb.example"} <= set(names)
    assert origin.host_allowed("master.example:8443", names) and not origin.host_allowed("evil.example", names)


# ------------------------------------------------------------------------------- as an attacker

def instances(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count(SoftwareInstance.id)))


def refused(answer: Any, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    if answer.mimetype == "application/json":
        assert answer.get_json()["code"] == code
    else:  # SLAP XML: one text line
        assert answer.text.strip() and "Traceback" not in answer.text


def test_a_form_post_to_the_json_api_is_refused(client: FlaskClient, db: Database) -> None:
    import json
    for content_type in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", None):
        answer = client.post("/slapos.post.v0.software_instance", data=json.dumps(BODY), content_type=content_type)
        refused(answer, 415, "BAD_CONTENT_TYPE")
    assert instances(db) == 0
    assert client.post("/slapos.post.v0.software_instance", json=BODY).status_code == 200


@pytest.mark.parametrize("page", ["https://evil.example", "http://localhost:9999", "null"])
def test_a_foreign_origin_is_refused_on_both_protocols(client: FlaskClient, db: Database, page: str) -> None:
    headers = {"Origin": page}
    refused(client.post("/slapos.post.v0.software_instance", json=BODY, headers=headers), 403, "CROSS_ORIGIN")
    refused(client.post("/requestComputerPartition", data=XML_FORM, headers=headers), 403, "CROSS_ORIGIN")
    assert instances(db) == 0


def test_the_servers_own_origin_passes(client: FlaskClient) -> None:
    answer = client.post("/slapos.post.v0.software_instance", json=BODY, headers={"Origin": "http://localhost"})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("host", ["evil.example", "rebind.evil.example:8080"])
def test_dns_rebinding_is_refused(client: FlaskClient, db: Database, host: str) -> None:
    """The page's name now resolves to 127.0.0.1: its requests carry its own name as Host."""
    headers = {"Host": host}
    refused(client.post("/slapos.post.v0.software_instance", json=BODY, headers=headers), 421, "MISDIRECTED_REQUEST")
    refused(client.post("/requestComputerPartition", data=XML_FORM, headers=headers), 421, "MISDIRECTED_REQUEST")
    refused(client.get("/getFullComputerInformation", query_string={"computer_id": "local_computer"},
                       headers=headers), 421, "MISDIRECTED_REQUEST")
    refused(client.post("/slapos.allDocs.v0.instance_tree_list", json={}, headers=headers), 421, "MISDIRECTED_REQUEST")
    assert instances(db) == 0


def test_configured_names_pass(db: Database) -> None:
    app = create_app(db, AppSettings(mode="master", allowed_hosts=(*LOOPBACK_HOSTS, "master.example")))
    client = app.test_client()
    answer = client.post("/slapos.post.v0.software_instance", json=BODY, headers={"Host": "master.example:8443"})
    assert answer.status_code == 200, answer.text


def test_a_real_server_on_loopback_refuses_a_browser_page(master: LiveMaster) -> None:  # noqa: F811
    """Over real sockets: what a page (rebound name, cross-site form post) sends is refused, while
    Partita's own client (requests' json=, the address as Host) keeps working."""
    import http.client
    import json
    from urllib.parse import urlsplit

    address = urlsplit(master.url)
    body = json.dumps(BODY)

    def send(headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        try:
            connection.request("POST", "/slapos.post.v0.software_instance", body=body, headers=headers)
            answer = connection.getresponse()
            return answer.status, json.loads(answer.read())
        finally:
            connection.close()

    rebound = {"Host": f"rebind.evil.example:{address.port}", "Content-Type": "application/json"}
    assert send(rebound)[0] == 421
    form = {"Host": address.netloc, "Content-Type": "text/plain", "Origin": "https://evil.example"}
    status, error = send(form)
    assert (status, error["code"]) == (403, "CROSS_ORIGIN")
    form.pop("Origin")
    assert send(form)[0] == 415
    assert master.client.list_instance_trees() == []  # nothing was stored, and our client passes
    assert master.client.request_instance("t", SR)["title"] == "t"
