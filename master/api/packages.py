"""``/packages/``: the master's package index (PEP 503 "simple"), for nodes that reach only it.

::

    GET /packages/simple/             every project, one link each
    GET /packages/simple/<project>/   the files of one project (any spelling of its name), each
                                      link with ``#sha256=`` (and ``data-requires-python``)
    GET /packages/files/<file>        the file, sent in chunks by the front (`master.front`)

Reading the index needs no identity: the packages are public, and pip, run by a node's build
user, cannot present the node's key. What is served and what is not: `master.services.packages`.
"""
from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.wsgi import wrap_file

from partita.master.api.context import settings
from partita.master.services.packages import PackageNotFound, Wheelhouse, render_project, render_projects

blueprint = Blueprint("packages", __name__, url_prefix="/packages")

CHUNK = 256 * 1024  # bytes the front reads and sends at a time
HTML = "text/html; charset=utf-8"


def _wheelhouse() -> Wheelhouse:
    directory = settings().packages_directory
    if not directory:
        raise PackageNotFound("this server has no package index (the proxy serves none; a master "
                              "serves [slapmaster] packages_directory)")
    return Wheelhouse(directory)


@blueprint.get("/simple/")
def projects() -> Response:
    return Response(render_projects(_wheelhouse().projects()), content_type=HTML)


@blueprint.get("/simple/<project>/")
def project(project: str) -> Response:
    wheelhouse = _wheelhouse()
    files = wheelhouse.files_of(project)
    page = render_project(files[0].project, files, f"{request.script_root}/packages/files/")
    return Response(page, content_type=HTML)


@blueprint.get("/files/<name>")
def package_file(name: str) -> Response:
    wheelhouse = _wheelhouse()
    stream, size = wheelhouse.open(name)
    response = Response(wrap_file(request.environ, stream, CHUNK), direct_passthrough=True,
                        content_type="application/octet-stream")
    response.content_length = size
    return response
