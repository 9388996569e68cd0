"""Issue 10: sizes and look-alike names (master/services/validation.py), as pure functions and as an
attacker sends them over both protocols through the HTTP app; nothing refused changes the catalog."""
from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from partita.master.api.slap_xml.marshal import dumps
from partita.master.db.database import Database
from partita.master.db.models import SoftwareInstance
from partita.master.services import validation
from partita.slap.errors import TooLarge, ValidationError

SR = "/opt/software/demo/software.cfg"
COMPUTER = "local_computer"
LOOK_ALIKES = ["ad\u200bmin", "admin\u200d", "\u202eadmin", "adm\u2066in\u2069", "\ufeffadmin", "a\u00addmin",
               "tab\there", "bell\x07"]
BIG = "x" * (validation.MAX_PARAMETERS_BYTES + 1)


# ------------------------------------------------------------------------------------ pure rules

def test_titles_are_normalised_to_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "café")
    assert decomposed != "café"
    assert validation.clean_title(decomposed) == "café"


@pytest.mark.parametrize("title", LOOK_ALIKES)
def test_control_and_format_characters_are_refused(title: str) -> None:
    with pytest.raises(ValidationError, match="control or format characters"):
        validation.clean_title(title)
    with pytest.raises(ValidationError, match="control or format characters"):
        validation.clean_reference(title, "computer reference")


def test_references_must_already_be_nfc() -> None:
    with pytest.raises(ValidationError, match="NFC"):
        validation.clean_reference(unicodedata.normalize("NFD", "slappart-é"), "partition reference")
    assert validation.clean_reference("slappart-é", "partition reference") == "slappart-é"


def test_sizes_have_limits() -> None:
    with pytest.raises(ValidationError, match="longer than"):
        validation.clean_title("t" * (validation.MAX_TITLE + 1))
    with pytest.raises(ValidationError, match="longer than"):
        validation.clean_reference("r" * (validation.MAX_REFERENCE + 1), "computer reference")
    with pytest.raises(TooLarge, match="over the limit"):
        validation.clean_parameters({"p": BIG})
    with pytest.raises(ValidationError, match="SLA has"):
        validation.clean_sla({f"k{i}": "v" for i in range(validation.MAX_SLA_ENTRIES + 1)})
    assert validation.clean_parameters({"p": "x" * 1000}) == {"p": "x" * 1000}


# ------------------------------------------------------------------------------- as an attacker

def instances(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count(SoftwareInstance.id)))


def json_request(client: FlaskClient, title: str, **fields: Any) -> Any:
    body = {"title": title, "software_release_uri": SR, "software_type": "default", **fields}
    return client.post("/slapos.post.v0.software_instance", json=body)


def xml_request(client: FlaskClient, title: str, parameters: dict | None = None) -> Any:
    return client.post("/requestComputerPartition", data={
        "software_release": SR, "partition_reference": title, "partition_parameter_xml": dumps(parameters or {}),
        "filter_xml": dumps({}), "software_type": "default", "state": dumps(None), "shared_xml": dumps(False)})


@pytest.mark.parametrize("title", LOOK_ALIKES[:5])
def test_look_alike_titles_are_refused_on_both_protocols(client: FlaskClient, db: Database, title: str) -> None:
    answer = json_request(client, title)
    assert answer.status_code == 400 and answer.get_json()["code"] == "INVALID", answer.text
    assert "control or format" in answer.get_json()["title"]
    answer = xml_request(client, title)
    assert answer.status_code == 400 and "control or format" in answer.text, answer.text
    assert instances(db) == 0


def test_a_decomposed_title_is_the_same_instance(client: FlaskClient, db: Database) -> None:
    first = json_request(client, "café").get_json()
    again = json_request(client, unicodedata.normalize("NFD", "café")).get_json()
    assert first["instance_guid"] == again["instance_guid"] and again["title"] == "café"
    assert instances(db) == 1


def test_oversized_parameters_are_refused_on_both_protocols(client: FlaskClient, db: Database) -> None:
    answer = json_request(client, "big", parameters={"p": BIG})
    assert answer.status_code == 413 and answer.get_json()["code"] == "TOO_LARGE", answer.text
    answer = xml_request(client, "big", {"p": BIG})
    assert answer.status_code == 413 and "over the limit" in answer.text, answer.text
    assert instances(db) == 0


def test_oversized_connection_parameters_are_refused_on_both_protocols(client: FlaskClient, db: Database) -> None:
    listed = [{"partition_id": "slappart0", "ip_list": [{"ip-address": "10.0.0.1", "network-interface": "lo"}]}]
    assert client.post("/slapos.put.v0.compute_node_format",
                       json={"computer_guid": COMPUTER, "compute_partition_list": listed}).status_code == 200
    guid = json_request(client, "root").get_json()["instance_guid"]
    answer = client.post("/slapos.put.v0.software_instance_connection_parameter",
                         json={"instance_guid": guid, "connection_parameter_dict": {"url": BIG}})
    assert answer.status_code == 413 and answer.get_json()["code"] == "TOO_LARGE", answer.text
    answer = client.post("/setComputerPartitionConnectionXml", data={
        "computer_id": COMPUTER, "computer_partition_id": "slappart0", "connection_xml": dumps({"url": BIG})})
    assert answer.status_code == 413, answer.text
    document = client.post("/slapos.get.v0.software_instance", json={"instance_guid": guid}).get_json()
    assert document["connection_parameters"] == {}


def test_look_alike_partition_ids_are_refused_over_slap_xml(client: FlaskClient) -> None:
    answer = client.get("/registerComputerPartition", query_string={
        "computer_reference": COMPUTER, "computer_partition_reference": "slappart\u200b0"})
    assert answer.status_code == 400 and "control or format" in answer.text, answer.text
    computer = {"reference": "COMP\u202e1", "partition_list": []}
    answer = client.post("/loadComputerConfigurationFromXML", data={"xml": dumps(computer)})
    assert answer.status_code == 400 and "control or format" in answer.text, answer.text


def test_look_alike_computer_and_partition_ids_are_refused_over_the_json_api(client: FlaskClient) -> None:
    answer = client.post("/slapos.get.v0.compute_node_state", json={"computer_guid": "local\u200b_computer"})
    assert answer.status_code == 400 and answer.get_json()["code"] == "INVALID", answer.text
    listed = [{"partition_id": "slap\u2066part0", "ip_list": [{"ip-address": "10.0.0.1", "network-interface": "lo"}]}]
    answer = client.post("/slapos.put.v0.compute_node_format",
                         json={"computer_guid": COMPUTER, "compute_partition_list": listed})
    assert answer.status_code == 400 and "control or format" in answer.get_json()["title"], answer.text
