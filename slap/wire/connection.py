"""``[slap-connection]``: who an instance buildout is and how it reaches the master.

The node appends a tail to every instance profile before it runs buildout (`node.instance`):
``[slap-connection]`` (SlapOS's section, read by Partita's recipes and by slapos.cookbook's),
the same under its old name ``[slap_connection]`` (underscored keys, as older recipes read it),
``[storage-configuration]`` and ``[network-information]``, plus two ``[buildout]`` settings.
On a node with certificates, ``key-file``/``cert-file`` name the partition's own key and
certificate (`node.certificates`) and Partita's ``partita-ca-file`` the master's CA; without
them (proxy mode) the three are empty.
`buildout_tail` renders that text; the recipes read the section through `parse_connection`
(``partita:request``, ``partita:publish``, ``partita:slapconfiguration`` via ``instance-file``).

Values are single lines (buildout reads one value per line); an empty value is written as
``key = `` and read back as "".
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from partita.slap.errors import MalformedDocument
from partita.slap.wire.instance import INSTANCE_STATES
from partita.slap.wire.instance_file import InstanceFile

SECTION = "slap-connection"
LEGACY_SECTION = "slap_connection"
REQUIRED = ("server-url", "computer-id", "partition-id")
CA_FILE = "partita-ca-file"  # Partita's key: the master's CA, to verify the master (HTTPS)
NOT_IN_LEGACY = ("requested-state", "shared-part-list", "build-time-part-list", CA_FILE)


@dataclass(frozen=True)
class SlapConnection:
    computer_id: str
    partition_id: str
    server_url: str                      # the master
    software_release_url: str
    key_file: str                        # the partition's TLS key and certificate ("" without TLS)
    cert_file: str
    requested_state: str                 # started | stopped
    instance_guid: str
    instance_file: str                   # instance.json (`slap.wire.instance_file`)
    software_path: str
    shared_part_list: str = ""           # SlapOS keys Partita leaves empty
    build_time_part_list: str = ""
    ca_file: str = ""                    # the master's CA certificate ("" without TLS)


def for_instance_file(document: InstanceFile, *, instance_file: str, key_file: str = "",
                      cert_file: str = "", ca_file: str = "") -> SlapConnection:
    """The section that goes with `document`, written at `instance_file`."""
    return SlapConnection(
        computer_id=document.computer_id, partition_id=document.partition_id,
        server_url=document.server_url, software_release_url=document.software_release_uri,
        key_file=key_file, cert_file=cert_file, requested_state=document.state,
        instance_guid=document.instance_guid, instance_file=instance_file,
        software_path=document.software_path, ca_file=ca_file,
    )


def connection_options(connection: SlapConnection) -> dict[str, str]:
    """The options of ``[slap-connection]``, in the order the node writes them."""
    return {
        "computer-id": connection.computer_id, "partition-id": connection.partition_id,
        "server-url": connection.server_url, "software-release-url": connection.software_release_url,
        "key-file": connection.key_file, "cert-file": connection.cert_file,
        "requested-state": connection.requested_state, "instance-guid": connection.instance_guid,
        "instance-file": connection.instance_file, "software-path": connection.software_path,
        "shared-part-list": connection.shared_part_list,
        "build-time-part-list": connection.build_time_part_list,
        CA_FILE: connection.ca_file,
    }


def buildout_tail(connection: SlapConnection, *, ipv4_network: str) -> str:
    """The sections the node appends to an instance profile (SlapOS's tail, plus Partita's keys)."""
    options = connection_options(connection)
    legacy = {key.replace("-", "_"): value for key, value in options.items() if key not in NOT_IN_LEGACY}
    lines = ["", "[buildout]", "bin-directory = ${buildout:directory}/sbin", "newest = false", "",
             f"[{SECTION}]"]
    lines += [f"{key} = {_one_line(value)}" for key, value in options.items()]
    lines += ["", f"[{LEGACY_SECTION}]"] + [f"{key} = {_one_line(value)}" for key, value in legacy.items()]
    lines += ["", "[storage-configuration]", "storage-home = ", "",
              "[network-information]", f"global-ipv4-network = {_one_line(ipv4_network)}", ""]
    return "\n".join(lines)


def _one_line(value: str) -> str:
    """A value on one buildout line (the master refuses control characters anyway)."""
    return " ".join(str(value).split())


def parse_connection(options: Mapping[str, str]) -> SlapConnection:
    """``[slap-connection]``'s options (as buildout gives them) read back; a MalformedDocument
    naming the option when a required one is empty or a value is wrong."""
    def value(key: str, default: str = "") -> str:
        return (options.get(key) or "").strip() or default

    for key in REQUIRED:
        if not value(key):
            raise MalformedDocument(f"[{SECTION}] needs option '{key}'")
    state = value("requested-state", "started")
    if state not in INSTANCE_STATES:
        raise MalformedDocument(f"[{SECTION}] option 'requested-state' must be one of "
                                f"{', '.join(sorted(INSTANCE_STATES))}, not {state!r}")
    return SlapConnection(
        computer_id=value("computer-id"), partition_id=value("partition-id"), server_url=value("server-url"),
        software_release_url=value("software-release-url"), key_file=value("key-file"),
        cert_file=value("cert-file"), requested_state=state, instance_guid=value("instance-guid"),
        instance_file=value("instance-file"), software_path=value("software-path"),
        shared_part_list=value("shared-part-list"), build_time_part_list=value("build-time-part-list"),
        ca_file=value(CA_FILE),
    )
