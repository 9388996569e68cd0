"""MasterClient against a real HTTPS server on 127.0.0.1 (Python's ssl and http.server, certificates
made in the test): the master verified against the CA file, client certificates refused in one line."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from partita.slap.client import connect
from partita.slap.errors import AuthenticationFailed, ClientError, RemoteError
from tests.slap.tls_server import EXPIRED_ON, Pki, https_server, make_pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def server(pki: Pki) -> Iterator[str]:
    with https_server(pki, require_client_certificate=True) as url:
        yield url


def test_trusted_master_and_accepted_certificate_answer(pki: Pki, server: str) -> None:
    with connect(server, ca_file=pki.ca_file, cert_file=pki.client.cert_file, key_file=pki.client.key_file,
                 timeout=5) as client:
        assert client.call("slapos.get.v0.whoami") == {"ok": True, "authorization": None}


def test_wrong_ca_file_is_cannot_verify_the_master(pki: Pki, server: str) -> None:
    client = connect(server, ca_file=pki.other_ca_file, cert_file=pki.client.cert_file,
                     key_file=pki.client.key_file, timeout=5)
    with pytest.raises(AuthenticationFailed) as raised:
        client.whoami()
    message = str(raised.value)
    assert message.startswith(f"cannot verify the master at {server} against the CA in {pki.other_ca_file}: "
                              "certificate verify failed")
    assert "\n" not in message


def test_certificate_from_another_ca_is_refused(pki: Pki, server: str) -> None:
    client = connect(server, ca_file=pki.ca_file, cert_file=pki.stranger.cert_file,
                     key_file=pki.stranger.key_file, timeout=5)
    with pytest.raises(AuthenticationFailed) as raised:
        client.whoami()
    assert str(raised.value) == (f"the master at {server} refused the client certificate "
                                 f"{pki.stranger.cert_file}: it was not issued by this master's CA")


def test_expired_certificate_is_refused_with_its_expiry_date(pki: Pki, server: str) -> None:
    client = connect(server, ca_file=pki.ca_file, cert_file=pki.expired.cert_file,
                     key_file=pki.expired.key_file, timeout=5)
    with pytest.raises(AuthenticationFailed) as raised:
        client.whoami()
    assert str(raised.value) == (
        f"the master at {server} refused the client certificate {pki.expired.cert_file}: it expired on "
        f"{EXPIRED_ON:%Y-%m-%d}: renew it or enrol again (docs/operations.md)")


def test_no_certificate_reaches_the_app_and_its_401_is_a_remote_error(pki: Pki) -> None:
    with https_server(pki, require_client_certificate=False) as url:
        with pytest.raises(RemoteError) as raised:
            connect(url, ca_file=pki.ca_file, timeout=5).whoami()
    assert (raised.value.code, raised.value.status, str(raised.value)) == \
        ("UNAUTHENTICATED", 401, "no client certificate or token")


def test_api_token_travels_as_bearer_over_verified_tls(pki: Pki) -> None:
    token = "0123456789ab." + "c" * 40
    with https_server(pki, require_client_certificate=False) as url:
        answer = connect(url, ca_file=pki.ca_file, cert_file=pki.client.cert_file, key_file=pki.client.key_file,
                         api_token=token, timeout=5).call("slapos.get.v0.whoami")
    assert answer["authorization"] == f"Bearer {token}"


def test_missing_ca_file_is_one_client_error(pki: Pki, server: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.crt")
    with pytest.raises(ClientError) as raised:
        connect(server, ca_file=missing, timeout=5).whoami()
    assert f"cannot use the TLS files for {server}" in str(raised.value)
    assert missing in str(raised.value)
