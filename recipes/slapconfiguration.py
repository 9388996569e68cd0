"""``partita:slapconfiguration``: what the master says about this instance, as buildout options.

The Partita node writes ``<partition>/.slapgrid/instance.json`` before it runs the instance
buildout and names it in ``[slap-connection] instance-file``. This recipe reads that file when
buildout initialises the section, so every other section can use the values::

    [slap-configuration]
    recipe = partita:slapconfiguration
    configuration.greeting = Hello        # a default, kept unless the parameter is set

    [x]
    greeting = ${slap-configuration:configuration.greeting}
    host = ${slap-configuration:ipv4-random}

All values are strings: text parameters as they are, others (and lists, dicts) as JSON.
"""
from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from partita.recipes.common import SLAP_CONNECTION, as_option, fail, flag

# Parameter names that can be referenced as ${section:configuration.<name>}.
_OPTION_NAME = re.compile(r"[-a-zA-Z0-9._]+\Z")


def read_instance_file(path: str, section: str) -> dict[str, Any]:
    """The node's instance document at `path`."""
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
    if not isinstance(document, dict):
        raise fail(f"[{section}] the instance file {path} does not hold a JSON object")
    return document


def parameters(document: Mapping[str, Any], serialised: bool, section: str) -> dict[str, Any]:
    """The instance parameters; with `serialised`, the JSON object held in the ``_`` parameter."""
    found = document.get("parameters") or {}
    if not isinstance(found, dict):
        raise fail(f"[{section}] the instance parameters are not a JSON object")
    if not serialised or "_" not in found:
        return dict(found)
    try:
        decoded = json.loads(found["_"])
    except (TypeError, ValueError) as error:
        raise fail(f"[{section}] the serialised parameter '_' is not valid JSON: {error}") from None
    if not isinstance(decoded, dict):
        raise fail(f"[{section}] the serialised parameter '_' does not hold a JSON object")
    return decoded


def addresses(document: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The partition's IPv4 and IPv6 addresses, sorted, from ``ip_list`` ([interface, address] pairs)."""
    ipv4: set[str] = set()
    ipv6: set[str] = set()
    for entry in document.get("ip_list") or []:
        if not isinstance(entry, list | tuple) or len(entry) < 2:
            continue
        try:
            address = ipaddress.ip_address(str(entry[1]))
        except ValueError:
            continue
        (ipv4 if address.version == 4 else ipv6).add(str(address))
    return sorted(ipv4, key=ipaddress.ip_address), sorted(ipv6, key=ipaddress.ip_address)


def slave_instance_list(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The hosted shared instances in slapproxy's shape (parameters merged into each entry)."""
    result = []
    for shared in document.get("shared_instance_list") or []:
        if not isinstance(shared, dict):
            continue
        entry = dict(shared.get("parameters") or {})
        entry.update({
            "slave_title": shared.get("title", ""),
            "slave_reference": shared.get("instance_guid", ""),
            "slap_software_type": shared.get("software_type", ""),
        })
        result.append(entry)
    return result


def identity_options(document: Mapping[str, Any]) -> dict[str, str]:
    """The options that say which instance and partition this is."""
    def text(key: str, default: str = "") -> str:
        value = document.get(key)
        return default if value is None else str(value)

    values = {
        "software-type": text("software_type", "default"),
        "instance-title": text("title", "UNKNOWN"),
        "root-instance-title": text("root_instance_title", "UNKNOWN"),
        "instance-guid": text("instance_guid"),
        "instance-state": text("state"),
        "computer-id": text("computer_id"),
        "partition-id": text("partition_id"),
        "software-release-url": text("software_release_uri"),
        "timestamp": text("timestamp"),
        "partition-path": text("partition_path"),
        "software-path": text("software_path"),
    }
    values["slap-software-type"] = values["software-type"]
    values["slap-computer-id"] = values["computer-id"]
    values["slap-computer-partition-id"] = values["partition-id"]
    values["slap-software-release-url"] = values["software-release-url"]
    return values


def configuration_options(document: Mapping[str, Any], serialised: bool, section: str) -> dict[str, str]:
    """``configuration`` (all parameters as JSON) and ``configuration.<name>`` for each one."""
    found = parameters(document, serialised, section)
    values = {"configuration": json.dumps(found, sort_keys=True)}
    for name, value in found.items():
        if _OPTION_NAME.match(name):
            values[f"configuration.{name}"] = as_option(value)
    return values


def network_options(document: Mapping[str, Any]) -> dict[str, str]:
    ipv4, ipv6 = addresses(document)
    return {
        "ipv4": " ".join(ipv4), "ipv6": " ".join(ipv6),
        "ipv4-random": ipv4[0] if ipv4 else "", "ipv6-random": ipv6[0] if ipv6 else "",
    }


def default_instance_file(buildout: Any) -> str:
    """``[slap-connection] instance-file``, or empty when there is no such section or option."""
    try:
        return buildout[SLAP_CONNECTION].get("instance-file", "").strip()
    except KeyError:
        return ""


class Recipe:
    """Reads the instance file when the section is initialised; installs nothing."""

    def __init__(self, buildout: Any, name: str, options: Any) -> None:
        path = options.get("instance-file", "").strip() or default_instance_file(buildout)
        document = read_instance_file(path, name)
        serialised = flag(options, "serialised", name)
        values = {
            **configuration_options(document, serialised, name),
            **identity_options(document),
            **network_options(document),
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
