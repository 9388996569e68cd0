"""The proxy listens on loopback only (issue 9: it has no authentication), as a user meets it."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from partita.slap.listen import all_loopback, resolve
from tests.support.server import SLAPOS, free_port, write_config


@pytest.mark.parametrize(("addresses", "loopback"), [
    (["127.0.0.1"], True), (["127.0.1.1"], True), (["::1"], True), (["127.0.0.1", "::1"], True),
    (["0.0.0.0"], False), (["::"], False), (["10.0.0.1"], False), (["127.0.0.1", "192.0.2.1"], False),
    ([], False),
])
def test_only_loopback_addresses_pass(addresses: list[str], loopback: bool) -> None:
    assert all_loopback(addresses) is loopback


def test_localhost_resolves_to_loopback_and_literals_to_themselves() -> None:
    assert all_loopback(resolve("localhost"))
    assert resolve("[::1]") == ["::1"] and resolve("0.0.0.0") == ["0.0.0.0"]
    assert resolve("no-such-host.invalid") == []


def _slapos(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SLAPOS, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_proxy_start_refuses_a_network_address_with_one_line(tmp_path: Path, host: str) -> None:
    config = write_config(tmp_path, free_port(), database=str(tmp_path / "proxy.db"))
    config.write_text(config.read_text().replace("host = 127.0.0.1", f"host = {host}", 1))
    done = _slapos("proxy", "start", "--cfg", str(config), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"slapos: error: [slapproxy] host = {host}: the proxy has no authentication, so it listens on "
        "loopback only (127.0.0.1, ::1, localhost); to serve other machines, run a master "
        "(slapos master init/start)"]
    assert not (tmp_path / "proxy.db").exists()  # refused before anything was made


def test_proxy_start_names_the_option_given(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port(), database=str(tmp_path / "proxy.db"))
    done = _slapos("proxy", "start", "--cfg", str(config), "--host", "0.0.0.0", cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.startswith("slapos: error: --host = 0.0.0.0: ")


def test_configure_local_refuses_a_network_address_and_writes_nothing(tmp_path: Path) -> None:
    done = _slapos("configure", "local", "--slapos-configuration-directory", str(tmp_path / "etc"),
                   "--daemon-listen-ip", "0.0.0.0", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("slapos: error: --daemon-listen-ip = 0.0.0.0: the proxy has no authentication")
    assert not (tmp_path / "etc").exists()
