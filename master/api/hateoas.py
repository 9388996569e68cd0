"""HATEOAS reads, enough for the real client's `slapos service list|info` and `computer list|info`.

The client searches with a handful of fixed query strings and then follows a "traverse" link to
an ERP5-form-shaped document; only fields typed String/Integer/... are kept by the client, with
their ``my_`` prefix stripped. Partita also sends ``my_news`` so that `slapos service info` shows a
green (started) or red (error) status instead of "unsupported", with the status reason `slapos info`
gives (an unreachable node included).
"""
from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, redirect, request, url_for

from partita.master.api.context import caller, database, settings
from partita.master.api.slap_xml.instance_xml import dict_to_instance_xml
from partita.master.services import computers, instances
from partita.master.services.views import InstanceView, instance_view
from partita.slap.errors import NotFound

blueprint = Blueprint("hateoas", __name__, url_prefix="/hateoas")

_TREES = 'portal_type:"Instance Tree" AND validation_state:validated'
_NODES = 'portal_type:"Compute Node" AND validation_state:validated'
_QUOTED = re.compile(r'^"((?:\\.|[^\\"])*)"$')


@blueprint.get("/")
def root() -> Any:
    mode = request.args.get("mode")
    if mode is None:
        base = request.host_url.rstrip("/") + url_for(".root")
        return {"_links": {
            "raw_search": {"href": base + "?mode=search&query={query}&select_list={select_list}"},
            "traverse": {"href": base + "?mode=traverse&relative_url={relative_url}&view={view}"},
        }}
    if mode == "traverse":
        target = request.args.get("relative_url", "")
        if not target.startswith(url_for(".root")):
            abort(400, f"cannot traverse to {target[:200]!r}")
        return redirect(target)
    if mode == "search":
        return {"_embedded": {"contents": _search(request.args.get("query", ""))}}
    abort(400, f"unhandled mode {mode[:50]!r}")


def _search(query: str) -> list[dict[str, Any]]:
    for prefix, key, lister in ((_TREES, "title", _trees), (_NODES, "reference", _computers)):
        if query == prefix:
            return lister(None)
        if query.startswith(prefix + f" AND {key}:="):
            match = _QUOTED.match(query[len(prefix + f" AND {key}:="):])
            if match:
                return lister(match.group(1))
    abort(400, f"unhandled query {query[:200]!r}")


def _trees(title: str | None) -> list[dict[str, Any]]:
    with database().read() as session:
        if title is not None:
            try:
                roots = [instances.get_root_by_title(session, caller(), title)]
            except NotFound:
                return []
        else:
            roots = instances.list_roots(session, caller())
        views = [instance_view(session, root, settings().unreachable_after_seconds) for root in roots]
    return [{
        "title": view.title, "url_string": view.software_release, "slap_state": view.requested_state,
        "relative_url": url_for(".instance", title=view.title),
    } for view in views]


def _computers(reference: str | None) -> list[dict[str, Any]]:
    with database().read() as session:
        found = computers.list_computers(session)
        rows = [(c.reference, c.title) for c in found if reference in (None, c.reference)]
    return [{"title": title, "reference": ref, "relative_url": url_for(".computer", reference=ref)}
            for ref, title in rows]


@blueprint.get("/instances/<path:title>")
def instance(title: str) -> Any:
    with database().read() as session:
        try:
            view = instance_view(session, instances.get_root_by_title(session, caller(), title),
                                 settings().unreachable_after_seconds)  # the status `slapos info` shows
        except NotFound:
            abort(404, f"no instance titled {title[:200]!r}")
    return _form("Instance Tree", "InstanceTree_viewAsHateoas", _instance_fields(view))


def _instance_fields(view: InstanceView) -> dict[str, tuple[str, Any]]:
    news = "#error " if view.reported_state == "error" else "#access "
    return {
        "reference": ("StringField", view.title),
        "title": ("StringField", view.title),
        "slap_state": ("StringField", "unused" if view.shared else view.requested_state),
        "text_content": ("TextAreaField", dict_to_instance_xml(view.parameters)),
        "connection_parameter_list": ("StringField", [
            {"connection_key": key, "connection_value": value}
            for key, value in sorted(view.connection_parameters.items())
        ]),
        "url_string": ("StringField", view.software_release),
        "source_reference": ("StringField", view.software_type),
        "root_slave": ("IntegerField", 1 if view.shared else 0),
        "status_reason": ("StringField", view.status),
        "news": ("StringField", {"instance": [{"text": news + view.status}]}),
    }


@blueprint.get("/computers/<path:reference>")
def computer(reference: str) -> Any:
    with database().read() as session:
        found = computers.find_computer(session, reference)
        if found is None:
            abort(404, f"unknown computer {reference[:200]!r}")
        title = found.title
    return _form("Compute Node", "Computer_viewAsHateoas",
                 {"reference": ("StringField", reference), "title": ("StringField", title)})


def _form(portal_type: str, form_id: str, fields: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    view: dict[str, Any] = {"form_id": {"type": "StringField", "key": "form_id", "default": form_id}}
    for name, (kind, value) in fields.items():
        view[f"my_{name}"] = {"type": kind, "key": f"field_my_{name}", "default": value}
    return {"_embedded": {"_view": view}, "_links": {"type": {"name": portal_type}}}
