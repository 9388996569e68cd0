"""What `slapos proxy show` prints: the catalog as plain rows (pure over the service views)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partita.master.db.models import SoftwareInstance
from partita.master.services.computers import list_computers
from partita.master.services.computer_views import computer_view
from partita.master.services.views import instance_view

SECTIONS = ("computers", "partitions", "instances", "supplies", "connections")


def catalog_rows(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Every section of the catalog as a list of flat dicts."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in SECTIONS}
    for computer in list_computers(session):
        view = computer_view(session, computer)
        rows["computers"].append({"computer": view.reference, "partitions": len(view.partitions),
                                  "generation": view.generation})
        for partition in view.partitions:
            rows["partitions"].append({
                "computer": view.reference, "partition": partition.reference, "state": partition.state,
                "addresses": " ".join(a.address for a in partition.addresses),
                "instance": partition.instance.title if partition.instance else "",
            })
        for supply in view.supplies:
            rows["supplies"].append({"computer": supply.computer, "software_release": supply.url,
                                     "requested": supply.requested_state,
                                     "reported": supply.reported_state or ""})
    for instance in session.scalars(select(SoftwareInstance).order_by(SoftwareInstance.id)):
        view = instance_view(session, instance)
        rows["instances"].append({
            "title": view.title, "tree": view.root_title, "guid": view.guid, "state": view.requested_state,
            "shared": view.shared, "partition": f"{view.computer}/{view.partition}" if view.partition else "",
            "software_release": view.software_release, "software_type": view.software_type,
            "status": view.status, "parameters": view.parameters,
        })
        for key, value in sorted(view.connection_parameters.items()):
            rows["connections"].append({"instance": view.title, "key": key, "value": value})
    return rows
