"""JSON API methods of an authenticated master: enrolment, certificates, tokens, users, audit.

Partita's extensions under slapproxy's naming (``slapos.<verb>.v0.<name>``). Enrolment is the only
method an anonymous caller may use (the token is its credential); the CA certificate itself is
served at ``GET /partita/ca.crt`` (`master.api.ca`). On the proxy (no authentication) these
methods answer 404 ``NOT_FOUND`` "this server has no authentication", except
``compute_node_certificate`` without a CSR, which keeps slapproxy's empty answer.
"""
from __future__ import annotations

import datetime
import functools
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from partita.master.api import authentication, context
from partita.master.api import json_rpc_documents as documents
from partita.master.services import audit, certificates, computer_registry, credentials, enrolment, users
from partita.master.services.computer_registry import CertificateEntry, ComputerEntry
from partita.master.services.computers import get_computer
from partita.master.services.owners import find_owner
from partita.slap.errors import NotFound, ValidationError


#: An API token lives 100 years at most: a date beyond year 9999 is no ISO 8601 date (`_iso`).
MAX_API_TTL = 100 * 365 * 86400
MAX_SINCE = 1e18


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="seconds")


def _require_authentication() -> None:
    if not context.settings().authentication:
        raise NotFound("this server has no authentication (it is a proxy, or a master with authentication = none)")


def _issued(issued: certificates.Issued) -> dict[str, Any]:
    return {"certificate": issued.certificate_pem, "ca_certificate": issued.ca_pem,
            "not_after": issued.not_after.isoformat(timespec="seconds")}


def post_enrolment(body: dict[str, Any]) -> dict[str, Any]:
    """Trade an enrolment token and a CSR for a certificate (a computer's or a user's)."""
    authority, address = authentication.authority(), authentication.address()
    done = context.database().run_write(
        lambda session: enrolment.enrol(session, authority, body["token"], body["csr"], address))
    return {"kind": done.kind, "name": done.name, **_issued(done.issued)}


def whoami(body: dict[str, Any]) -> dict[str, Any]:
    caller = context.caller()
    name = {"user": caller.owner, "computer": caller.computer,
            "partition": f"{caller.computer}/{caller.partition}"}.get(caller.role, caller.owner)
    return {"kind": caller.role, "name": name, "admin": caller.is_admin,
            "computer_guid": caller.computer, "compute_partition_id": caller.partition}


def post_compute_node_certificate(body: dict[str, Any]) -> dict[str, Any]:
    """With a CSR, a computer renews its certificate; without (slapproxy's call), empty strings."""
    reference = body["computer_guid"]
    if "csr" not in body:
        if context.settings().authentication:
            raise ValidationError("send a certificate signing request (csr) to renew the certificate")
        with context.database().read() as session:
            get_computer(session, reference)
        return {"key": "", "certificate": ""}
    _require_authentication()
    caller, authority = context.caller(), authentication.authority()
    issued = context.database().run_write(
        lambda session: enrolment.renew_computer(session, authority, caller, reference, body["csr"]))
    return _issued(issued)


def post_compute_partition_certificate(body: dict[str, Any]) -> dict[str, Any]:
    caller, authority = context.caller(), authentication.authority()
    issued = context.database().run_write(lambda session: enrolment.certify_partition(
        session, authority, caller, body["computer_guid"], body["compute_partition_id"], body["csr"]))
    return _issued(issued)


def post_compute_node_token(body: dict[str, Any]) -> dict[str, Any]:
    caller, fingerprint = context.caller(), authentication.authority().fingerprint
    ttl = credentials.check_ttl(body.get("ttl"), maximum=credentials.MAX_ENROLMENT_TTL) \
        or credentials.DEFAULT_ENROLMENT_TTL

    def work(session: Session) -> dict[str, Any]:
        credentials.require_may_create(caller, credentials.COMPUTER_ENROLMENT)
        owner = find_owner(session, caller.owner)
        assert owner is not None  # an authenticated user exists
        computer_id = None
        reference = body.get("computer_guid")
        if reference:
            computer_id = get_computer(session, reference).id
        row, text = credentials.create(session, caller, credentials.COMPUTER_ENROLMENT, owner, ttl=ttl,
                                       title=body.get("title", ""), computer_id=computer_id,
                                       ca_fingerprint=fingerprint)
        return {"token": text, "token_id": row.id, "expires_at": _iso(row.expires_at),
                "computer_guid": reference or None}

    return context.database().run_write(work)


def post_compute_node_revocation(body: dict[str, Any]) -> dict[str, Any]:
    caller, reference = context.caller(), body["computer_guid"]

    def work(session: Session) -> int:
        return certificates.revoke_computer(session, caller, get_computer(session, reference))

    count = context.database().run_write(work)
    return {**documents.success(f"Revoked {count} certificates of {reference}"), "revoked": count}


def _certificate_document(entry: CertificateEntry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {"serial": entry.serial, "not_before": _iso(entry.not_before), "not_after": _iso(entry.not_after),
            "state": entry.state, "revoked_at": _iso(entry.revoked_at)}


def _computer_document(entry: ComputerEntry) -> dict[str, Any]:
    return {"computer_guid": entry.reference, "title": entry.title, "owner": entry.owner,
            "created_at": _iso(entry.created_at), "partition_count": entry.partition_count,
            "busy_partition_count": entry.busy_partition_count, "instance_count": entry.instance_count,
            "certificate": _certificate_document(entry.certificate),
            "allocation_scope": entry.allocation_scope, "tags": dict(entry.tags), "network_guid": entry.network,
            "contact_state": entry.contact_state, "last_contact": _iso(entry.last_contact),
            "builder": entry.builder}


def compute_node_list(body: dict[str, Any]) -> dict[str, Any]:
    caller = context.caller()
    with context.database().read() as session:
        entries = computer_registry.list_computers(session, caller, context.settings().unreachable_after_seconds)
    return {"result_list": [_computer_document(entry) for entry in entries]}


def get_compute_node(body: dict[str, Any]) -> dict[str, Any]:
    caller = context.caller()
    with context.database().read() as session:
        entry = computer_registry.computer_info(session, caller, body["computer_guid"],
                                                context.settings().unreachable_after_seconds)
    return {**_computer_document(entry),
            "certificates": [_certificate_document(c) for c in entry.certificates],
            "partitions": [{"partition_id": p, "state": s} for p, s in entry.partitions]}


def _user_answer(owner: Any, row: Any, text: str) -> dict[str, Any]:
    return {"name": owner.name, "admin": bool(owner.admin), "token": text, "token_id": row.id,
            "expires_at": _iso(row.expires_at)}


def post_user(body: dict[str, Any]) -> dict[str, Any]:
    caller, fingerprint = context.caller(), authentication.authority().fingerprint
    return context.database().run_write(lambda session: _user_answer(*users.create_user(
        session, caller, body["name"], admin=body.get("admin", False), ttl=body.get("ttl"),
        ca_fingerprint=fingerprint)))


def post_user_token(body: dict[str, Any]) -> dict[str, Any]:
    caller, fingerprint = context.caller(), authentication.authority().fingerprint
    return context.database().run_write(lambda session: _user_answer(*users.user_token(
        session, caller, body["name"], ttl=body.get("ttl"), ca_fingerprint=fingerprint)))


def post_user_revocation(body: dict[str, Any]) -> dict[str, Any]:
    caller, name = context.caller(), body["name"]
    certificates_count, tokens_count = context.database().run_write(
        lambda session: users.revoke_user(session, caller, name))
    return {**documents.success(f"Revoked {certificates_count} certificates and {tokens_count} tokens of {name}"),
            "revoked": certificates_count + tokens_count}


def post_api_token(body: dict[str, Any]) -> dict[str, Any]:
    caller = context.caller()
    ttl = credentials.check_ttl(body.get("ttl"), maximum=MAX_API_TTL)

    def work(session: Session) -> dict[str, Any]:
        credentials.require_may_create(caller, credentials.API)
        owner = find_owner(session, caller.owner)
        assert owner is not None
        row, text = credentials.create(session, caller, credentials.API, owner, ttl=ttl, title=body.get("title", ""))
        return {"token_id": row.id, "token": text, "title": row.title, "expires_at": _iso(row.expires_at)}

    return context.database().run_write(work)


def api_token_list(body: dict[str, Any]) -> dict[str, Any]:
    caller = context.caller()
    now = time.time()
    with context.database().read() as session:
        rows = credentials.list_tokens(session, caller)
        return {"result_list": [
            {"token_id": row.id, "kind": row.kind, "title": row.title, "owner": owner,
             "created_at": _iso(row.created_at), "expires_at": _iso(row.expires_at),
             "last_used_at": _iso(row.last_used_at), "state": credentials.state(row, now)}
            for row, owner in rows]}


def remove_api_token(body: dict[str, Any]) -> dict[str, Any]:
    caller, token_id = context.caller(), body["token_id"]
    context.database().run_write(lambda session: credentials.revoke(session, caller, token_id))
    return documents.success(f"Revoked token {token_id}")


def audit_event_list(body: dict[str, Any]) -> dict[str, Any]:
    caller = context.caller()
    with context.database().read() as session:
        since = body.get("since")  # clamped: JSON's integers are unbounded, the database's are not
        since = None if since is None else float(min(max(since, -MAX_SINCE), MAX_SINCE))
        events = audit.list_events(session, caller, since, body.get("limit", audit.DEFAULT_LIMIT))
        return {"result_list": [
            {"at": _iso(e.at), "actor": e.actor, "address": e.address, "action": e.action,
             "target": e.target, "outcome": e.outcome, "detail": e.detail} for e in events]}


Handler = Callable[[dict[str, Any]], dict[str, Any]]


def _authenticated(handler: Handler) -> Handler:
    """`handler`, answered 404 by a server without authentication (the proxy)."""
    @functools.wraps(handler)
    def checked(body: dict[str, Any]) -> dict[str, Any]:
        _require_authentication()
        return handler(body)
    return checked


# whoami answers everywhere; compute_node_certificate keeps slapproxy's empty answer without a CSR;
# the computers' list and info too (the proxy's computer: its scope, tags and node, no certificate).
METHODS: dict[str, Handler] = {
    "slapos.get.v0.whoami": whoami,
    "slapos.post.v0.compute_node_certificate": post_compute_node_certificate,
    "slapos.allDocs.v0.compute_node_list": compute_node_list,
    "slapos.get.v0.compute_node": get_compute_node,
} | {name: _authenticated(handler) for name, handler in {
    "slapos.post.v0.enrolment": post_enrolment,
    "slapos.post.v0.compute_partition_certificate": post_compute_partition_certificate,
    "slapos.post.v0.compute_node_token": post_compute_node_token,
    "slapos.post.v0.compute_node_revocation": post_compute_node_revocation,
    "slapos.post.v0.user": post_user,
    "slapos.post.v0.user_token": post_user_token,
    "slapos.post.v0.user_revocation": post_user_revocation,
    "slapos.post.v0.api_token": post_api_token,
    "slapos.allDocs.v0.api_token_list": api_token_list,
    "slapos.remove.v0.api_token": remove_api_token,
    "slapos.allDocs.v0.audit_event_list": audit_event_list,
}.items()}
