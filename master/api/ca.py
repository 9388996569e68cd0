"""``GET /partita/ca.crt``: the master's CA certificate, for anyone.

A new node or user downloads it before it trusts anything, and checks it against the fingerprint
its enrolment token carries (as kubeadm's discovery hash); the certificate is public.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app

from partita.master.api.authentication import AUTHORITY

blueprint = Blueprint("ca", __name__)


@blueprint.get("/partita/ca.crt")
def ca_certificate() -> Response:
    authority = current_app.extensions.get(AUTHORITY)
    if authority is None:
        return Response("404 Not Found: this server has no certificate authority (it is a proxy)\n", 404,
                        content_type="text/plain; charset=utf-8")
    return Response(authority.ca_pem, content_type="application/x-pem-file")
