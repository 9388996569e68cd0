"""``slapos supply`` and ``slapos remove``."""
from __future__ import annotations

import json

from click.testing import CliRunner

from partita.slap.cli.main import cli
from tests.slap.live_master import COMPUTER, SR, LiveMaster, master  # noqa: F401


def test_supply_then_remove(master: LiveMaster) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["supply", SR, COMPUTER, "--cfg", str(master.cfg)])
    assert result.exit_code == 0, result.output
    assert f"{SR} to be installed on {COMPUTER}" in result.stdout
    assert [(i["software_release_uri"], i["state"]) for i in master.client.list_software_installations(COMPUTER)] \
        == [(SR, "available")]
    result = runner.invoke(cli, ["remove", SR, COMPUTER, "--cfg", str(master.cfg), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["state"] == "destroyed"
    assert master.client.list_software_installations(COMPUTER)[0]["state"] == "destroyed"
