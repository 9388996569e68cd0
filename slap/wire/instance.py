"""The JSON API's instance documents: what the master says about a software instance.

- `InstanceDocument` (OpenAPI ``InstanceDocument``): slapproxy's instance document plus Partita's
  ``status_reason``, ``reported_state`` and ``timestamp``. The master renders it in answer to
  requesting or reading an instance (``slapos.post.v0.software_instance``,
  ``slapos.get.v0.software_instance``, ``slapos.get.v0.instance_tree``, …); the CLI
  (``slapos request``, ``slapos info``) and the ``partita:request`` recipe parse it.
- `NodeInstanceDocument` (OpenAPI ``NodeInstanceDocument``): the same as a node sees it, inside
  the compute node state, with the shared instances it serves (`SharedInstance`); the node parses
  it (through `slap.wire.node_state`) and copies what the instance buildout needs into
  ``instance.json`` (`slap.wire.instance_file`).
- `TreeEntry` (OpenAPI ``InstanceTreeEntry``): one tree of ``slapos.allDocs.v0.instance_tree_list``,
  read by ``slapos list``.

Field names are the wire's keys, in the order the master writes them. `tests/slap/test_wire.py`
holds them to ``master/api/openapi.yaml``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from partita.slap.states import InstanceState
from partita.slap.wire._fields import Fields, to_json

INSTANCE_STATES = frozenset(s.value for s in InstanceState)


@dataclass(frozen=True)
class InstanceDocument:
    title: str
    instance_guid: str | None            # None only in the answer to destroying an unknown instance
    software_release_uri: str
    software_type: str
    state: str                           # requested: started | stopped | destroyed
    connection_parameters: dict[str, Any]
    parameters: dict[str, Any]
    shared: bool
    root_instance_title: str
    ip_list: tuple[tuple[str, str], ...]   # (interface, address)
    full_ip_list: tuple[Any, ...]
    sla_parameters: dict[str, Any]
    computer_guid: str | None            # None while waiting for a partition
    compute_partition_id: str | None     # None while waiting for a partition
    processing_timestamp: int
    access_status_message: str
    status_reason: str                   # why the instance is (not) ready
    reported_state: str | None           # what the node last reported (None: nothing yet)
    timestamp: float                     # bumped whenever the node must process the instance again


@dataclass(frozen=True)
class SharedInstance:
    """A shared instance served by the instance that hosts it."""

    instance_guid: str
    title: str
    software_type: str
    parameters: dict[str, Any]
    connection_parameters: dict[str, Any]


@dataclass(frozen=True)
class NodeInstanceDocument(InstanceDocument):
    """An instance document inside the compute node state: an instance on a partition, so it
    always has a guid, and the shared instances it serves."""

    instance_guid: str                   # type: ignore[assignment]
    shared_instance_list: tuple[SharedInstance, ...]


@dataclass(frozen=True)
class TreeEntry:
    title: str
    instance_guid: str
    state: str
    status_reason: str
    software_release_uri: str
    software_type: str
    compute_partition_id: str | None
    computer_guid: str | None
    shared: bool


def render_instance(document: InstanceDocument) -> dict[str, Any]:
    """The document as the JSON API sends it (a `NodeInstanceDocument` with its shared instances)."""
    return to_json(document)


def parse_instance(raw: object, where: str = "instance document") -> InstanceDocument:
    """An instance document read from JSON; a MalformedDocument naming the field otherwise."""
    return InstanceDocument(**_instance_fields(Fields(raw, where)))


def parse_node_instance(raw: object, where: str = "node instance document") -> NodeInstanceDocument:
    """An instance document as the node sees it (its guid is required)."""
    fields = Fields(raw, where)
    values = _instance_fields(fields)
    values["instance_guid"] = fields.text("instance_guid")
    shared = tuple(read_shared(entry) for entry in fields.objects("shared_instance_list"))
    return NodeInstanceDocument(**values, shared_instance_list=shared)


def _instance_fields(fields: Fields) -> dict[str, Any]:
    return {
        "title": fields.text("title"),
        "instance_guid": fields.optional_text("instance_guid"),
        "software_release_uri": fields.text("software_release_uri"),
        "software_type": fields.text("software_type"),
        "state": fields.choice("state", INSTANCE_STATES),
        "connection_parameters": fields.mapping("connection_parameters"),
        "parameters": fields.mapping("parameters"),
        "shared": fields.boolean("shared"),
        "root_instance_title": fields.text("root_instance_title"),
        "ip_list": fields.ip_list("ip_list"),
        "full_ip_list": tuple(fields.array("full_ip_list")),
        "sla_parameters": fields.mapping("sla_parameters"),
        "computer_guid": fields.optional_text("computer_guid"),
        "compute_partition_id": fields.optional_text("compute_partition_id"),
        "processing_timestamp": fields.integer("processing_timestamp"),
        "access_status_message": fields.text("access_status_message"),
        "status_reason": fields.text("status_reason"),
        "reported_state": fields.optional_text("reported_state"),
        "timestamp": fields.number("timestamp"),
    }


def read_shared(fields: Fields) -> SharedInstance:
    """One entry of ``shared_instance_list``."""
    return SharedInstance(
        instance_guid=fields.text("instance_guid"), title=fields.text("title"),
        software_type=fields.text("software_type"), parameters=fields.mapping("parameters"),
        connection_parameters=fields.mapping("connection_parameters"),
    )


def render_tree_entry(entry: TreeEntry) -> dict[str, Any]:
    return to_json(entry)


def parse_tree_entry(raw: object, where: str = "instance tree entry") -> TreeEntry:
    fields = Fields(raw, where)
    return TreeEntry(
        title=fields.text("title"), instance_guid=fields.text("instance_guid"),
        state=fields.choice("state", INSTANCE_STATES), status_reason=fields.text("status_reason"),
        software_release_uri=fields.text("software_release_uri"), software_type=fields.text("software_type"),
        compute_partition_id=fields.optional_text("compute_partition_id"),
        computer_guid=fields.optional_text("computer_guid"), shared=fields.boolean("shared"),
    )
