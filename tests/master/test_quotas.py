"""Issue 10: per-owner quotas (master/services/quotas.py), as pure rules and as an owner who tries
to fill the catalog over both protocols; a refused request stores nothing."""
from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from partita.master.api.slap_xml.marshal import dumps
from partita.master.app import create_app
from partita.master.db.database import Database
from partita.master.db.models import SoftwareInstance
from partita.master.services import quotas
from partita.master.settings import AppSettings
from partita.slap.errors import QuotaExceeded

SR = "/opt/software/demo/software.cfg"
QUOTA = quotas.Quota(max_instances=3, max_parameter_bytes=1000)


# ------------------------------------------------------------------------------------ pure rules

def test_a_new_instance_over_the_count_is_refused() -> None:
    quotas.check_request(QUOTA, quotas.Usage(2, 0), "alice", new_instance=True, old_bytes=0, new_bytes=2)
    with pytest.raises(QuotaExceeded, match="3 instances, the quota is 3"):
        quotas.check_request(QUOTA, quotas.Usage(3, 0), "alice", new_instance=True, old_bytes=0, new_bytes=2)


def test_growing_parameters_over_the_total_is_refused() -> None:
    quotas.check_request(QUOTA, quotas.Usage(1, 900), "alice", new_instance=False, old_bytes=100, new_bytes=200)
    with pytest.raises(QuotaExceeded, match="1001 bytes"):
        quotas.check_request(QUOTA, quotas.Usage(1, 900), "alice", new_instance=False, old_bytes=100, new_bytes=201)


def test_what_does_not_grow_is_always_allowed() -> None:
    over = quotas.Usage(10, 10_000)
    quotas.check_request(QUOTA, over, "alice", new_instance=False, old_bytes=500, new_bytes=500)
    quotas.check_request(QUOTA, over, "alice", new_instance=False, old_bytes=500, new_bytes=10)
    assert not quotas.needs_usage(new_instance=False, old_bytes=500, new_bytes=500)


def test_the_stored_size_is_the_json_text() -> None:
    assert quotas.stored_size({}) == 2 and quotas.stored_size(None) == 2
    assert quotas.stored_size({"a": "é"}) == len('{"a": "\\u00e9"}')


# ------------------------------------------------------------------------------- as an attacker

@pytest.fixture
def small(db: Database) -> FlaskClient:
    settings = AppSettings(mode="proxy", computer_id="local_computer", max_instances_per_owner=QUOTA.max_instances,
                           max_parameter_bytes_per_owner=QUOTA.max_parameter_bytes)
    return create_app(db, settings).test_client()


def rows(db: Database) -> list[tuple[str, Any]]:
    with db.read() as session:
        return [(i.title, i.parameters) for i in session.scalars(select(SoftwareInstance).order_by(SoftwareInstance.id))]


def json_request(client: FlaskClient, title: str, parameters: dict | None = None) -> Any:
    return client.post("/slapos.post.v0.software_instance", json={
        "title": title, "software_release_uri": SR, "software_type": "default", "parameters": parameters or {}})


def xml_request(client: FlaskClient, title: str, parameters: dict | None = None) -> Any:
    return client.post("/requestComputerPartition", data={
        "software_release": SR, "partition_reference": title, "partition_parameter_xml": dumps(parameters or {}),
        "filter_xml": dumps({}), "software_type": "default", "state": dumps(None), "shared_xml": dumps(False)})


def test_an_owner_cannot_have_more_instances_than_its_quota(small: FlaskClient, db: Database) -> None:
    for title in ("one", "two", "three"):
        assert json_request(small, title).status_code == 200
    before = rows(db)
    refused = json_request(small, "four")
    assert refused.status_code == 403 and refused.get_json()["code"] == "QUOTA", refused.text
    assert "quota is 3" in refused.get_json()["title"]
    refused = xml_request(small, "four")
    assert refused.status_code == 403 and "quota is 3" in refused.text, refused.text
    assert rows(db) == before
    assert json_request(small, "two").status_code == 200  # re-requesting an existing one still works
    assert xml_request(small, "two").status_code == 408  # stored, waiting for a partition


def test_an_owner_cannot_grow_its_parameters_over_its_quota(small: FlaskClient, db: Database) -> None:
    assert json_request(small, "one", {"p": "x" * 500}).status_code == 200
    before = rows(db)
    refused = json_request(small, "two", {"p": "x" * 500})
    assert refused.status_code == 403 and refused.get_json()["code"] == "QUOTA", refused.text
    refused = xml_request(small, "one", {"p": "y" * 995})
    assert refused.status_code == 403 and "bytes, the quota is 1000" in refused.text, refused.text
    assert rows(db) == before
    assert json_request(small, "one", {"p": "small"}).status_code == 200  # shrinking is always allowed
    assert json_request(small, "two", {"p": "x" * 500}).status_code == 200


def test_default_quotas_are_generous(client: FlaskClient, db: Database) -> None:
    for index in range(5):
        assert json_request(client, f"t{index}", {"p": "x" * 100_000}).status_code == 200
    with db.read() as session:
        assert session.scalar(select(func.count(SoftwareInstance.id))) == 5
