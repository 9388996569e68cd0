"""The master's WSGI application: the SLAP XML, JSON and HATEOAS adapters over one Database.

Both `slapos proxy start` and `slapos master start` serve this app; they differ only in their
settings (proxy: one local computer, SQLite) and server (workers, threads).
"""
from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from partita.master.api import hateoas, json_rpc, slap_xml
from partita.master.db.database import Database
from partita.master.settings import AppSettings


# Given, not searched for: Flask's search for an instance folder cannot walk the ``partita``
# namespace package of an editable install. The app keeps no files there.
HERE = str(Path(__file__).resolve().parent)


def create_app(db: Database, settings: AppSettings | None = None) -> Flask:
    settings = settings or AppSettings()
    app = Flask("partita.master", root_path=HERE, instance_path=HERE)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.url_map.strict_slashes = False
    app.extensions["partita.db"] = db
    app.extensions["partita.settings"] = settings
    app.register_blueprint(slap_xml.blueprint)
    app.register_blueprint(json_rpc.blueprint)
    app.register_blueprint(hateoas.blueprint)
    app.register_error_handler(HTTPException, _http_error)
    return app


def _http_error(error: HTTPException):  # type: ignore[no-untyped-def]
    """Werkzeug's own errors (404 route, 405 method, 413 body) as one plain line, never HTML.

    On the JSON API's paths (``/slapos.*``) they get its JSON error body instead.
    """
    if request.path.startswith("/slapos."):
        return json_rpc.http_error(error)
    return f"{error.code} {error.name}: {error.description}\n", error.code, {"Content-Type": "text/plain; charset=utf-8"}
