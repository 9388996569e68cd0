"""Views -> the ``slapos.slap.slap`` objects the SLAP XML answers carry, as `MarshalObject` trees.

Pure functions, no IO: each builds exactly the attributes and constructor arguments that the real
slapos.core 1.26 client reads (``reference/slap-protocol.md`` §2.2, §2.5, §3.4). `marshal.dumps`
turns them into bytes (it sorts dictionary keys, as xml_marshaller does).

Every list and dictionary is built fresh for each place it appears: the codec writes a second
occurrence of the same Python object as a ``<reference>``, which is not what the incumbent sends.

A busy partition with an IPv6 range gives it in its ``_parameter_dict`` as ``ipv6_range``, in the
shape slapos format writes to a partition's ``.slapos-resource`` (`ipv6_range_entry`), which
slapos.cookbook's slapconfiguration recipe turns into ``ipv6-range-network`` and its siblings.

Parameters travel on the SLAP wire as ``<instance>`` XML on the incumbent, so their values are
strings there; `wire_parameters` gives non-string values (stored by the JSON API) their string form.
The ``_`` (JSON-in-XML) parameter is a string like any other and passes through untouched.
"""
from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

from partita.master.api.slap_xml.instance_xml import dict_to_instance_xml
from partita.master.api.slap_xml.marshal import Fragment, MarshalObject
from partita.master.services.views import ComputerView, InstanceView, PartitionView, SharedView, SupplyView
from partita.slap.states import InstanceState

MODULE = "slapos.slap.slap"
FREE_REQUESTED_STATE = InstanceState.DESTROYED.value


def wire_value(value: Any) -> Any:
    """A parameter value as the incumbent's XML round trip gives it: a string (or None)."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def wire_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """A fresh dictionary of `parameters` with values as on the SLAP wire."""
    return {key: wire_value(value) for key, value in parameters.items()}


def software_release(url: str, computer: str, requested_state: str | None = None) -> MarshalObject:
    """A ``SoftwareRelease(software_release, computer_guid)``; with `requested_state` as listed
    in a computer's software release list, without it as a partition's release document."""
    state: dict[str, Any] = {
        "_computer_guid": computer, "_software_instance_list": [], "_software_release": url,
    }
    if requested_state is not None:
        state["_requested_state"] = requested_state
    return MarshalObject(MODULE, "SoftwareRelease", (url, computer), state)


def supply_release(supply: SupplyView) -> MarshalObject:
    return software_release(supply.url, supply.computer, supply.requested_state)


def slave_entry(shared: SharedView) -> dict[str, Any]:
    """One entry of a host's ``slave_instance_list`` (parameters win, as in slapproxy)."""
    return {
        "slave_title": shared.title, "slave_reference": shared.guid,
        "slap_software_type": shared.software_type, **wire_parameters(shared.parameters),
    }


def ipv6_range_entry(network_text: str) -> dict[str, Any]:
    """``{"addr", "netmask", "network", "prefixlen"}`` of a partition's IPv6 range."""
    network = ipaddress.IPv6Network(network_text)
    return {"addr": str(network.network_address), "netmask": str(network.netmask),
            "network": str(network), "prefixlen": network.prefixlen}


def node_parameters(computer: str, partition: str, instance: InstanceView) -> dict[str, Any]:
    """The ``_parameter_dict`` a node receives for a busy partition (§3.4)."""
    ranged = {"ipv6_range": ipv6_range_entry(instance.ipv6_range)} if instance.ipv6_range else {}
    return {
        **wire_parameters(instance.parameters),
        "ip_list": [(a.interface, a.address) for a in instance.addresses],
        "full_address_list": [],
        "instance_title": instance.title,
        "root_instance_title": instance.root_title,
        "slap_computer_id": computer,
        "slap_computer_partition_id": partition,
        "slap_software_release_url": instance.software_release,
        "slap_software_type": instance.software_type,
        "slave_instance_list": [slave_entry(shared) for shared in instance.hosted if shared.served],
        "timestamp": str(instance.timestamp),
        **ranged,
    }


def computer_partition(view: PartitionView) -> MarshalObject:
    """A ``ComputerPartition(computer_id, partition_id, None)`` as getFullComputerInformation lists it."""
    return partition_object(view.computer, view.reference, view.instance)


def partition_object(computer: str, reference: str, instance: InstanceView | None) -> MarshalObject:
    """The ``ComputerPartition`` of partition `reference` hosting `instance` (None: a free one).

    A free partition is requested ``destroyed``, with no release document (§2.5).
    """
    state: dict[str, Any] = {
        "_computer_id": computer,
        "_partition_id": reference,
        "_request_dict": None,
    }
    if instance is None:
        state.update({
            "_instance_guid": f"{computer}-{reference}",
            "_need_modification": 0,
            "_requested_state": FREE_REQUESTED_STATE,
            "_software_release_document": None,
        })
    else:
        state.update({
            "_connection_dict": wire_parameters(instance.connection_parameters),
            "_filter_dict": dict(instance.sla),
            "_instance_guid": instance.guid,
            "_need_modification": 1,
            "_parameter_dict": node_parameters(computer, reference, instance),
            "_requested_state": instance.requested_state,
            "_software_release_document": software_release(instance.software_release, computer),
        })
    return MarshalObject(MODULE, "ComputerPartition", (computer, reference, None), state)


def computer(view: ComputerView) -> MarshalObject:
    """The ``Computer(computer_id)`` of getFullComputerInformation."""
    return computer_object(view.reference, [computer_partition(p) for p in view.partitions], view.supplies)


def computer_object(reference: str, partitions: list[MarshalObject | Fragment],
                    supplies: Iterable[SupplyView]) -> MarshalObject:
    """The ``Computer`` listing `partitions`: `computer_partition` objects or their fragments.

    The getFullComputerInformation cache passes the fragments it kept for unchanged partitions
    (`marshal.encode_fragment`); `dumps` writes the same bytes as for the objects.
    """
    return MarshalObject(MODULE, "Computer", (reference,), {
        "_computer_id": reference,
        "_computer_partition_list": partitions,
        "_software_release_list": [supply_release(s) for s in supplies],
    })


def connection_xml(connection: dict[str, Any]) -> str | None:
    """The ``connection_xml`` attribute: the ``<instance>`` XML, or None before any publication."""
    if not connection:
        return None
    return dict_to_instance_xml(wire_parameters(connection))


def requested_instance(view: InstanceView, server_url: str) -> MarshalObject:
    """The ``SoftwareInstance`` answering requestComputerPartition for an allocated instance.

    A shared instance gives its own parameters and connection parameters, its host's partition
    and addresses, and (as the real master does) its own requested state and guid, so that the
    client shows the shared instance's connection parameters, not the host's.
    """
    parameters = wire_parameters(view.parameters)
    if not view.shared:
        parameters["timestamp"] = str(view.timestamp)
    connection = wire_parameters(view.connection_parameters)
    return MarshalObject(MODULE, "SoftwareInstance", (), {
        "_connection_dict": connection,
        "_instance_guid": view.guid,
        "_parameter_dict": parameters,
        "_requested_state": view.requested_state,
        "connection_xml": connection_xml(view.connection_parameters),
        "ip_list": view.ip_list,
        "slap_computer_id": view.computer,
        "slap_computer_partition_id": view.partition,
        "slap_server_url": server_url,
        "slap_software_release_url": view.software_release,
        "slap_software_type": view.software_type,
    })


def destroyed_instance(software_release_url: str, software_type: str,
                       server_url: str) -> MarshalObject:
    """The answer to a request destroying an instance that does not exist (or no longer does).

    The computer and partition ids are empty strings, not None: the client builds a
    ``ComputerPartition`` from them and refuses None.
    """
    return MarshalObject(MODULE, "SoftwareInstance", (), {
        "_connection_dict": {},
        "_instance_guid": None,
        "_parameter_dict": {},
        "_requested_state": InstanceState.DESTROYED.value,
        "connection_xml": None,
        "ip_list": [],
        "slap_computer_id": "",
        "slap_computer_partition_id": "",
        "slap_server_url": server_url,
        "slap_software_release_url": software_release_url,
        "slap_software_type": software_type,
    })


def empty_computer(reference: str) -> MarshalObject:
    """A computer known by configuration (the proxy's own) but not formatted yet."""
    return MarshalObject(MODULE, "Computer", (reference,), {
        "_computer_id": reference, "_computer_partition_list": [], "_software_release_list": [],
    })
