"""Issue 13: ``[slapmaster] unreachable_after``, after which a silent node is shown unreachable."""
from __future__ import annotations

from pathlib import Path

import pytest

from partita.master.cli.start import build_app
from partita.slap.config import master_config
from partita.slap.errors import ConfigurationError
from tests.slap.test_config_limits import parser


def test_default_and_set(tmp_path: Path) -> None:
    assert master_config(parser(tmp_path, "[slapmaster]\ndatabase_uri = c.db\n")).unreachable_after == 120
    config = master_config(parser(tmp_path, "[slapmaster]\ndatabase_uri = c.db\nunreachable_after = 600\n"
                                            "authentication = none\n"))
    assert config.unreachable_after == 600
    app = build_app(config)
    assert app.extensions["partita.settings"].unreachable_after_seconds == 600


@pytest.mark.parametrize("value", ["30", "0", "soon"])
def test_shorter_than_a_long_poll_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigurationError, match="unreachable_after"):
        master_config(parser(tmp_path, f"[slapmaster]\ndatabase_uri = c.db\nunreachable_after = {value}\n"))
