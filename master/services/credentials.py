"""Tokens in the catalog: enrolment tokens (single use, short-lived) and API tokens (bearer).

A token's secret is shown once, when it is made; the catalog keeps its SHA-256. Consuming an
enrolment token marks it used in the same transaction that issues the certificate, under a row
lock, so two concurrent enrolments with one token cannot both succeed. Every refusal of a token
says the same thing, so that a caller cannot tell an unknown token from a used one.
"""
from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from partita.master.db.models import Owner, Token
from partita.master.services import audit
from partita.master.services.access import require_admin, require_user
from partita.master.services.identity import Caller
from partita.slap import tokens
from partita.slap.errors import BadToken, Forbidden, NotFound, Revoked, Unauthenticated, ValidationError

API, COMPUTER_ENROLMENT, USER_ENROLMENT = "api", "computer-enrolment", "user-enrolment"
ENROLMENT_KINDS = (COMPUTER_ENROLMENT, USER_ENROLMENT)
DEFAULT_ENROLMENT_TTL = 3600
MAX_ENROLMENT_TTL = 7 * 86400
MAX_TITLE = 255
TOUCH_EVERY = 60.0
BAD_TOKEN = "the enrolment token is unknown, expired, revoked or already used"


def check_ttl(ttl: int | None, *, maximum: int | None) -> int | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
        raise ValidationError(f"ttl is a positive number of seconds, not {ttl!r}")
    if maximum is not None and ttl > maximum:
        raise ValidationError(f"ttl is at most {maximum} seconds ({maximum // 86400} days) for this token")
    return ttl


def create(session: Session, caller: Caller, kind: str, owner: Owner, *, ttl: int | None, title: str = "",
           computer_id: int | None = None, ca_fingerprint: str | None = None) -> tuple[Token, str]:
    """A new token row and the token's text (the only time the secret exists outside the caller)."""
    if len(title) > MAX_TITLE or not title.isprintable():
        raise ValidationError(f"a token title has at most {MAX_TITLE} printable characters")
    token = tokens.new_token(ca_fingerprint if kind in ENROLMENT_KINDS else None)
    now = time.time()
    row = Token(id=token.id, kind=kind, secret_hash=token.secret_hash(), owner_id=owner.id,
                computer_id=computer_id, title=title, created_by=caller.actor, created_at=now,
                expires_at=None if ttl is None else now + ttl)
    session.add(row)
    session.flush()
    audit.record(session, caller, "token.create", f"{kind} {row.id}", detail=f"for {owner.name}"
                 + (f", title {title!r}" if title else ""))
    return row, token.text()


def consume_enrolment(session: Session, text: str, ca_fingerprint: str, now: float | None = None) -> Token:
    """The enrolment token `text`, marked used; BadToken (403) for anything that cannot be used."""
    now = time.time() if now is None else now
    try:
        token = tokens.parse_token(text, enrolment=True)
    except tokens.TokenFormatError as error:
        raise BadToken(str(error)) from None
    if token.ca_fingerprint != ca_fingerprint:
        raise BadToken("the enrolment token was made for another master (its CA fingerprint is not this master's)")
    row = session.scalar(select(Token).where(Token.id == token.id).with_for_update())
    if (row is None or row.kind not in ENROLMENT_KINDS or not tokens.same_hash(row.secret_hash, token.secret)
            or state(row, now) != "active"):
        raise BadToken(BAD_TOKEN)
    row.used_at = now
    return row


def authenticate_api(session: Session, text: str, address: str = "",
                     now: float | None = None) -> tuple[Caller, str | None]:
    """The user an ``Authorization: Bearer`` API token stands for, and the token's id when its
    last use should be noted (`touch`: at most once a minute, so a busy script costs no write
    per call)."""
    now = time.time() if now is None else now
    try:
        token = tokens.parse_token(text, enrolment=False)
    except tokens.TokenFormatError as error:
        raise Unauthenticated(f"bad bearer token: {error}") from None
    found = session.execute(select(Token, Owner.name, Owner.admin).join(Owner, Owner.id == Token.owner_id)
                            .where(Token.id == token.id)).first()
    if found is None or found[0].kind != API or not tokens.same_hash(found[0].secret_hash, token.secret):
        raise Unauthenticated("the API token is not known to this master")
    row, name, admin = found
    current = state(row, now)
    if current == "revoked":
        raise Revoked(f"the API token {row.id} was revoked")
    if current != "active":
        raise Unauthenticated(f"the API token {row.id} has expired")
    stale = row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY
    return Caller(owner=name, role="user", admin=bool(admin), address=address), row.id if stale else None


def touch(session: Session, token_id: str, now: float | None = None) -> None:
    """Note when an API token was last used (a separate, cheap write)."""
    row = session.get(Token, token_id)
    if row is not None:
        row.last_used_at = time.time() if now is None else now


def state(row: Token, now: float) -> str:
    """``revoked``, ``used`` (an enrolment token), ``expired`` or ``active``."""
    if row.revoked_at is not None:
        return "revoked"
    if row.used_at is not None and row.kind in ENROLMENT_KINDS:
        return "used"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def list_tokens(session: Session, caller: Caller) -> list[tuple[Token, str]]:
    """(token, owner name): every token for an admin, the caller's own otherwise."""
    require_user(caller, "list tokens")
    query = select(Token, Owner.name).join(Owner, Owner.id == Token.owner_id).order_by(Token.created_at)
    if not caller.is_admin:
        query = query.where(Owner.name == caller.owner)
    return [(row, name) for row, name in session.execute(query)]


def revoke(session: Session, caller: Caller, token_id: str) -> Token:
    require_user(caller, "revoke tokens")
    found = session.execute(select(Token, Owner.name).join(Owner, Owner.id == Token.owner_id)
                            .where(Token.id == token_id)).first()
    if found is None or (not caller.is_admin and found[1] != caller.owner):
        raise NotFound(f"no token {token_id!r}")
    row = found[0]
    if row.revoked_at is None:
        row.revoked_at = time.time()
        audit.record(session, caller, "token.revoke", f"{row.kind} {row.id}")
    return row


def require_may_create(caller: Caller, kind: str) -> None:
    if kind == API:
        require_user(caller, "create API tokens")
        if caller.role != "user":
            raise Forbidden("API tokens belong to users: enrol first (slapos configure client)")
    else:
        require_admin(caller, "create enrolment tokens")
