"""Reading the form fields of SLAP XML calls: presence, the "None" convention, marshalled values.

Pure functions over a mapping of field names to strings (``request.form`` or ``request.args``).
Every failure is a `BadRequest` subclass (HTTP 400) naming the field: `ValidationError` for a missing
or ill-typed field, `DecodeError` for malformed XML, `TooLarge` for an oversized one.

The client sends a None value as the string ``"None"`` (``reference/slap-protocol.md`` §2.1); it means
"absent" here, everywhere.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from partita.master.api.slap_xml.marshal import DEFAULT_MAX_BYTES, loads, loads_bool, loads_dict, loads_optional_str
from partita.master.services.computers import AddressSpec, PartitionSpec
from partita.master.services.instances import RequestSpec
from partita.slap.errors import ValidationError

Fields = Mapping[str, str]

NONE = "None"
MAX_NETWORK_NAME = 64  # the width of the interface, address and netmask columns
DEFAULT_SOFTWARE_TYPE = "default"


def optional(fields: Fields, name: str) -> str | None:
    """The field's value, or None when it is absent or ``"None"``; NUL characters are refused."""
    value = fields.get(name)
    if value is None or value == NONE:
        return None
    if "\x00" in value:
        raise ValidationError(f"form field {name!r} contains a NUL character")
    return value


def required(fields: Fields, name: str) -> str:
    """The field's value; a 400 naming the field when it is absent, ``"None"`` or empty."""
    value = optional(fields, name)
    if value is None or value == "":
        raise ValidationError(f"missing form field {name!r}")
    return value


def text(fields: Fields, name: str, default: str = "") -> str:
    """A free-text field (a log, a message): absent gives `default`, NUL characters are dropped."""
    value = fields.get(name)
    if value is None or value == NONE:
        return default
    return value.replace("\x00", "")


def marshalled(fields: Fields, name: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """The decoded xml_marshaller value of a required field."""
    return loads(required(fields, name), max_bytes)


def marshalled_dict(fields: Fields, name: str, default: dict | None = None,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
    """A marshalled dictionary; absent gives a copy of `default`, or a 400 when there is none."""
    value = optional(fields, name)
    if value is None:
        if default is None:
            raise ValidationError(f"missing form field {name!r}")
        return dict(default)
    return loads_dict(value, name, max_bytes)


def string_parameters(parameters: dict, field_name: str) -> dict[str, Any]:
    """Parameters as the incumbent stores them: string keys, scalar values (numbers as text)."""
    cleaned: dict[str, Any] = {}
    for key, value in parameters.items():
        if type(key) is not str or not key:
            raise ValidationError(f"{field_name}: keys must be non-empty strings")
        if value is None or type(value) is str:
            cleaned[key] = value
        elif isinstance(value, (bool, int, float)):
            cleaned[key] = str(value)
        else:
            raise ValidationError(f"{field_name}: the value of {key!r} must be a string")
    return cleaned


@dataclass(frozen=True)
class RequestForm:
    """A requestComputerPartition call: the request and who claims to make it."""

    spec: RequestSpec
    computer_id: str | None
    partition_id: str | None


def request_form(fields: Fields, max_bytes: int = DEFAULT_MAX_BYTES) -> RequestForm:
    """Parse requestComputerPartition; optional fields take the defaults of the client library."""
    title = required(fields, "partition_reference")
    software_release = required(fields, "software_release")
    software_type = optional(fields, "software_type") or DEFAULT_SOFTWARE_TYPE
    parameters = string_parameters(
        marshalled_dict(fields, "partition_parameter_xml", {}, max_bytes), "partition_parameter_xml")
    sla = marshalled_dict(fields, "filter_xml", {}, max_bytes)
    state_field = optional(fields, "state")
    state = None if state_field is None else loads_optional_str(state_field, "state", max_bytes)
    shared_field = optional(fields, "shared_xml")
    shared = False if shared_field is None else loads_bool(shared_field, "shared_xml", max_bytes)
    spec = RequestSpec(title=title, software_release=software_release, software_type=software_type,
                       parameters=parameters, state=state, shared=shared, sla=sla)
    return RequestForm(spec, optional(fields, "computer_id"),
                       optional(fields, "computer_partition_id"))


@dataclass(frozen=True)
class ComputerConfiguration:
    """What loadComputerConfigurationFromXML says about a computer (what slapproxy reads of it)."""

    reference: str
    partitions: tuple[PartitionSpec, ...]
    address: str | None
    netmask: str | None


def _network_text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        raise ValidationError(f"{what} must be a string")
    if len(value) > MAX_NETWORK_NAME:
        raise ValidationError(f"{what} is longer than {MAX_NETWORK_NAME} characters")
    return value


def _entry(container: Any, key: str, kind: type, what: str, default: Any = None) -> Any:
    """``container[key]``, checked to be a `kind`; missing or None gives `default` if one is given."""
    value = container.get(key) if isinstance(container, dict) else None
    if value is None and default is not None:
        return default
    if not isinstance(value, kind):
        raise ValidationError(f"{what} must be a {kind.__name__}")
    return value


def _ipv6_range(value: Any, reference: str) -> str | None:
    """slapos format's ``ipv6_range`` of a partition (``{}`` when none; else ``addr``,
    ``prefixlen``, ``netmask`` and ``network``, ``addr/prefixlen``) as the network text the
    service checks (`computers.check_ipv6_range`), written canonically when it parses."""
    if value is None or value == {}:
        return None
    what = f"partition {reference!r} ipv6_range"
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict):
        network, addr, prefixlen = value.get("network"), value.get("addr"), value.get("prefixlen")
        if isinstance(network, str):
            text = network
        elif isinstance(addr, str) and type(prefixlen) is int:
            text = f"{addr}/{prefixlen}"
        else:
            raise ValidationError(f"{what} must give its network (or addr and prefixlen)")
    else:
        raise ValidationError(f"{what} must be a dictionary")
    try:
        return str(ipaddress.IPv6Network(text, strict=True))
    except ValueError:
        return text  # refused, with the reason, by the service


def _partition_spec(entry: Any, index: int, interface: str) -> PartitionSpec:
    if not isinstance(entry, dict):
        raise ValidationError(f"partition_list[{index}] must be a dictionary")
    reference = _entry(entry, "reference", str, f"partition_list[{index}].reference")
    tap = entry.get("tap")
    tap_name = tap.get("name") if isinstance(tap, dict) else None
    name = _network_text(tap_name, f"partition {reference!r} tap name") or interface
    addresses = []
    address_list = _entry(entry, "address_list", list, f"partition {reference!r} address_list", [])
    for position, address in enumerate(address_list):
        what = f"partition {reference!r} address_list[{position}]"
        addr = _network_text(_entry(address, "addr", str, f"{what}.addr"), f"{what}.addr")
        netmask = _network_text(address.get("netmask"), f"{what}.netmask")
        addresses.append(AddressSpec(address=addr, netmask=netmask, interface=name))
    return PartitionSpec(reference=reference, addresses=tuple(addresses),
                         ipv6_range=_ipv6_range(entry.get("ipv6_range"), reference))


def computer_configuration(fields: Fields, max_bytes: int = DEFAULT_MAX_BYTES) -> ComputerConfiguration:
    """Parse the ``xml`` field of loadComputerConfigurationFromXML (slapos node format)."""
    computer = marshalled(fields, "xml", max_bytes)
    if not isinstance(computer, dict):
        raise ValidationError("xml must be a marshalled dictionary")
    reference = _entry(computer, "reference", str, "reference")
    interface = _network_text(computer.get("interface"), "interface")
    partition_list = _entry(computer, "partition_list", list, "partition_list", [])
    partitions = tuple(_partition_spec(entry, i, interface) for i, entry in enumerate(partition_list))
    return ComputerConfiguration(
        reference=reference, partitions=partitions,
        address=_network_text(computer.get("address"), "address") or None,
        netmask=_network_text(computer.get("netmask"), "netmask") or None,
    )
