"""An SLA key the master does not know is refused on both protocols and stores nothing (issue 13).

It used to be ignored: the instance landed anywhere."""
from __future__ import annotations

from flask import Flask

from partita.master.api.slap_xml.marshal import dumps
from partita.master.db.database import Database
from tests.master.test_json_rpc import Api, snapshot
from tests.master.test_slap_xml_routes import format_computer, request_form


def test_json_api_refuses_an_unknown_key_naming_it(app: Flask, db: Database) -> None:
    api = Api(app.test_client())
    api.format("slappart0")
    before = snapshot(db)
    for sla, named in (({"region": "rennes"}, "'region'"), ({"mode": "spread"}, "'spread'"),
                       ({"computer_guid": "local_computer", "tag.bad name": "x"}, "'bad name'")):
        answer = api.client.post("/slapos.post.v0.software_instance", json={
            "title": "web", "software_release_uri": "/opt/software/demo/software.cfg", "software_type": "default",
            "sla_parameters": sla})
        assert answer.status_code == 400, answer.text
        assert answer.json["code"] == "BAD_SLA" and named in answer.json["title"]
    assert snapshot(db) == before


def test_slap_xml_refuses_an_unknown_key_and_passes_a_plain_request(app: Flask, db: Database) -> None:
    client = app.test_client()
    format_computer(client, 1)
    before = snapshot(db)
    refused = client.post("/requestComputerPartition", data=request_form("web", sla={"region": "rennes"}))
    assert refused.status_code == 400 and "unknown SLA key 'region'" in refused.text
    assert snapshot(db) == before
    # what slapos.core's `slapos request` sends without --node: an empty dictionary
    plain = client.post("/requestComputerPartition", data=request_form("web") | {"filter_xml": dumps({})})
    assert plain.status_code == 200, plain.text
