"""``partita:slapconfiguration``: what the master says about this instance, as buildout options.

The Partita node writes ``<partition>/.slapgrid/instance.json`` (the contract
`slap.wire.instance_file`) before it runs the instance buildout and names it in
``[slap-connection] instance-file``. This recipe reads that file when
buildout initialises the section, so every other section can use the values::

    [slap-configuration]
    recipe = partita:slapconfiguration
    configuration.greeting = Hello        # a default, kept unless the parameter is set

    [x]
    greeting = ${slap-configuration:configuration.greeting}
    host = ${slap-configuration:ipv4-random}

All values are strings: text parameters as they are, others (and lists, dicts) as JSON.

A partition formatted with ``partition_has_ipv6_range`` has an IPv6 range of its own besides its
addresses: ``ipv6-range`` is that network (``2001:db8::1:0/112``), also under slapos.cookbook's
names ``ipv6-range-network`` (the same), ``ipv6-range-addr`` (``2001:db8::1:0``),
``ipv6-range-prefixlen`` (``112``) and ``ipv6-range-netmask`` (``ffff:…:ffff:0``); all empty
when the partition has none (`ipv6_range_options`).

When the release has a descriptor, ``software.cfg.json`` (option ``jsonschema``, default the
release's URL plus ``.json``), the parameters of the instance's software type are checked against
the type's ``request`` schema and completed with its defaults, by the rules the master and
``slapos request`` also apply (`slap.release_schema`); a mismatch fails the buildout with one
line naming the field. A descriptor declaring
``json-in-xml`` makes ``serialised`` default to true. ``validate-parameters = false`` turns the
check off.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import re
from pathlib import Path
from typing import Any

from partita.recipes.common import SLAP_CONNECTION, as_option, fail, flag
from partita.slap.errors import MalformedDocument
from partita.slap.release_schema import (JSON_IN_XML, Descriptor, ParameterMismatch, check_parameters,
                                         load_descriptor)
from partita.slap.software_descriptor import SUFFIX, DescriptorProblem
from partita.slap.wire.connection import parse_connection
from partita.slap.wire.instance_file import InstanceFile, parse_instance_file

log = logging.getLogger(__name__)

# Parameter names that can be referenced as ${section:configuration.<name>}.
_OPTION_NAME = re.compile(r"[-a-zA-Z0-9._]+\Z")


def read_instance_file(path: str, section: str) -> InstanceFile:
    """The node's instance file at `path` (`slap.wire.instance_file`)."""
    if not path:
        raise fail(f"[{section}] needs [{SLAP_CONNECTION}] instance-file, written by the Partita node "
                   "(or an 'instance-file' option)")
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise fail(f"[{section}] cannot read {path}: no such file; [{SLAP_CONNECTION}] instance-file "
                   "must name the instance file written by the Partita node") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise fail(f"[{section}] cannot read the instance file {path}: {error}") from None
    try:
        return parse_instance_file(document, where=path)
    except MalformedDocument as error:
        raise fail(f"[{section}] the instance file is malformed: {error}") from None


def parameters(document: InstanceFile, serialised: bool, section: str) -> dict[str, Any]:
    """The instance parameters; with `serialised`, the JSON object held in the ``_`` parameter."""
    found = document.parameters
    if not serialised or "_" not in found:
        return dict(found)
    try:
        decoded = json.loads(found["_"])
    except (TypeError, ValueError) as error:
        raise fail(f"[{section}] the serialised parameter '_' is not valid JSON: {error}") from None
    if not isinstance(decoded, dict):
        raise fail(f"[{section}] the serialised parameter '_' does not hold a JSON object")
    return decoded


def addresses(document: InstanceFile) -> tuple[list[str], list[str]]:
    """The partition's IPv4 and IPv6 addresses, sorted (what is not an address is skipped)."""
    ipv4: set[str] = set()
    ipv6: set[str] = set()
    for _, text in document.ip_list:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        (ipv4 if address.version == 4 else ipv6).add(str(address))
    return sorted(ipv4, key=ipaddress.ip_address), sorted(ipv6, key=ipaddress.ip_address)


def slave_instance_list(document: InstanceFile) -> list[dict[str, Any]]:
    """The hosted shared instances in slapproxy's shape (parameters merged into each entry)."""
    result = []
    for shared in document.shared_instance_list:
        entry = dict(shared.parameters)
        entry.update({
            "slave_title": shared.title,
            "slave_reference": shared.instance_guid,
            "slap_software_type": shared.software_type,
        })
        result.append(entry)
    return result


def identity_options(document: InstanceFile) -> dict[str, str]:
    """The options that say which instance and partition this is."""
    values = {
        "software-type": document.software_type or "default",
        "instance-title": document.title,
        "root-instance-title": document.root_instance_title,
        "instance-guid": document.instance_guid,
        "instance-state": document.state,
        "computer-id": document.computer_id,
        "partition-id": document.partition_id,
        "software-release-url": document.software_release_uri,
        "timestamp": str(document.timestamp),
        "partition-path": document.partition_path,
        "software-path": document.software_path,
    }
    values["slap-software-type"] = values["software-type"]
    values["slap-computer-id"] = values["computer-id"]
    values["slap-computer-partition-id"] = values["partition-id"]
    values["slap-software-release-url"] = values["software-release-url"]
    return values


def configuration_options(found: dict[str, Any]) -> dict[str, str]:
    """``configuration`` (all parameters as JSON) and ``configuration.<name>`` for each one."""
    values = {"configuration": json.dumps(found, sort_keys=True)}
    for name, value in found.items():
        if _OPTION_NAME.match(name):
            values[f"configuration.{name}"] = as_option(value)
    return values


def network_options(document: InstanceFile) -> dict[str, str]:
    ipv4, ipv6 = addresses(document)
    return {
        "ipv4": " ".join(ipv4), "ipv6": " ".join(ipv6),
        "ipv4-random": ipv4[0] if ipv4 else "", "ipv6-random": ipv6[0] if ipv6 else "",
    }


def ipv6_range_options(document: InstanceFile) -> dict[str, str]:
    """``ipv6-range`` and slapos.cookbook's ``ipv6-range-*`` names of the partition's IPv6 range,
    empty when it has none (or what the file holds is not an IPv6 network)."""
    names = ("ipv6-range", "ipv6-range-network", "ipv6-range-addr", "ipv6-range-prefixlen", "ipv6-range-netmask")
    try:
        network = ipaddress.IPv6Network(document.ipv6_range or "")
    except ValueError:
        return dict.fromkeys(names, "")
    values = (str(network), str(network), str(network.network_address), str(network.prefixlen), str(network.netmask))
    return dict(zip(names, values))


def default_instance_file(buildout: Any, section: str) -> str:
    """``[slap-connection] instance-file``, or empty when there is no such section or option."""
    try:
        options = buildout[SLAP_CONNECTION]
    except KeyError:
        return ""
    try:
        return parse_connection(options).instance_file
    except MalformedDocument as error:
        raise fail(f"[{section}] {error}") from None


def read_release_descriptor(options: Any, document: InstanceFile, section: str) -> Descriptor | None:
    """The release's descriptor with its schemas (`slap.release_schema`); None when there is none
    to use.

    An explicit ``jsonschema`` option (the descriptor's own location, ``….json``) must be readable
    and usable; the default, the release's URL plus ``.json``, may be absent or unreadable, which
    turns the check off."""
    if not flag(options, "validate-parameters", section, default=True):
        return None
    explicit = options.get("jsonschema", "").strip()
    if explicit and not explicit.endswith(SUFFIX):
        raise fail(f"[{section}] option 'jsonschema' must name the release's descriptor, a file ending "
                   f"in {SUFFIX} (software.cfg.json), not {explicit!r}")
    software_url = explicit[:-len(SUFFIX)] if explicit else document.software_release_uri
    try:
        descriptor = load_descriptor(software_url)
    except DescriptorProblem as problem:
        if explicit:
            raise fail(f"[{section}] cannot use {explicit}: {problem}") from None
        log.warning("[%s] parameters not checked: the release's descriptor cannot be used: %s", section, problem)
        return None
    if descriptor is None and explicit:
        raise fail(f"[{section}] option 'jsonschema': {explicit} does not exist")
    return descriptor


def checked_parameters(found: dict[str, Any], descriptor: Descriptor, software_type: str,
                       section: str, explicit: bool) -> dict[str, Any]:
    """`found` typed, completed with the schema's defaults and checked; as they are when the
    descriptor has no schema for `software_type`, or (found by default) an unusable one."""
    try:
        checked = check_parameters(descriptor, software_type, found)
    except ParameterMismatch as mismatch:
        raise fail(f"[{section}] {mismatch} (software type {software_type!r})") from None
    except DescriptorProblem as problem:
        if explicit:
            raise fail(f"[{section}] cannot use {descriptor.location}: {problem}") from None
        log.warning("[%s] parameters not checked: %s: %s", section, descriptor.location, problem)
        return found
    return found if checked is None else checked


class Recipe:
    """Reads the instance file when the section is initialised; installs nothing."""

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        path = options.get("instance-file", "").strip() or default_instance_file(buildout, name)
        document = read_instance_file(path, name)
        descriptor = read_release_descriptor(options, document, name)
        declared = descriptor is not None and descriptor.serialisation == JSON_IN_XML
        found = parameters(document, flag(options, "serialised", name, default=declared), name)
        if descriptor is not None:
            found = checked_parameters(found, descriptor, document.software_type or "default", name,
                                       explicit=bool(options.get("jsonschema", "").strip()))
        values = {
            **configuration_options(found),
            **identity_options(document),
            **network_options(document),
            **ipv6_range_options(document),
            "slave-instance-list": json.dumps(slave_instance_list(document), sort_keys=True),
        }
        for key in options:
            if key.startswith("configuration."):
                options.get(key)  # a default is used even when a parameter replaces it
        for key, value in values.items():
            options[key] = value

    def install(self) -> list[str]:
        return []

    def update(self) -> list[str]:
        return []
