"""The client half of bench/compare_slapproxy.py: runs INSIDE the peer's Python 3.12 venv.

It drives a server (slapproxy 1.26.1 or Partita's proxy, it cannot tell which) with the real
slapos.core 1.26.1 client library, `slapos.slap`, exactly as `slapos request` and slapgrid do, and
prints its results as one JSON document on the last line of stdout.

Subcommands (all take the server URL first):
  format URL CID N                 POST loadComputerConfigurationFromXML with N partitions,
                                   through Computer.updateConfiguration (like `slapos node format`)
  allocate URL SR PREFIX COUNT     request COUNT new titles PREFIX-0..COUNT-1 through
                                   OpenOrder.request; with --barrier, print "ready" and wait for a
                                   line on stdin before the first request (so that several client
                                   processes start together)
  inspect URL CID                  what getFullComputerInformation shows: partitions, busy ones,
                                   distinct instance titles among them
  getfull URL CID                  getFullComputerInformation latency: raw GETs on one
                                   requests.Session, full slap-library calls, and GETs that each
                                   follow a change (a re-request with a new parameter value)

Only this file imports slapos; the orchestrator runs on the project's Python 3.11.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import sys
import time

import requests
from slapos import slap as slapmod
from slapos.util import dumps, loads

IPV4_BASE = ipaddress.IPv4Address("10.0.0.0")
IPV6_BASE = ipaddress.IPv6Address("fd00:ba5e::")


def connect(url: str) -> slapmod.slap:
    client = slapmod.slap()
    client.initializeConnection(url)   # one GET getHateoasUrl, as every real client does
    return client


def computer_dict(cid: str, partitions: int) -> dict:
    """The dict `slapos node format` sends (reference/slap-protocol.md §2.5); addresses are data."""
    root = "/srv/slapgrid"
    partition_list = []
    for i in range(partitions):
        partition_list.append({
            "address_list": [
                {"addr": str(IPV4_BASE + 2 + i), "netmask": "255.255.0.0"},
                {"addr": str(IPV6_BASE + 1 + i), "netmask": "ffff:ffff:ffff:ffff::"},
            ],
            "external_storage_list": [],
            "ipv6_range": {},
            "path": f"{root}/slappart{i}",
            "reference": f"slappart{i}",
            "tap": {"ipv4_addr": "", "ipv4_gateway": "", "ipv4_netmask": "", "ipv4_network": "",
                    "name": f"slaptap{i}"},
            "tun": None,
            "user": {"additional_group_list": [], "name": f"slapuser{i}",
                     "path": f"{root}/slappart{i}", "shell": "/bin/sh"},
        })
    return {
        "address": str(IPV4_BASE + 1), "instance_root": root, "instance_storage_home": None,
        "interface": None, "ipv6_interface": None, "netmask": "255.255.0.0",
        "os_type": '["Linux", "debian", "12", "Debian GNU/Linux"]', "partition_has_ipv6_range": False,
        "partition_list": partition_list, "public_ipv4_address": None, "python_version": "3.12",
        "reference": cid, "slapos_version": "1.26.1", "software_root": "/opt/slapgrid",
        "software_user": "slapsoft", "tap_gateway_interface": "", "tap_ipv6": False,
    }


def emit(result: dict) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    if isinstance(error, slapmod.ResourceNotReady):
        text = "answer 408, no partition yet"
    return f"{type(error).__name__}: {text[:160]}"


# --------------------------------------------------------------------------------------------

def cmd_format(args: argparse.Namespace) -> None:
    client = connect(args.url)
    start = time.perf_counter()
    client.registerComputer(args.cid).updateConfiguration(dumps(computer_dict(args.cid, args.n)))
    emit({"seconds": time.perf_counter() - start})


def parameters(title_index: int, count: int) -> dict:
    return {f"param-{k}": f"value-{k}-{title_index}" for k in range(count)}


def cmd_allocate(args: argparse.Namespace) -> None:
    client = connect(args.url)
    order = client.registerOpenOrder()
    if args.barrier:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.readline()
    partition_ids: list = []
    errors: dict = {}
    latencies: list = []
    cpu_start = time.process_time()
    first_start = time.time()
    for i in range(args.count):
        title = f"{args.prefix}-{i}"
        kw = parameters(i, args.params) if args.params else None
        t0 = time.perf_counter()
        try:
            partition = order.request(args.sr, title, partition_parameter_kw=kw)
            partition_ids.append(partition.getId())
        except Exception as error:   # every failure is counted and reported, none stops the run
            partition_ids.append(None)
            key = describe(error)
            errors[key] = errors.get(key, 0) + 1
        latencies.append(time.perf_counter() - t0)
    last_end = time.time()
    emit({"start": first_start, "end": last_end, "partition_ids": partition_ids, "errors": errors,
          "latencies": latencies, "client_cpu": time.process_time() - cpu_start})


def busy_partitions(computer) -> list:
    return [p for p in computer._computer_partition_list if getattr(p, "_requested_state", None) != "destroyed"]


def cmd_inspect(args: argparse.Namespace) -> None:
    client = connect(args.url)
    computer = client.registerComputer(args.cid)
    partitions = computer.getComputerPartitionList()
    busy = busy_partitions(computer)
    titles = {p._parameter_dict.get("instance_title") for p in busy if getattr(p, "_parameter_dict", None)}
    emit({"partitions": len(partitions), "busy": len(busy), "titles": len(titles - {None})})


def timed(function, calls: int) -> list:
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        function()
        out.append(time.perf_counter() - t0)
    return out


def cmd_getfull(args: argparse.Namespace) -> None:
    client = connect(args.url)
    session = requests.Session()
    url = args.url.rstrip("/") + "/getFullComputerInformation"
    params = {"computer_id": args.cid}
    headers = {"User-agent": "slapos.core/1.26.1", "Accept": "*/*"}

    def raw_get() -> bytes:
        response = session.get(url, params=params, headers=headers, timeout=60)
        response.raise_for_status()
        return response.content

    cold_start = time.perf_counter()
    body = raw_get()                              # the first call after the last change
    cold = time.perf_counter() - cold_start
    computer = loads(body)                        # check what it holds, once
    busy = busy_partitions(computer)
    with_params = sum(1 for p in busy if len(getattr(p, "_parameter_dict", None) or {}) >= args.params)
    raw = timed(raw_get, args.calls)

    def library_call() -> None:
        client.registerComputer(args.cid).getComputerPartitionList()

    library = timed(library_call, args.library_calls)

    # GETs that each follow a change: re-request one busy instance with a new parameter value,
    # so that a server caching the answer must rebuild it; only the GET is timed.
    order = client.registerOpenOrder()
    after_change = []
    for i in range(args.change_calls):
        order.request(args.sr, args.change_title, partition_parameter_kw={"param-0": f"changed-{i}"})
        after_change.extend(timed(raw_get, 1))
    emit({"bytes": len(body), "partitions": len(computer._computer_partition_list), "busy": len(busy),
          "busy_with_params": with_params, "cold": cold, "raw": raw, "library": library,
          "after_change": after_change})


def main(argv: list) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("format")
    p.add_argument("url"), p.add_argument("cid"), p.add_argument("n", type=int)
    p.set_defaults(run=cmd_format)
    p = sub.add_parser("allocate")
    p.add_argument("url"), p.add_argument("sr"), p.add_argument("prefix"), p.add_argument("count", type=int)
    p.add_argument("--params", type=int, default=0, help="parameters per request")
    p.add_argument("--barrier", action="store_true", help="print 'ready', wait for a stdin line")
    p.set_defaults(run=cmd_allocate)
    p = sub.add_parser("inspect")
    p.add_argument("url"), p.add_argument("cid")
    p.set_defaults(run=cmd_inspect)
    p = sub.add_parser("getfull")
    p.add_argument("url"), p.add_argument("cid")
    p.add_argument("--sr", required=True), p.add_argument("--change-title", required=True)
    p.add_argument("--params", type=int, default=3)
    p.add_argument("--calls", type=int, default=100)
    p.add_argument("--library-calls", type=int, default=30)
    p.add_argument("--change-calls", type=int, default=30)
    p.set_defaults(run=cmd_getfull)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
