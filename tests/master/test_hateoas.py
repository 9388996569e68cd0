"""The HATEOAS reads of `slapos service info` (the real client's): the same status reason as
`slapos info`, an unreachable node included (issue 13)."""
from __future__ import annotations

import time

from flask.testing import FlaskClient
from sqlalchemy import update

from partita.master.db.database import Database
from partita.master.db.models import Computer
from tests.master.conftest import PROXY_COMPUTER
from tests.master.test_json_rpc import Api


def service_info(client: FlaskClient, title: str) -> dict:
    answer = client.get(f"/hateoas/instances/{title}")
    assert answer.status_code == 200, answer.text
    return {key[len("my_"):]: field["default"] for key, field in answer.json["_embedded"]["_view"].items()
            if key.startswith("my_")}


def test_service_info_says_the_node_is_unreachable_as_slapos_info_does(client: FlaskClient, db: Database) -> None:
    api = Api(client)
    api.format("slappart0")
    guid = api.request("web")["instance_guid"]
    online = service_info(client, "web")
    assert online["status_reason"] == api.instance(guid)["status_reason"]
    assert "unreachable" not in online["status_reason"]
    with db.write() as session:  # its node last called ten minutes ago
        session.execute(update(Computer).where(Computer.reference == PROXY_COMPUTER)
                        .values(last_contact=time.time() - 600))
    shown = service_info(client, "web")
    said = api.instance(guid)["status_reason"]
    assert said.startswith(f"the node of computer {PROXY_COMPUTER} is unreachable since ")
    assert shown["status_reason"] == said
    assert said in shown["news"]["instance"][0]["text"]
