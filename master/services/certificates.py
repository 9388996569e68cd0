"""Certificates the master issues and accepts: users, computers and partitions.

The CA (`master.pki`) signs; this module decides what is signed for whom, records every issued
certificate (serial, owner, lifetime; never a key) and answers, per call, who a presented
certificate is (`identify`): unknown serials, revoked and expired certificates are refused, so a
revocation is seen by every worker on its next call (the catalog is the one place it is kept).
"""
from __future__ import annotations

import datetime
import secrets
import time
from dataclasses import dataclass
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from partita.master.db.models import Computer, IssuedCertificate, Owner, Partition
from partita.master.pki import certificates as certs
from partita.master.pki.certificates import CertifiedKey
from partita.master.services import audit
from partita.master.services.access import check_computer
from partita.master.services.identity import Caller
from partita.slap.errors import Forbidden, Revoked, Unauthenticated

KINDS = ("user", "computer", "partition")


@dataclass(frozen=True)
class Lifetimes:
    """How many days each kind of certificate lives (renewed by the node well before the end)."""

    user: int = 90
    computer: int = 30
    partition: int = 30

    def days(self, kind: str) -> int:
        return int(getattr(self, kind))


@dataclass(frozen=True)
class Authority:  # frozen: cached_property writes its value in the instance dict, which still works
    """What the app signs with: the CA (loaded once per worker), its PEM and the lifetimes."""

    ca: CertifiedKey
    lifetimes: Lifetimes = Lifetimes()

    @property
    def ca_pem(self) -> str:
        return certs.certificate_pem(self.ca.certificate).decode("ascii")

    @property
    def fingerprint(self) -> str:
        return certs.fingerprint(self.ca.certificate)

    @cached_property
    def derivation_secret(self) -> bytes:
        return certs.derivation_secret(self.ca.key)


@dataclass(frozen=True)
class Issued:
    certificate_pem: str
    ca_pem: str
    not_after: datetime.datetime
    serial: str


def serial_hex(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "x")


def issue(session: Session, authority: Authority, csr_pem: str, *, kind: str, common_name: str,
          owner_id: int | None = None, computer_id: int | None = None,
          partition_reference: str | None = None, key_label: str | None = None) -> Issued:
    """Sign the key of `csr_pem` for `common_name` and record the certificate (and, for a key
    the master derives, the label and the certificate to answer again)."""
    certificate = certs.sign_csr(authority.ca, csr_pem, common_name, authority.lifetimes.days(kind))
    if kind == "partition" and computer_id is not None and partition_reference is not None:
        prune_expired(session, computer_id, partition_reference, time.time())
    return _record(session, authority, certificate, kind, owner_id, computer_id, partition_reference, key_label)


def partition_key_and_certificate(session: Session, authority: Authority, computer: Computer,
                                  partition_reference: str, now: float | None = None) -> tuple[str, str]:
    """The key and certificate of a partition for SLAP XML's getComputerPartitionCertificate.

    SlapOS's nodes expect the master to make the key, ask on every pass, and rewrite the files
    when the answer differs; so the answer stays the same while the certificate is valid (a new
    one when it is expiring, revoked, or the partition was freed). The key is derived from the CA
    key and a label (`certs.derived_key`): the catalog holds no private key."""
    now = time.time() if now is None else now
    row = session.scalars(
        select(IssuedCertificate)
        .where(IssuedCertificate.computer_id == computer.id, IssuedCertificate.kind == "partition",
               IssuedCertificate.partition_reference == partition_reference,
               IssuedCertificate.key_label.is_not(None), IssuedCertificate.revoked_at.is_(None))
        .order_by(IssuedCertificate.not_after.desc()).limit(1)).first()
    if row is not None and row.key_label and row.pem and state(row, now) == "valid":
        return _key_text(authority, row.key_label), row.pem
    label = secrets.token_hex(16)
    key = certs.derived_key(authority.derivation_secret, label)
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, hashes.SHA256())
    issued = issue(session, authority, csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
                   kind="partition", common_name=f"{computer.reference}/{partition_reference}"[:64],
                   computer_id=computer.id, partition_reference=partition_reference, key_label=label)
    return certs.key_pem(key).decode("ascii"), issued.certificate_pem


def _key_text(authority: Authority, label: str) -> str:
    return certs.key_pem(certs.derived_key(authority.derivation_secret, label)).decode("ascii")


def _record(session: Session, authority: Authority, certificate: x509.Certificate, kind: str,
            owner_id: int | None, computer_id: int | None, partition_reference: str | None,
            key_label: str | None) -> Issued:
    pem = certs.certificate_pem(certificate).decode("ascii")
    session.add(IssuedCertificate(
        serial=serial_hex(certificate), kind=kind, owner_id=owner_id, computer_id=computer_id,
        partition_reference=partition_reference, key_label=key_label, pem=pem if key_label else None,
        not_before=certificate.not_valid_before_utc.timestamp(),
        not_after=certificate.not_valid_after_utc.timestamp(), created_at=time.time(),
    ))
    session.flush()
    return Issued(pem, authority.ca_pem, certificate.not_valid_after_utc, serial_hex(certificate))


def state(row: IssuedCertificate, now: float) -> str:
    """``revoked``, ``expired``, ``expiring`` (less than a third of its life left) or ``valid``."""
    if row.revoked_at is not None:
        return "revoked"
    if row.not_after <= now:
        return "expired"
    if row.not_after - now < (row.not_after - row.not_before) / 3:
        return "expiring"
    return "valid"


# One query per call (it runs on every authenticated request): the certificate's row, its
# computer, and its owner: the user's for a user certificate, the computer's owner otherwise.
_IDENTIFY = (
    select(IssuedCertificate.kind, IssuedCertificate.revoked_at, IssuedCertificate.not_after,
           IssuedCertificate.partition_reference, Owner.name, Owner.admin, Computer.reference)
    .outerjoin(Computer, Computer.id == IssuedCertificate.computer_id)
    .outerjoin(Owner, Owner.id == func.coalesce(IssuedCertificate.owner_id, Computer.owner_id))
)


def identify(session: Session, serial: str, address: str = "", now: float | None = None) -> Caller:
    """The caller a presented certificate (already verified against the CA) stands for."""
    now = time.time() if now is None else now
    found = session.execute(_IDENTIFY.where(IssuedCertificate.serial == serial)).first()
    if found is None:
        raise Unauthenticated(f"the client certificate (serial {serial}) is not known to this master")
    kind, revoked_at, not_after, partition, owner, admin, computer = found
    if revoked_at is not None:
        raise Revoked(f"the client certificate (serial {serial}) was revoked on "
                      f"{datetime.datetime.fromtimestamp(revoked_at, datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    if not_after <= now:
        raise Unauthenticated(f"the client certificate (serial {serial}) has expired")
    if kind == "user":
        return Caller(owner=owner, role="user", admin=bool(admin), address=address)
    if kind == "computer":
        return Caller(owner=owner or "", role="computer", computer=computer, address=address)
    return Caller(owner=owner or "", role="partition", computer=computer, partition=partition, address=address)


def revoke_computer(session: Session, caller: Caller, computer: Computer) -> int:
    """Revoke every certificate of `computer` and of its partitions; how many were revoked."""
    check_computer(session, caller, computer)
    if caller.role != "user":
        raise Forbidden("only an admin or the computer's owner may revoke its certificates")
    result = session.execute(
        update(IssuedCertificate)
        .where(IssuedCertificate.computer_id == computer.id, IssuedCertificate.revoked_at.is_(None))
        .values(revoked_at=time.time()))
    count = int(result.rowcount or 0)
    audit.record(session, caller, "computer.revoke", computer.reference, detail=f"{count} certificates")
    return count


def revoke_partition(session: Session, computer_id: int, partition_reference: str) -> int:
    """A freed partition's certificates: revoked, so that what its last instance kept of them
    never acts for the next instance on that partition; how many were revoked."""
    result = session.execute(
        update(IssuedCertificate)
        .where(IssuedCertificate.computer_id == computer_id, IssuedCertificate.kind == "partition",
               IssuedCertificate.partition_reference == partition_reference,
               IssuedCertificate.revoked_at.is_(None))
        .values(revoked_at=time.time()))
    return int(result.rowcount or 0)


def prune_expired(session: Session, computer_id: int, partition_reference: str, now: float) -> None:
    """Forget a partition's certificates that expired more than a lifetime ago (SlapOS's nodes
    ask for a new one each time they process the partition)."""
    session.execute(delete(IssuedCertificate).where(
        IssuedCertificate.computer_id == computer_id, IssuedCertificate.kind == "partition",
        IssuedCertificate.partition_reference == partition_reference,
        IssuedCertificate.not_after < now - (IssuedCertificate.not_after - IssuedCertificate.not_before)))


def history(session: Session, computer_id: int, kind: str = "computer") -> list[IssuedCertificate]:
    """The certificates of a computer (newest first)."""
    return list(session.scalars(
        select(IssuedCertificate)
        .where(IssuedCertificate.computer_id == computer_id, IssuedCertificate.kind == kind)
        .order_by(IssuedCertificate.not_after.desc(), IssuedCertificate.id.desc())))


def partition_exists(session: Session, computer: Computer, partition_reference: str) -> bool:
    return session.scalar(select(Partition.id).where(
        Partition.computer_id == computer.id, Partition.reference == partition_reference)) is not None
