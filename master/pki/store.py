"""The PKI directory on disk, and `ensure`, which ``slapos master init`` runs.

::

    pki/            0700, created if missing (default: beside the configuration file)
    ├── ca.key      0600  the CA's private key          written once, never overwritten
    ├── ca.crt      0644  the CA's certificate           written once, never overwritten
    ├── master.key  0600  the master's TLS key           replaced with master.crt
    └── master.crt  0644  the master's TLS certificate   (re)issued by `ensure` when needed

`ensure` decides, then writes: the CA is created only when both of its files are missing (one
without the other is an error naming the file); the master's certificate is (re)issued when it is
missing or unreadable, does not match master.key, was not signed by this CA, expires within 30
days, or its names/addresses differ from the ones asked. Every file is written with
`slap.fileio.atomic_write`, keys owner-only from creation.

Loading reads each file through a descriptor opened with ``O_NOFOLLOW`` (a link is refused), and
refuses a key file that is not a regular file, not owned by the running user, or readable by its
group or others (DESIGN.md, trust boundaries: secrets are owner-only).
"""
from __future__ import annotations

import datetime
import errno
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from partita.master.pki import certificates as certs
from partita.master.pki.certificates import CertifiedKey, IPAddress
from partita.master.pki.errors import PkiFileError
from partita.slap.fileio import atomic_write

CA_KEY, CA_CERT, MASTER_KEY, MASTER_CERT = "ca.key", "ca.crt", "master.key", "master.crt"
RENEW_BEFORE = datetime.timedelta(days=30)
MAX_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class EnsureReport:
    """What `ensure` did, for the command's output."""

    directory: Path
    ca_created: bool
    ca_fingerprint: str
    master_action: str          # "issued", "re-issued" or "kept"
    master_reason: str          # why it was (re-)issued; "" when kept
    names: tuple[str, ...]
    addresses: tuple[IPAddress, ...]
    master_not_after: datetime.datetime


class Pki:
    """The PKI directory `directory` (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, name: str) -> Path:
        return self.directory / name

    def load_ca(self) -> CertifiedKey:
        """The CA, checked: both files present, safe, matching, a CA certificate, not expired."""
        key_present, cert_present = (_exists(self.path(CA_KEY)), _exists(self.path(CA_CERT)))
        if not key_present and not cert_present:
            raise PkiFileError(f"no certificate authority in {self.directory} (run `slapos master init`)")
        _both_or_neither(self.path(CA_KEY), key_present, self.path(CA_CERT), cert_present)
        ca = CertifiedKey(load_key(self.path(CA_KEY)), load_certificate(self.path(CA_CERT)))
        if not certs.same_public_key(ca.key, ca.certificate):
            raise PkiFileError(f"{self.path(CA_CERT)} is not the certificate of {self.path(CA_KEY)}")
        if not certs.is_ca(ca.certificate):
            raise PkiFileError(f"{self.path(CA_CERT)} is not a CA certificate (basicConstraints CA:false)")
        if ca.certificate.not_valid_after_utc <= _utcnow():
            raise PkiFileError(f"the CA in {self.path(CA_CERT)} expired on "
                               f"{ca.certificate.not_valid_after_utc:%Y-%m-%d}")
        return ca

    def ensure(self, names: Sequence[str], addresses: Sequence[IPAddress | str], *,
               days: int = certs.SERVER_DAYS) -> EnsureReport:
        names = tuple(dict.fromkeys(certs.check_dns_name(name) for name in names))
        ips = tuple(dict.fromkeys(certs.parse_address(address) for address in addresses))
        self.prepare()
        ca_created = not _exists(self.path(CA_KEY)) and not _exists(self.path(CA_CERT))
        if ca_created:
            ca = certs.new_ca()
            self._write_ca(ca)
        else:
            ca = self.load_ca()
        reason = "new CA" if ca_created else self._master_reason(ca, names, ips)
        if reason:
            master = certs.server_certificate(ca, names, ips, days=days)
            atomic_write(self.path(MASTER_KEY), certs.key_pem(master.key), mode=0o600)
            atomic_write(self.path(MASTER_CERT), certs.certificate_pem(master.certificate), mode=0o644)
            certificate = master.certificate
        else:
            certificate = load_certificate(self.path(MASTER_CERT))
        return EnsureReport(
            directory=self.directory, ca_created=ca_created, ca_fingerprint=certs.fingerprint(ca.certificate),
            master_action=("issued" if reason in ("missing", "new CA") else "re-issued") if reason else "kept",
            master_reason=reason, names=names, addresses=ips,
            master_not_after=certificate.not_valid_after_utc,
        )

    def _master_reason(self, ca: CertifiedKey, names: tuple[str, ...], ips: tuple[IPAddress, ...]) -> str:
        """Why the master certificate must be (re-)issued, or "" to keep it."""
        cert_path, key_path = self.path(MASTER_CERT), self.path(MASTER_KEY)
        if not _exists(cert_path) and not _exists(key_path):
            return "missing"
        if not _exists(cert_path) or not _exists(key_path):
            return f"{(key_path if _exists(cert_path) else cert_path).name} was missing"
        key = load_key(key_path)  # refuses an unsafe key file rather than silently replacing it
        try:
            certificate = load_certificate(cert_path)
        except PkiFileError:
            return f"{cert_path.name} was unreadable"
        if not certs.same_public_key(key, certificate):
            return f"{cert_path.name} did not match {key_path.name}"
        if not certs.is_issued_by(certificate, ca.certificate):
            return "it was not signed by this CA"
        if certificate.not_valid_after_utc - RENEW_BEFORE <= _utcnow():
            return f"it expires on {certificate.not_valid_after_utc:%Y-%m-%d}, within 30 days"
        if certs.subject_alternative_names(certificate) != (frozenset(names), frozenset(ips)):
            return "its names or addresses changed"
        return ""

    def prepare(self) -> None:
        """Create the directory (0700) if it is missing; a PkiFileError if it cannot be written."""
        try:
            if not os.path.lexists(self.directory):
                self.directory.parent.mkdir(parents=True, exist_ok=True)
                self.directory.mkdir(mode=0o700)
        except OSError as error:
            raise PkiFileError(f"cannot create the PKI directory {self.directory}: "
                               f"{error.strerror or error}") from None
        if self.directory.is_symlink() or not self.directory.is_dir():
            raise PkiFileError(f"the PKI directory {self.directory} is not a directory (a link is not followed)")
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise PkiFileError(f"the PKI directory {self.directory} is not writable")

    def _write_ca(self, ca: CertifiedKey) -> None:
        """Both CA files or neither: a failure after the key removes the key."""
        try:
            atomic_write(self.path(CA_KEY), certs.key_pem(ca.key), mode=0o600)
            try:
                atomic_write(self.path(CA_CERT), certs.certificate_pem(ca.certificate), mode=0o644)
            except BaseException:
                self.path(CA_KEY).unlink(missing_ok=True)
                raise
        except OSError as error:
            raise PkiFileError(f"cannot write the CA in {self.directory}: {error.strerror or error}") from None


def ensure(pki_dir: str | os.PathLike[str], names: Iterable[str], addresses: Iterable[IPAddress | str], *,
           days: int = certs.SERVER_DAYS) -> EnsureReport:
    """Create the CA if there is none and (re-)issue the master's TLS certificate when needed."""
    try:
        return Pki(pki_dir).ensure(list(names), list(addresses), days=days)
    except OSError as error:
        raise PkiFileError(f"cannot write in the PKI directory {pki_dir}: {error.strerror or error}") from None


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The private key in `path`, refused unless it is a regular file owned by us and owner-only."""
    data = _read(path, secret=True)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise PkiFileError(f"{path} does not hold an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiFileError(f"{path} holds a {type(key).__name__.removeprefix('_')}, not an EC key")
    return key


def load_certificate(path: Path) -> x509.Certificate:
    data = _read(path, secret=False)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise PkiFileError(f"{path} does not hold a PEM certificate") from None


def _read(path: Path, *, secret: bool) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise PkiFileError(f"{path} is a symbolic link: a PKI file must be a regular file") from None
        raise PkiFileError(f"cannot read {path}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PkiFileError(f"{path} is not a regular file")
        if secret:
            _check_secret(path, info)
        if info.st_size > MAX_FILE_BYTES:
            raise PkiFileError(f"{path} is over {MAX_FILE_BYTES} bytes")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)


def _check_secret(path: Path, info: os.stat_result) -> None:
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.geteuid():
        raise PkiFileError(f"{path} (mode {mode:04o}) is owned by uid {info.st_uid}, not by the user "
                           f"running the master (uid {os.geteuid()})")
    if mode & 0o077:
        raise PkiFileError(f"{path} is mode {mode:04o}: a key file must be readable by its owner only "
                           f"(chmod 600 {path})")


def _exists(path: Path) -> bool:
    return os.path.lexists(path)


def _both_or_neither(first: Path, first_present: bool, second: Path, second_present: bool) -> None:
    if first_present != second_present:
        present, missing = (first, second) if first_present else (second, first)
        raise PkiFileError(f"{missing} is missing but {present} exists: restore it from a backup, or move "
                           f"{present} away to create a new CA (every certificate it signed is then invalid)")


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)
