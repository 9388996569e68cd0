"""Users of an authenticated master: made by an admin, who hands each an enrolment token."""
from __future__ import annotations

import re
import time

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from partita.master.db.models import IssuedCertificate, Owner, Token
from partita.master.services import audit, credentials
from partita.master.services.access import require_admin
from partita.master.services.identity import LOCAL_OWNER, Caller
from partita.slap.errors import Conflict, NotFound, ValidationError

_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,62}$")


def clean_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name == LOCAL_OWNER:
        raise ValidationError(f"a user name is 1 to 63 characters: a lower-case letter, then letters, digits, "
                              f"'.', '_' or '-' (and not {LOCAL_OWNER!r}); not {name!r}")
    return name


def create_user(session: Session, caller: Caller, name: str, *, admin: bool, ttl: int | None,
                ca_fingerprint: str) -> tuple[Owner, Token, str]:
    """A new user and its enrolment token (409 if the user exists)."""
    require_admin(caller, "create users")
    name = clean_name(name)
    if session.scalar(select(Owner.id).where(Owner.name == name)) is not None:
        raise Conflict(f"user {name!r} exists (a new enrolment token: slapos user token {name})")
    owner = Owner(name=name, admin=bool(admin), created_at=time.time())
    session.add(owner)
    session.flush()
    audit.record(session, caller, "user.create", name, detail="admin" if admin else "")
    row, text = enrolment_token(session, caller, owner, ttl=ttl, ca_fingerprint=ca_fingerprint)
    return owner, row, text


def enrolment_token(session: Session, caller: Caller, owner: Owner, *, ttl: int | None,
                    ca_fingerprint: str) -> tuple[Token, str]:
    """A single-use token with which `owner` gets (again) a certificate."""
    ttl = credentials.check_ttl(ttl, maximum=credentials.MAX_ENROLMENT_TTL) or credentials.DEFAULT_ENROLMENT_TTL
    return credentials.create(session, caller, credentials.USER_ENROLMENT, owner, ttl=ttl,
                              title=f"enrolment of {owner.name}", ca_fingerprint=ca_fingerprint)


def user_token(session: Session, caller: Caller, name: str, *, ttl: int | None,
               ca_fingerprint: str) -> tuple[Owner, Token, str]:
    require_admin(caller, "make enrolment tokens for users")
    owner = session.scalar(select(Owner).where(Owner.name == name))
    if owner is None or name == LOCAL_OWNER:
        raise NotFound(f"no user {name!r}")
    row, text = enrolment_token(session, caller, owner, ttl=ttl, ca_fingerprint=ca_fingerprint)
    return owner, row, text


def ensure_first_admin(session: Session, name: str, ttl: int, ca_fingerprint: str,
                       new_token: bool) -> tuple[Owner, str | None]:
    """For `slapos master init`: the admin `name` (made if missing) and, if it has never enrolled
    or `new_token` is asked, a fresh enrolment token (older unused ones are revoked)."""
    name = clean_name(name)
    owner = session.scalar(select(Owner).where(Owner.name == name))
    system = Caller(owner=name, role="user", admin=True, address="slapos master init")
    if owner is None:
        owner = Owner(name=name, admin=True, created_at=time.time())
        session.add(owner)
        session.flush()
        audit.record(session, system, "user.create", name, detail="admin (slapos master init)")
    elif not owner.admin:
        raise Conflict(f"user {name!r} exists and is not an admin")
    enrolled = session.scalar(select(IssuedCertificate.id).where(IssuedCertificate.owner_id == owner.id)
                              .limit(1)) is not None
    if enrolled and not new_token:
        return owner, None
    now = time.time()
    for row in session.scalars(select(Token).where(Token.owner_id == owner.id,
                                                   Token.kind == credentials.USER_ENROLMENT)):
        if credentials.state(row, now) == "active":
            row.revoked_at = now
    _row, text = credentials.create(session, system, credentials.USER_ENROLMENT, owner, ttl=ttl,
                                    title=f"enrolment of {name}", ca_fingerprint=ca_fingerprint)
    return owner, text


def revoke_user(session: Session, caller: Caller, name: str) -> tuple[int, int]:
    """A user who leaves: every certificate and token of theirs is refused from the next call on
    (their instances stay; an admin may destroy them). (certificates, tokens) revoked."""
    require_admin(caller, "revoke users")
    owner = session.scalar(select(Owner).where(Owner.name == name))
    if owner is None or name == LOCAL_OWNER:
        raise NotFound(f"no user {name!r}")
    if caller.owner == name:
        raise Conflict("an admin may not revoke themselves (another admin may)")
    now = time.time()
    certificates = session.execute(
        update(IssuedCertificate).where(IssuedCertificate.owner_id == owner.id, IssuedCertificate.revoked_at.is_(None))
        .values(revoked_at=now)).rowcount or 0
    tokens = session.execute(
        update(Token).where(Token.owner_id == owner.id, Token.revoked_at.is_(None)).values(revoked_at=now)
    ).rowcount or 0
    audit.record(session, caller, "user.revoke", name, detail=f"{certificates} certificates, {tokens} tokens")
    return int(certificates), int(tokens)
