"""The hosts file (`experiment.hosts`): OAR's one line per core, deduplicated in order; names
that would be ssh options or shell words refused."""
from __future__ import annotations

import pytest

from partita.experiment.errors import HostsFileError
from partita.experiment.hosts import parse_hosts, read_hosts


def test_oar_lines_per_core_become_distinct_hosts_in_order() -> None:
    text = "b.rennes.grid5000.fr\nb.rennes.grid5000.fr\na.rennes.grid5000.fr\n\n# spare\nc\nb.rennes.grid5000.fr\n"
    assert parse_hosts(text) == ["b.rennes.grid5000.fr", "a.rennes.grid5000.fr", "c"]


def test_addresses_are_hosts() -> None:
    assert parse_hosts("10.0.0.1\nfd00::1\n") == ["10.0.0.1", "fd00::1"]


@pytest.mark.parametrize("name", ["-oProxyCommand=sh", "a b", "root@host", "host;reboot", "$(id)", "h/../x"])
def test_a_name_that_is_no_host_is_refused_with_its_line(name: str) -> None:
    with pytest.raises(HostsFileError, match="line 2: .* is not a host name"):
        parse_hosts(f"good\n{name}\n")


def test_an_empty_file_is_refused(tmp_path) -> None:
    (tmp_path / "nodes").write_text("\n# nothing\n")
    with pytest.raises(HostsFileError, match="names no host"):
        read_hosts(tmp_path / "nodes")
    with pytest.raises(HostsFileError, match="cannot read the hosts file"):
        read_hosts(tmp_path / "missing")
