"""The JSON API adapter (Partita's primary API): slapproxy's JSON-RPC v0 plus Partita's extensions.

Every method is ``POST /<method name>`` (e.g. ``/slapos.get.v0.software_instance``) with a JSON
object as body; ``GET`` answers 405. A request goes::

    Content-Type ──(a body that is not application/json)► 415 BAD_CONTENT_TYPE
    read the body ──(over max_body_bytes)──────────────► 413 TOO_LARGE
    parse JSON ──(malformed, or U+0000 in a string)───► 400 BAD_ENCODING
    validate against openapi.yaml ──(mismatch)─────────► 400 INVALID
    computer_guid, compute_partition_id ─(Cc/Cf, not NFC)► 400 INVALID
    the method: one service transaction, views -> dict ─(PartitaError)──► its status and code
    200 JSON document

Errors are ``{"status", "type", "title", "code"}`` (slapproxy's body plus Partita's stable code).
Werkzeug's own errors on ``/slapos.*`` paths (unknown method 404, GET 405) get the same body from
`http_error`, which ``master.app`` calls. The methods live in `json_rpc_instances` (instances and
trees), `json_rpc_computers` (compute nodes, partitions, software installations) and `json_rpc_node`
(the node's extensions); their documents are built in `json_rpc_documents`. The OpenAPI document
is served at ``GET /openapi.yaml`` and ``GET /openapi.json``.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES

from partita.master.api import (
    context, json_rpc_auth, json_rpc_binary_cache, json_rpc_computers, json_rpc_instances, json_rpc_node,
    json_rpc_software, openapi, origin,
)
from partita.master.services import validation
from partita.slap.errors import DecodeError, PartitaError, TooLarge

Handler = Callable[[dict[str, Any]], dict[str, Any]]

METHODS: dict[str, Handler] = {
    **json_rpc_instances.METHODS,
    **json_rpc_computers.METHODS,
    **json_rpc_node.METHODS,
    **json_rpc_auth.METHODS,
    **json_rpc_software.METHODS,
    **json_rpc_binary_cache.METHODS,
}
HTTP_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
              409: "CONFLICT", 413: "TOO_LARGE", 415: "BAD_ENCODING"}
MAX_TITLE = 2000

blueprint = Blueprint("json_rpc", __name__)


def error_response(status: int, title: str, code: str) -> Response:
    """The JSON error body every failure gets."""
    if not 400 <= status < 600:
        status = 500
    if len(title) > MAX_TITLE:
        title = title[:MAX_TITLE] + "…"
    body = {"status": status, "type": HTTP_STATUS_CODES.get(status, "Unknown Error"),
            "title": title, "code": code}
    return Response(json.dumps(body), status=status, mimetype="application/json")


def http_error(error: HTTPException) -> Response:
    """A werkzeug error (unknown method, GET, oversized body) as a JSON error body."""
    status = error.code or 500
    title = error.description or error.name
    if isinstance(error, NotFound):  # no route: the method does not exist
        title = f"unknown JSON API method {request.path.lstrip('/')!r}"
    response = error_response(status, title, HTTP_CODES.get(status, f"HTTP_{status}"))
    allow = dict(error.get_headers()).get("Allow")
    if allow:
        response.headers["Allow"] = allow
    return response


def json_response(document: dict[str, Any]) -> Response:
    return Response(json.dumps(document), status=200, mimetype="application/json")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_body() -> Any:
    """The request's JSON body (an empty body counts as {}, but blanks are not JSON); 413 or 400
    when it cannot be read, 415 when it does not say it is JSON."""
    origin.check_json_type()
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise TooLarge(f"the body is over the limit of {context.settings().max_body_bytes} bytes") from None
    if not raw:
        return {}
    try:
        body = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise DecodeError(f"malformed JSON body: {exc}") from None
    _check_strings(body)
    return body


_SURROGATE = re.compile("[\ud800-\udfff]")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise DecodeError(f"malformed JSON body: {text[:40]} is not a finite number")
    return value


def _check_strings(body: Any) -> None:
    """No string may hold U+0000 (PostgreSQL cannot store it) or a lone surrogate (no encoding can)."""
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise DecodeError("malformed JSON body: strings must not contain NUL characters (\\u0000)")
            if _SURROGATE.search(node):
                raise DecodeError("malformed JSON body: strings must not contain lone surrogates")
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


REFERENCE_FIELDS = ("computer_guid", "compute_partition_id")


def _check_references(body: Any) -> None:
    """The computer and partition a body names carry no control or format character (400)."""
    if isinstance(body, dict):
        for field in REFERENCE_FIELDS:
            if isinstance(body.get(field), str):
                validation.check_reference_characters(body[field], field)


def _make_view(method: str, handler: Handler) -> Callable[[], Response]:
    def view() -> Response:
        body = read_body()
        openapi.validate_request(method, body)
        _check_references(body)
        return json_response(handler(body))

    view.__name__ = view.__qualname__ = method.replace(".", "_")
    view.__doc__ = handler.__doc__
    return view


for _method, _handler in METHODS.items():
    blueprint.add_url_rule(f"/{_method}", endpoint=_method.replace(".", "_"),
                           view_func=_make_view(_method, _handler), methods=["POST"])


@blueprint.get("/openapi.yaml")
def openapi_yaml() -> Response:
    """The OpenAPI document, as written."""
    return Response(openapi.document_text(), mimetype="application/yaml")


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI document, as JSON."""
    return Response(openapi.document_json(), mimetype="application/json")


@blueprint.errorhandler(PartitaError)
def _partita_error(error: PartitaError) -> Response:
    return error_response(error.status, error.message, error.code)


@blueprint.errorhandler(HTTPException)
def _werkzeug_error(error: HTTPException) -> Response:
    return http_error(error)


@blueprint.errorhandler(Exception)
def _unexpected_error(error: Exception) -> Response:
    """A bug: logged with its traceback, answered as a JSON 500."""
    current_app.log_exception((type(error), error, error.__traceback__))
    return error_response(500, "internal error (see the master's log)", "INTERNAL")
