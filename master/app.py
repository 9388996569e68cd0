"""The master's WSGI application: the SLAP XML, JSON and HATEOAS adapters over one Database.

Both `slapos proxy start` and `slapos master start` serve this app; they differ in their settings
(proxy: one local computer, SQLite, every caller believed; master: workers, threads and, with
certificates, authentication) and server. Every call is first checked not to come from a web
page (`master.api.origin`: Host, Origin). On an authenticated app every call but the public ones
(the CA certificate, enrolment, the OpenAPI document, the package index) proves its identity
before its route runs, and every refused call (401, 403) is recorded in the audit log.
"""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException

from partita.master.api import authentication, ca, hateoas, json_rpc, origin, packages, slap_xml
from partita.master.db.database import Database
from partita.master.services import audit
from partita.master.services.certificates import Authority
from partita.master.settings import AppSettings
from partita.slap.errors import PartitaError

log = logging.getLogger(__name__)


# Given, not searched for: Flask's search for an instance folder cannot walk the ``partita``
# namespace package of an editable install. The app keeps no files there.
HERE = str(Path(__file__).resolve().parent)


def create_app(db: Database, settings: AppSettings | None = None, authority: Authority | None = None) -> Flask:
    """The app over `db`. With ``settings.authentication``, `authority` (the CA) is required:
    every call but the CA certificate and enrolment must prove its identity."""
    settings = settings or AppSettings()
    if settings.authentication and authority is None:
        raise ValueError("an authenticated master needs its certificate authority")
    app = Flask("partita.master", root_path=HERE, instance_path=HERE)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.url_map.strict_slashes = False
    app.extensions["partita.db"] = db
    app.extensions["partita.settings"] = settings
    if authority is not None:
        app.extensions[authentication.AUTHORITY] = authority
    app.before_request(origin.check_request)
    if settings.authentication:
        app.before_request(_require_identity)
        app.after_request(_audit_refusal)
    app.register_blueprint(ca.blueprint)
    app.register_blueprint(slap_xml.blueprint)
    app.register_blueprint(json_rpc.blueprint)
    app.register_blueprint(hateoas.blueprint)
    app.register_blueprint(packages.blueprint)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(PartitaError, _partita_error)
    return app


def _require_identity() -> None:
    """Every call but the public ones (and the package index's) proves who it is before its route
    runs (401 otherwise)."""
    if request.path not in authentication.PUBLIC_PATHS and request.blueprint != packages.blueprint.name:
        authentication.identify()


def _audit_refusal(response: Response) -> Response:
    """Record every call refused for lack of identity or rights (401, 403) in the audit log."""
    if response.status_code in (401, 403):
        try:
            _record_refusal(response)
        except Exception:  # the answer matters more than its record; the log says what failed
            log.exception("could not record a refused call in the audit log")
    return response


def _record_refusal(response: Response) -> None:
    caller = g.get("partita_identity")
    detail = response.get_data(as_text=True).strip()[:500] if not response.direct_passthrough else ""
    db: Database = current_app.extensions["partita.db"]
    db.run_write(lambda session: audit.record(
        session, caller, f"refused {request.method} {request.path}"[:64], request.path, outcome="refused",
        detail=detail, address=authentication.address()))


def _partita_error(error: PartitaError):  # type: ignore[no-untyped-def]
    """A PartitaError outside the adapters' routes (the identity check of an unknown path)."""
    if request.path.startswith("/slapos."):
        return json_rpc.error_response(error.status, error.message, error.code)
    return f"{error.status} {error.code}: {error.message}\n", error.status, {"Content-Type": "text/plain; charset=utf-8"}


def _http_error(error: HTTPException):  # type: ignore[no-untyped-def]
    """Werkzeug's own errors (404 route, 405 method, 413 body) as one plain line, never HTML.

    On the JSON API's paths (``/slapos.*``) they get its JSON error body instead.
    """
    if request.path.startswith("/slapos."):
        return json_rpc.http_error(error)
    return f"{error.code} {error.name}: {error.description}\n", error.code, {"Content-Type": "text/plain; charset=utf-8"}
