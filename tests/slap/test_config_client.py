"""slap.config.client_config: the master CA file and the API token of a client configuration."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from partita.slap.config import client_config, read_config
from partita.slap.errors import ConfigurationError

TOKEN = "0123456789ab." + "f" * 40


def config_of(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "client.cfg"
    path.write_text(text)
    return path


def test_ca_file_token_and_certificate_paths_are_read_and_expanded(tmp_path: Path) -> None:
    path = config_of(tmp_path, f"""[slapos]
master_url = https://master:8443
partita_ca_file = ~/.slapos/ca.crt
api_token = {TOKEN}
[slapconsole]
key_file = ~/.slapos/client.key
cert_file = /etc/client.crt
""")
    config = client_config(read_config(str(path), client=True))
    home = os.path.expanduser("~")
    assert config.ca_file == f"{home}/.slapos/ca.crt"
    assert config.key_file == f"{home}/.slapos/client.key"
    assert config.cert_file == "/etc/client.crt"
    assert config.api_token == TOKEN


def test_slapconsole_ca_file_and_no_token(tmp_path: Path) -> None:
    path = config_of(tmp_path, "[slapos]\nmaster_url = https://m\n[slapconsole]\npartita_ca_file = /ca.crt\n")
    config = client_config(read_config(str(path), client=True))
    assert (config.ca_file, config.api_token, config.key_file) == ("/ca.crt", None, None)


def test_malformed_api_token_is_a_configuration_error_without_the_secret(tmp_path: Path) -> None:
    path = config_of(tmp_path, "[slapos]\nmaster_url = https://m\napi_token = abc.sekrit-value\n")
    with pytest.raises(ConfigurationError) as raised:
        client_config(read_config(str(path), client=True))
    assert str(raised.value).startswith("[slapos] api_token is not an API token")
    assert "sekrit" not in str(raised.value)
