"""JSON API methods about software release names (``product.NAME``, Partita's extension).

Each method receives a body already validated against ``openapi.yaml`` and runs one service
transaction (`master.services.software_names`). No business rule lives here.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from partita.master.api import context
from partita.master.services import software_names
from partita.master.services.software_names import NamedRelease


def _document(entry: NamedRelease) -> dict[str, Any]:
    return {"name": entry.name, "software_release_uri": entry.url, "source": entry.source}


def get_software_release_name(body: dict[str, Any]) -> dict[str, Any]:
    with context.database().read() as session:
        return _document(software_names.lookup(session, body["name"]))


def software_release_name_list(body: dict[str, Any]) -> dict[str, Any]:
    with context.database().read() as session:
        return {"result_list": [_document(entry) for entry in software_names.known_names(session)]}


def put_software_release_name(body: dict[str, Any]) -> dict[str, Any]:
    caller = context.caller()
    return context.database().run_write(lambda session: _document(
        software_names.publish(session, caller, body["name"], body["software_release_uri"])))


METHODS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "slapos.get.v0.software_release_name": get_software_release_name,
    "slapos.allDocs.v0.software_release_name_list": software_release_name_list,
    "slapos.put.v0.software_release_name": put_software_release_name,
}
