"""Drive the real slapos.core 1.26.1 `slap` library; run by the peer's Python, not by pytest.

Reads one JSON document on stdin::

    {"master_url": "http://127.0.0.1:PORT", "rest_url": null,
     "steps": [{"op": "format", ...}, {"op": "request", ...}, ...]}

and, for an https master, optionally ``"key_file"`` and ``"cert_file"``: the client certificate the
library presents (it never verifies the master: ``verify=False``, as 1.26.1 does).

runs every step in order with one `slap` object, and prints one JSON list on stdout: per step
``{"ok": result}`` or ``{"error": exception class name, "message": ..., "status": HTTP status or
null}``. A failing step does not stop the following ones, so the tests assert on everything in the
pytest process. Objects of the library are flattened to plain JSON (their ``__dict__`` without the
connection helpers, and ``__class__``).

Operations (fields marked ? are optional):
  format       computer_id, partitions [[reference, ipv4], ...]
  supply       url, computer_id, state?
  request      url, title, parameters?, software_type?, filter?, state?, shared?, as? [cid, pid]
  computer     computer_id              -> {"partitions": [...], "software_releases": [...]}
  partition    as [cid, pid]            -> what registerComputerPartition tells through the getters
  publish      as [cid, pid], parameters, slave_reference?
  report       as [cid, pid], state (started|stopped|destroyed)
  bang         as [cid, pid], message
  related      as [cid, pid], titles    (what slapgrid sends after a successful pass)
  certificate  as [cid, pid]            -> getCertificate(): {"certificate", "key"} (PEM)
  raw          method, path, data?, headers?, cert? [cert_file, key_file]
               (plain `requests`, no client logic)
  marshal      value                    -> the client's dumps(value), for raw forms
"""
import ipaddress
import json
import sys
import traceback

import requests
from slapos import slap as slap_module
from slapos.util import dumps

IPV6_NETMASK = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
HIDDEN = ("_connection_helper", "_hateoas_navigator")


def plain(value):
    """A JSON-compatible copy of what the library returned."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items() if k not in HIDDEN}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "__dict__"):
        return dict(plain(vars(value)), __class__=type(value).__name__)
    return repr(value)


def attempt(function, *args, **kw):
    """{"ok": result} or {"error": ...}: what a call gives, without raising."""
    try:
        return {"ok": plain(function(*args, **kw))}
    except Exception as error:  # the tests decide what is acceptable
        response = getattr(error, "response", None)
        return {
            "error": type(error).__name__,
            "message": str(error)[:4000],
            "status": getattr(response, "status_code", None),
            "body": (response.text[:4000] if response is not None else None),
            "traceback": traceback.format_exc()[-4000:],
        }


def ipv6_range(network):
    """A partition's ipv6_range as slapos format writes it ({} without one)."""
    if not network:
        return {}
    parsed = ipaddress.IPv6Network(network)
    return {"addr": str(parsed.network_address), "netmask": str(parsed.netmask), "network": network,
            "prefixlen": parsed.prefixlen}


def computer_dict(computer_id, partitions):
    """What `slapos node format` posts (§2.5), for partitions [[reference, ipv4(, ipv6 range)], ...]."""
    return {
        "reference": computer_id, "address": "127.0.0.1", "netmask": "255.0.0.0",
        "instance_root": "/srv/slapgrid", "software_root": "/opt/slapgrid",
        "partition_list": [{
            "reference": reference,
            "address_list": [{"addr": ipv4, "netmask": "255.0.0.0"},
                             {"addr": "::1", "netmask": IPV6_NETMASK}],
            "external_storage_list": [], "ipv6_range": ipv6_range(rest[0] if rest else None),
            "path": "/srv/slapgrid/" + reference,
            "tap": {"ipv4_addr": "", "ipv4_gateway": "", "ipv4_netmask": "", "ipv4_network": "",
                    "name": "slaptap" + reference[len("slappart"):]},
            "tun": None,
            "user": {"name": "slapuser" + reference[len("slappart"):], "path": "/srv/slapgrid/" + reference,
                     "shell": "/bin/sh", "additional_group_list": ["slapsoft"]},
        } for reference, ipv4, *rest in partitions],
    }


class Runner:
    def __init__(self, master_url, rest_url=None, key_file=None, cert_file=None):
        self.master_url = master_url
        self.slap = slap_module.slap()
        self.slap.initializeConnection(master_url, slapgrid_rest_uri=rest_url, timeout=30,
                                       key_file=key_file, cert_file=cert_file)

    def op_format(self, step):
        computer = self.slap.registerComputer(step["computer_id"])
        return computer.updateConfiguration(dumps(computer_dict(step["computer_id"], step["partitions"])))

    def op_supply(self, step):
        return self.slap.registerSupply().supply(step["url"], step["computer_id"], step.get("state", "available"))

    def op_request(self, step):
        kw = dict(partition_parameter_kw=step.get("parameters"), software_type=step.get("software_type"),
                  filter_kw=step.get("filter"), state=step.get("state"), shared=step.get("shared", False))
        if step.get("as"):
            requester = self.slap.registerComputerPartition(*step["as"])
            kw["software_type"] = kw["software_type"] or "default"
            partition = requester.request(step["url"], kw.pop("software_type"), step["title"], **kw)
        else:
            partition = self.slap.registerOpenOrder().request(step["url"], step["title"], **kw)
        # What the answer said, before any getter fetches more (a shared instance's getState()
        # replaces its connection dict with the host's: a 1.26.1 client quirk).
        answer = plain(partition)
        return {
            "answer": answer,
            "getId": attempt(partition.getId),
            "getInstanceGuid": attempt(partition.getInstanceGuid),
            "getState": attempt(partition.getState),
        }

    def op_computer(self, step):
        computer = self.slap.registerComputer(step["computer_id"])
        partitions = computer.getComputerPartitionList()
        releases = computer.getSoftwareReleaseList()
        return {
            "partitions": [plain(p) for p in partitions],
            "software_releases": [{"url": r.getURI(), "state": r.getState(), "computer": r.getComputerId()}
                                  for r in releases],
        }

    def op_partition(self, step):
        partition = self.slap.registerComputerPartition(*step["as"])
        release = attempt(lambda: partition.getSoftwareRelease().getURI())
        return {
            "getState": attempt(partition.getState),
            "getInstanceGuid": attempt(partition.getInstanceGuid),
            "getInstanceParameterDict": attempt(partition.getInstanceParameterDict),
            "getConnectionParameterDict": attempt(partition.getConnectionParameterDict),
            "getSoftwareRelease": release,
            "getType": attempt(partition.getType),
            "getFullHostingIpAddressList": attempt(lambda: [list(pair) for pair in partition.getFullHostingIpAddressList()]),
        }

    def op_publish(self, step):
        partition = self.slap.registerComputerPartition(*step["as"])
        return partition.setConnectionDict(step["parameters"], slave_reference=step.get("slave_reference"))

    def op_report(self, step):
        partition = self.slap.registerComputerPartition(*step["as"])
        return getattr(partition, step["state"])()

    def op_bang(self, step):
        return self.slap.registerComputerPartition(*step["as"]).bang(step["message"])

    def op_related(self, step):
        partition = self.slap.registerComputerPartition(*step["as"])
        return partition.setComputerPartitionRelatedInstanceList(step["titles"])

    def op_certificate(self, step):
        return self.slap.registerComputerPartition(*step["as"]).getCertificate()

    def op_raw(self, step):
        cert = tuple(step["cert"]) if step.get("cert") else None
        response = requests.request(step["method"], self.master_url.rstrip("/") + "/" + step["path"],
                                    data=step.get("data"), headers=step.get("headers"), timeout=30,
                                    cert=cert, verify=not self.master_url.startswith("https"))
        return {"status": response.status_code, "text": response.text[:4000]}

    def op_marshal(self, step):
        return dumps(step["value"])

    def run(self, step):
        operation = getattr(self, "op_" + step["op"], None)
        if operation is None:
            return {"error": "UnknownOperation", "message": step["op"], "status": None}
        return attempt(operation, step)


def main():
    document = json.load(sys.stdin)
    runner = Runner(document["master_url"], document.get("rest_url"),
                    key_file=document.get("key_file"), cert_file=document.get("cert_file"))
    json.dump([runner.run(step) for step in document["steps"]], sys.stdout)


if __name__ == "__main__":
    main()
