"""Enrolment: an enrolment token and a CSR become a certificate, for a new or returning computer
or for a user. The key never reaches the master; the token is consumed in the same transaction
that records the certificate (and, for a new computer, creates it).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy.orm import Session

from partita.master.db.models import Computer, Owner, Token
from partita.master.pki.certificates import parse_csr
from partita.master.services import audit, certificates, credentials
from partita.master.services.certificates import Authority, Issued
from partita.master.services.computers import get_computer
from partita.master.services.identity import Caller
from partita.slap.errors import Forbidden, NotFound, ValidationError


@dataclass(frozen=True)
class Enrolled:
    kind: str   # "computer" or "user"
    name: str   # the computer's reference or the user's name
    issued: Issued


def enrol(session: Session, authority: Authority, token_text: str, csr_pem: str, address: str = "") -> Enrolled:
    """Consume the token and certify the CSR's key for what the token was made for."""
    parse_csr(csr_pem)  # a bad CSR does not burn the token
    token = credentials.consume_enrolment(session, token_text, authority.fingerprint)
    owner = session.get(Owner, token.owner_id)
    if owner is None:  # deleted with its tokens (cascade): unreachable, kept for the type checker
        raise ValidationError("the token's owner no longer exists")
    if token.kind == credentials.USER_ENROLMENT:
        issued = certificates.issue(session, authority, csr_pem, kind="user", common_name=owner.name,
                                    owner_id=owner.id)
        _audit(session, owner.name, "user.enrol", owner.name, address, token.id, issued)
        return Enrolled("user", owner.name, issued)
    computer = session.get(Computer, token.computer_id) if token.computer_id else _new_computer(session, owner, token)
    if computer is None:
        raise Forbidden(credentials.BAD_TOKEN)
    issued = certificates.issue(session, authority, csr_pem, kind="computer", common_name=computer.reference,
                                computer_id=computer.id)
    action = "computer.register" if not token.computer_id else "computer.register-again"
    _audit(session, owner.name, action, computer.reference, address, token.id, issued)
    return Enrolled("computer", computer.reference, issued)


def renew_computer(session: Session, authority: Authority, caller: Caller, reference: str, csr_pem: str) -> Issued:
    """A computer renews its own certificate with the one it still has."""
    if caller.role != "computer" or caller.computer != reference:
        raise Forbidden(f"only computer {reference!r} itself may renew its certificate")
    computer = get_computer(session, reference)
    issued = certificates.issue(session, authority, csr_pem, kind="computer", common_name=reference,
                                computer_id=computer.id)
    audit.record(session, caller, "computer.renew", reference, detail=f"serial {issued.serial}")
    return issued


def certify_partition(session: Session, authority: Authority, caller: Caller, reference: str,
                      partition_reference: str, csr_pem: str) -> Issued:
    """A computer gets a certificate for one of its partitions (the key stays on the node)."""
    if caller.role != "computer" or caller.computer != reference:
        raise Forbidden(f"only computer {reference!r} itself may certify its partitions")
    computer = get_computer(session, reference)
    if not certificates.partition_exists(session, computer, partition_reference):
        raise NotFound(f"unknown partition {partition_reference!r} on computer {reference!r}")
    return certificates.issue(session, authority, csr_pem, kind="partition",
                              common_name=f"{reference}/{partition_reference}"[:64],
                              computer_id=computer.id, partition_reference=partition_reference)


def _new_computer(session: Session, owner: Owner, token: Token) -> Computer:
    """A computer for a first registration, named ``COMP-<id>`` as in SlapOS."""
    computer = Computer(reference=f"COMP-new-{token.id}", owner_id=owner.id, title=token.title,
                        generation=0, created_at=time.time())
    session.add(computer)
    session.flush()
    computer.reference = f"COMP-{computer.id}"
    if not computer.title:
        computer.title = computer.reference
    session.flush()
    return computer


def _audit(session: Session, owner: str, action: str, target: str, address: str, token_id: str,
           issued: Issued) -> None:
    audit.record(session, None, action, target, address=address,
                 detail=f"token {token_id}, serial {issued.serial}, for {owner}")
