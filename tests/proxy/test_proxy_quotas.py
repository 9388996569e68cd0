"""The proxy applies the quotas of its configuration's [slapproxy] section."""
from __future__ import annotations

from pathlib import Path

from partita.proxy.app import make_app, prepare
from partita.slap.config import proxy_config, read_config

SR = "/opt/software/demo/software.cfg"


def test_slapproxy_quotas_reach_the_app(tmp_path: Path) -> None:
    config_path = tmp_path / "slapos.cfg"
    config_path.write_text("[slapos]\ncomputer_id = local_computer\n"
                           f"[slapproxy]\ndatabase_uri = {tmp_path / 'proxy.db'}\nmax_instances_per_owner = 1\n")
    config = proxy_config(read_config(str(config_path)))
    prepare(config)
    client = make_app(config).test_client()
    body = {"software_release_uri": SR, "software_type": "default"}
    first = client.post("/slapos.post.v0.software_instance", json={"title": "one", **body})
    assert first.status_code == 200, first.get_json()
    second = client.post("/slapos.post.v0.software_instance", json={"title": "two", **body})
    assert second.status_code == 403 and second.get_json()["code"] == "QUOTA"
