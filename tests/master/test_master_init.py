"""`slapos master init` creates the CA and the master's certificate (issue 9): the real command, SQLite."""
from __future__ import annotations

import ipaddress
import os
import re
import stat
import subprocess
from pathlib import Path

from partita.master.pki import certificates as certs
from partita.master.pki import store
from tests.support.server import SLAPOS


def init(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SLAPOS, "master", "init", "--cfg", str(config), *args],
                          capture_output=True, text=True, timeout=60, cwd=config.parent)


def write(directory: Path, extra: str = "") -> Path:
    config = directory / "slapos.cfg"
    config.write_text(f"[slapmaster]\ndatabase_uri = catalog.db\nhost = 192.0.2.10\n{extra}")
    return config


def test_init_creates_the_pki_and_prints_the_fingerprint(tmp_path: Path) -> None:
    result = init(write(tmp_path))
    assert result.returncode == 0, result.stderr
    pki = tmp_path / "pki"
    ca = store.Pki(pki).load_ca()
    lines = result.stdout.splitlines()
    assert lines[0].startswith("database ready at revision")
    assert f"PKI directory: {pki}" in lines
    assert f"CA: created ({pki / 'ca.crt'})" in lines
    assert f"CA fingerprint: {certs.fingerprint(ca.certificate)}" in lines
    assert re.search(r"^master certificate: issued, expires \d{4}-\d\d-\d\d$", result.stdout, re.M)
    assert "  addresses: 127.0.0.1, ::1, 192.0.2.10" in lines
    names_line = next(line for line in lines if line.startswith("  names: "))
    assert names_line.endswith("localhost")
    assert stat.S_IMODE(os.stat(pki).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(pki / "ca.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(pki / "master.key").st_mode) == 0o600

    again = init(tmp_path / "slapos.cfg")
    assert again.returncode == 0, again.stderr
    assert f"CA: kept ({pki / 'ca.crt'})" in again.stdout
    assert "master certificate: kept, expires" in again.stdout
    assert f"CA fingerprint: {certs.fingerprint(ca.certificate)}" in again.stdout


def test_names_and_addresses_from_the_options_and_the_configuration(tmp_path: Path) -> None:
    config = write(tmp_path, "pki_directory = keys/master\ntls_names = a.example, b.example\n"
                             "tls_addresses = 10.0.0.1 2001:db8::1\n")
    result = init(config)
    assert result.returncode == 0, result.stderr
    master = store.load_certificate(tmp_path / "keys" / "master" / "master.crt")
    names, addresses = certs.subject_alternative_names(master)
    assert names == {"a.example", "b.example"}
    assert addresses == {ipaddress.ip_address(a) for a in ("10.0.0.1", "2001:db8::1", "192.0.2.10")}

    result = init(config, "--tls-name", "m.example.org", "--tls-address", "198.51.100.3")
    assert result.returncode == 0, result.stderr
    assert "master certificate: re-issued (its names or addresses changed)" in result.stdout
    assert "  names: m.example.org" in result.stdout
    assert "  addresses: 198.51.100.3, 192.0.2.10" in result.stdout
    assert "CA: kept" in result.stdout


def test_a_bad_address_is_one_error_line_and_writes_nothing(tmp_path: Path) -> None:
    result = init(write(tmp_path), "--tls-address", "300.1.1.1")
    assert result.returncode == 1
    assert result.stderr.strip() == "slapos: error: --tls-address: '300.1.1.1' is not an IP address"
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slapos.cfg"]

    result = init(write(tmp_path, "tls_addresses = 10.0.0.1, nope\n"))
    assert result.returncode == 1
    assert result.stderr.strip() == "slapos: error: [slapmaster] tls_addresses: 'nope' is not an IP address"

    result = init(write(tmp_path), "--tls-name", "bad name")
    assert result.returncode == 1
    assert result.stderr.strip() == "slapos: error: not a DNS name for a certificate: 'bad name'"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slapos.cfg"]


def test_an_unwritable_pki_directory_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("")
    result = init(write(tmp_path, "pki_directory = blocker/pki\n"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"slapos: error: cannot create the PKI directory {tmp_path}/blocker/pki")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "catalog.db").exists()
