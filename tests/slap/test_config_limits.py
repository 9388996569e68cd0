"""Issue 10: the quotas and allowed host names in [slapmaster] and [slapproxy] (slap/config.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from partita.slap.config import Quotas, master_config, proxy_config, read_config
from partita.slap.errors import ConfigurationError


def parser(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "slapos.cfg"
    path.write_text(text)
    return read_config(str(path))


def test_quotas_and_hosts_are_read(tmp_path: Path) -> None:
    config = master_config(parser(tmp_path, "[slapmaster]\ndatabase_uri = c.db\nmax_instances_per_owner = 5\n"
                                            "allowed_hosts = lb.example, other.example\n"))
    assert config.quotas == Quotas(max_instances_per_owner=5)
    assert config.quotas.settings() == {"max_instances_per_owner": 5}
    assert config.allowed_hosts == ("lb.example", "other.example")
    proxy = proxy_config(parser(tmp_path, "[slapproxy]\ndatabase_uri = p.db\nmax_parameter_bytes_per_owner = 1000\n"))
    assert proxy.quotas == Quotas(max_parameter_bytes_per_owner=1000)


def test_defaults_are_the_masters(tmp_path: Path) -> None:
    config = master_config(parser(tmp_path, "[slapmaster]\ndatabase_uri = c.db\nmax_instances_per_owner =\n"))
    assert config.quotas is not None and config.quotas.settings() == {}


@pytest.mark.parametrize("value", ["-3", "-1", "many"])  # -1 once meant "unset"
def test_bad_quotas_are_configuration_errors(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigurationError, match="max_instances_per_owner"):
        master_config(parser(tmp_path, f"[slapmaster]\ndatabase_uri = c.db\nmax_instances_per_owner = {value}\n"))
