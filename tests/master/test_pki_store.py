"""`master.pki.store` (issue 9): the PKI directory, its modes, and what `ensure` keeps or re-issues."""
from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

import pytest

from partita.master.pki import certificates as certs
from partita.master.pki import store
from partita.master.pki.errors import PkiError, PkiFileError
from partita.slap.errors import ConfigurationError

NAMES = ["master.example.org", "localhost"]
ADDRESSES = ["127.0.0.1", "::1"]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_ensure_creates_the_ca_and_the_master_certificate_owner_only(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    report = store.ensure(pki, NAMES, ADDRESSES)
    assert report.ca_created and report.master_action == "issued"
    assert sorted(os.listdir(pki)) == ["ca.crt", "ca.key", "master.crt", "master.key"]
    assert mode(pki) == 0o700
    assert mode(pki / "ca.key") == 0o600 and mode(pki / "master.key") == 0o600
    assert mode(pki / "ca.crt") == 0o644 and mode(pki / "master.crt") == 0o644
    ca = store.Pki(pki).load_ca()
    master = store.load_certificate(pki / "master.crt")
    master.verify_directly_issued_by(ca.certificate)
    assert report.ca_fingerprint == certs.fingerprint(ca.certificate)
    assert report.master_not_after == master.not_valid_after_utc
    assert certs.subject_alternative_names(master)[0] == set(NAMES)


def test_a_second_ensure_keeps_the_ca_and_the_certificate(tmp_path: Path) -> None:
    first = store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    before = files(tmp_path / "pki")
    second = store.ensure(tmp_path / "pki", list(reversed(NAMES)), ["::1", "127.0.0.1"])
    assert not second.ca_created and second.master_action == "kept" and second.master_reason == ""
    assert second.ca_fingerprint == first.ca_fingerprint
    assert files(tmp_path / "pki") == before


def test_changed_names_reissue_the_master_certificate_and_keep_the_ca(tmp_path: Path) -> None:
    first = store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    ca_before = (tmp_path / "pki" / "ca.key").read_bytes()
    report = store.ensure(tmp_path / "pki", ["other.example"], ADDRESSES)
    assert report.master_action == "re-issued" and report.master_reason == "its names or addresses changed"
    assert report.ca_fingerprint == first.ca_fingerprint
    assert (tmp_path / "pki" / "ca.key").read_bytes() == ca_before
    master = store.load_certificate(tmp_path / "pki" / "master.crt")
    assert certs.subject_alternative_names(master)[0] == {"other.example"}
    report = store.ensure(tmp_path / "pki", ["other.example"], ["192.0.2.7"])
    assert report.master_action == "re-issued"


def test_a_certificate_near_its_end_is_reissued(tmp_path: Path) -> None:
    store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    pki = store.Pki(tmp_path / "pki")
    ca = pki.load_ca()
    soon = certs.server_certificate(ca, NAMES, ADDRESSES, days=20)
    (tmp_path / "pki" / "master.key").write_bytes(certs.key_pem(soon.key))
    (tmp_path / "pki" / "master.crt").write_bytes(certs.certificate_pem(soon.certificate))
    report = store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    assert report.master_action == "re-issued" and "within 30 days" in report.master_reason
    assert report.master_not_after - datetime.datetime.now(datetime.timezone.utc) > datetime.timedelta(days=360)


def test_a_certificate_of_another_ca_is_reissued(tmp_path: Path) -> None:
    store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    foreign = certs.server_certificate(certs.new_ca(), NAMES, ADDRESSES)
    store.atomic_write(tmp_path / "pki" / "master.key", certs.key_pem(foreign.key), mode=0o600)
    (tmp_path / "pki" / "master.crt").write_bytes(certs.certificate_pem(foreign.certificate))
    report = store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    assert report.master_reason == "it was not signed by this CA"
    master = store.load_certificate(tmp_path / "pki" / "master.crt")
    assert certs.is_issued_by(master, store.Pki(tmp_path / "pki").load_ca().certificate)


def test_a_missing_master_file_reissues(tmp_path: Path) -> None:
    store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    (tmp_path / "pki" / "master.key").unlink()
    report = store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    assert report.master_action == "re-issued" and report.master_reason == "master.key was missing"
    assert mode(tmp_path / "pki" / "master.key") == 0o600


@pytest.mark.parametrize("missing", ["ca.key", "ca.crt"])
def test_a_ca_with_one_file_missing_is_an_error_naming_it(tmp_path: Path, missing: str) -> None:
    store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    (tmp_path / "pki" / missing).unlink()
    before = files(tmp_path / "pki")
    with pytest.raises(PkiFileError, match=f"{tmp_path}/pki/{missing} is missing") as caught:
        store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    assert isinstance(caught.value, ConfigurationError) and isinstance(caught.value, PkiError)
    assert files(tmp_path / "pki") == before


@pytest.mark.parametrize("name", ["ca.key", "master.key"])
def test_a_key_readable_by_others_is_refused(tmp_path: Path, name: str) -> None:
    store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    (tmp_path / "pki" / name).chmod(0o644)
    with pytest.raises(PkiFileError, match=rf"{name} is mode 0644: a key file must be readable by its owner only"):
        store.ensure(tmp_path / "pki", NAMES, ADDRESSES)


def test_a_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    key = tmp_path / "pki" / "ca.key"
    elsewhere = tmp_path / "elsewhere.key"
    key.rename(elsewhere)
    key.symlink_to(elsewhere)
    with pytest.raises(PkiFileError, match="ca.key is a symbolic link"):
        store.Pki(tmp_path / "pki").load_ca()


def test_a_key_of_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    me = os.geteuid()
    monkeypatch.setattr(store.os, "geteuid", lambda: me + 1)
    with pytest.raises(PkiFileError, match=rf"ca.key \(mode 0600\) is owned by uid {me}, not by the user"):
        store.Pki(tmp_path / "pki").load_ca()


def test_a_ca_certificate_of_another_key_is_refused(tmp_path: Path) -> None:
    store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    (tmp_path / "pki" / "ca.crt").write_bytes(certs.certificate_pem(certs.new_ca().certificate))
    with pytest.raises(PkiFileError, match="ca.crt is not the certificate of"):
        store.ensure(tmp_path / "pki", NAMES, ADDRESSES)


def test_garbage_in_the_ca_key_is_a_clear_error(tmp_path: Path) -> None:
    store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    store.atomic_write(tmp_path / "pki" / "ca.key", b"not a key", mode=0o600)
    with pytest.raises(PkiFileError, match="ca.key does not hold an unencrypted PEM private key"):
        store.Pki(tmp_path / "pki").load_ca()


def test_load_ca_without_a_ca_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(PkiFileError, match="run `slapos master init`"):
        store.Pki(tmp_path).load_ca()


def test_an_unwritable_place_is_one_error_and_writes_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PkiFileError, match="cannot create the PKI directory"):
        store.ensure(blocker / "pki", NAMES, ADDRESSES)


def test_bad_names_write_nothing(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="not an IP address"):
        store.ensure(tmp_path / "pki", NAMES, ["127.0.0.1", "nope"])
    assert not (tmp_path / "pki").exists()


def test_a_symlinked_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "pki").symlink_to(tmp_path / "real")
    with pytest.raises(PkiFileError, match="is not a directory"):
        store.ensure(tmp_path / "pki", NAMES, ADDRESSES)
    assert list((tmp_path / "real").iterdir()) == []
