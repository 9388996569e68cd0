"""The master under hostile load: ordinary requests while 1,000 nodes wait and 100 clients trickle.

    .venv/bin/python bench/hostile_load.py [--tls] [--nodes 1000] [--slow 100] [--rounds 200]
                                           [--json FILE] [--quiet-wait 60]

A real master on loopback (`slapos master start`, one worker, a SQLite catalog in a temporary
directory, ``authentication = none``, plain HTTP), a computer of 20 partitions formatted through
the JSON API. With ``--tls`` the master authenticates with certificates (HTTPS, mutual TLS): the
nodes wait with the computer's certificate, the slow clients trickle inside a TLS connection, and
the ordinary requests carry the computer's certificate, each paying a full handshake. A separate process (asyncio, raw sockets; it raises its RLIMIT_NOFILE) then plays:

- **waiting nodes**: N connections (default 1,000), each sending a complete
  ``POST /slapos.wait.v0.compute_node_change`` for the computer's current generation with a 30 s
  timeout, and asking again on the same connection when answered (on a new one if it was closed);
- **slow clients**: M connections (default 100), each trickling a request one byte every 0.5 s
  (``POST /slapos.get.v0.compute_node_state`` with a 1 kB body it never finishes), and opening a
  new one when the server closes it.

Once every node connection is open and has sent its wait (and the slow clients trickle), the bench
times R rounds (default 200) of ordinary requests, each on a new connection with `requests`, the
two taking turns 20 ms apart: ``slapos.get.v0.compute_node_state`` (JSON) and
``getFullComputerInformation`` (SLAP XML). Reported: median, p95, p99 (nearest rank) and max in
ms, failures (a timeout of 10 s or an error), and what the attackers saw (waits answered, slow
connections cut by the server). The same figures without the attackers come first, as the
baseline. Target (issue 10): p99 ≤ 100 ms under load. Figures are kept in
``docs/performance.md``.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import multiprocessing
import os
import platform
import resource
import signal
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from machine import wait_until_quiet  # noqa: E402  (bench/machine.py, beside this file)
from tls_bench import PLAIN_COMPUTER, Side, format_computer, log  # noqa: E402

from tests.support import server as servers  # noqa: E402
from tests.support.secure_master import call, enrol, start_secure_master  # noqa: E402

WAIT_METHOD = "slapos.wait.v0.compute_node_change"
ORDINARY_TIMEOUT = 10.0
TRICKLE_SECONDS = 0.5


def percentiles(seconds: list[float]) -> dict[str, float]:
    """median, p95, p99 (nearest rank) and max of `seconds`, in ms."""
    ordered = sorted(seconds)
    if not ordered:
        return {"n": 0}

    def rank(p: int) -> float:
        return ordered[min(len(ordered) - 1, max(0, -(-p * len(ordered) // 100) - 1))] * 1000

    return {"n": len(ordered), "median": rank(50), "p95": rank(95), "p99": rank(99), "max": ordered[-1] * 1000}


# --------------------------------------------------------------------------------------------
# The attackers (a process of their own)
# --------------------------------------------------------------------------------------------

def _raise_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _client_context(tls: tuple[str, str, str] | None) -> ssl.SSLContext | None:
    """The attackers' TLS context from (CA file, certificate file, key file); None: plain HTTP."""
    if tls is None:
        return None
    ca_file, cert_file, key_file = tls
    context = ssl.create_default_context(cafile=ca_file)
    context.load_cert_chain(cert_file, key_file)
    return context


def _wait_request(host: str, port: int, computer: str, generation: int) -> bytes:
    body = json.dumps({"computer_guid": computer, "generation": generation, "timeout": 30}).encode()
    return (f"POST /{WAIT_METHOD} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _node(host: str, port: int, request: bytes, context: ssl.SSLContext | None, counts: dict[str, int],
                ready: asyncio.Event, total: int) -> None:
    first = True
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
        except OSError:
            counts["connect_errors"] += 1
            await asyncio.sleep(0.5)
            continue
        try:
            while True:
                writer.write(request)
                await writer.drain()
                if first:
                    first = False
                    counts["waiting"] += 1
                    if counts["waiting"] >= total:
                        ready.set()
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                counts["answered"] += 1
                if b"connection: close" in head.lower():
                    break
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            counts["closed"] += 1
        finally:
            writer.close()
        await asyncio.sleep(0.1)


async def _slow(host: str, port: int, context: ssl.SSLContext | None, counts: dict[str, int]) -> None:
    body = b"{" + b" " * 1000 + b"}"
    request = (f"POST /slapos.get.v0.compute_node_state HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
        except OSError:
            counts["connect_errors"] += 1
            await asyncio.sleep(0.5)
            continue
        started = time.monotonic()
        try:
            for index in range(len(request)):
                writer.write(request[index:index + 1])
                await writer.drain()
                try:
                    await asyncio.wait_for(reader.read(4096), TRICKLE_SECONDS)
                except asyncio.TimeoutError:
                    continue
                break  # the server answered (an error) or closed the connection: it cut us
            counts["cut"] += 1
            counts["cut_after_ms"] = int((time.monotonic() - started) * 1000)
        except OSError:
            counts["cut"] += 1
        finally:
            writer.close()


async def _attack(host: str, port: int, computer: str, generation: int, nodes: int, slow: int,
                  tls: tuple[str, str, str] | None, ready_flag: Any, shared: Any) -> None:
    counts = {"waiting": 0, "answered": 0, "closed": 0, "cut": 0, "cut_after_ms": 0, "connect_errors": 0}
    ready = asyncio.Event()
    context = _client_context(tls)
    request = _wait_request(host, port, computer, generation)
    tasks = []
    for index in range(nodes):
        tasks.append(asyncio.create_task(_node(host, port, request, context, counts, ready, nodes)))
        if index % 50 == 49:
            await asyncio.sleep(0.05)
    for _ in range(slow):
        tasks.append(asyncio.create_task(_slow(host, port, context, counts)))
    if not nodes:
        ready.set()
    await ready.wait()
    await asyncio.sleep(1.0)
    ready_flag.set()
    while True:
        shared.update(counts)
        await asyncio.sleep(0.5)


def attackers(host: str, port: int, computer: str, generation: int, nodes: int, slow: int,
              tls: tuple[str, str, str] | None, ready_flag: Any, shared: Any) -> None:
    _raise_file_limit(nodes + slow + 256)
    asyncio.run(_attack(host, port, computer, generation, nodes, slow, tls, ready_flag, shared))


# --------------------------------------------------------------------------------------------
# The ordinary requests
# --------------------------------------------------------------------------------------------

def ordinary(side: Side, rounds: int) -> dict[str, Any]:
    """`rounds` of the two ordinary calls, each on a new connection (over TLS: a full handshake)."""
    times: dict[str, list[float]] = {"compute_node_state": [], "getFullComputerInformation": []}
    failures: dict[str, int] = {name: 0 for name in times}
    tls = {"verify": side.verify, "cert": side.computer_cert}
    calls = {
        "compute_node_state": lambda: requests.post(
            f"{side.url}/slapos.get.v0.compute_node_state", json={"computer_guid": side.computer},
            timeout=ORDINARY_TIMEOUT, **tls),
        "getFullComputerInformation": lambda: requests.get(
            f"{side.url}/getFullComputerInformation", params={"computer_id": side.computer},
            timeout=ORDINARY_TIMEOUT, **tls),
    }
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            try:
                answer = call()
                elapsed = time.perf_counter() - start
                if answer.status_code == 200:
                    times[name].append(elapsed)
                else:
                    failures[name] += 1
            except requests.RequestException:
                failures[name] += 1
            time.sleep(0.02)
    return {name: {**percentiles(times[name]), "failed": failures[name]} for name in times}


def generation_of(side: Side) -> int:
    answer = requests.post(f"{side.url}/{WAIT_METHOD}", json={"computer_guid": side.computer, "generation": 0,
                                                               "timeout": 0}, timeout=ORDINARY_TIMEOUT,
                           verify=side.verify, cert=side.computer_cert)
    answer.raise_for_status()
    return int(answer.json()["generation"])


def under_attack(side: Side, nodes: int, slow: int, rounds: int) -> dict[str, Any]:
    host, port = side.url.split("//", 1)[1].rsplit(":", 1)
    generation = generation_of(side)
    tls = (side.verify, *side.computer_cert) if side.computer_cert and isinstance(side.verify, str) else None
    manager = multiprocessing.Manager()
    ready, shared = manager.Event(), manager.dict()
    process = multiprocessing.Process(target=attackers, daemon=True,
                                      args=(host, int(port), side.computer, generation, nodes, slow, tls,
                                            ready, shared))
    process.start()
    try:
        if not ready.wait(120):
            log("the attackers did not all connect within 120 s; measuring anyway")
        log(f"{nodes} nodes waiting, {slow} slow clients trickling: timing {rounds} rounds")
        started = time.monotonic()
        figures = ordinary(side, rounds)
        figures["seconds"] = round(time.monotonic() - started, 1)
        figures["attackers"] = dict(shared)
        return figures
    finally:
        process.terminate()
        process.join(10)
        manager.shutdown()


def print_report(results: dict[str, Any]) -> None:
    print(f"{results['command']}  ({results['date']}, {results['machine']}, {results['protocol']})")
    for phase in ("baseline", "under_attack"):
        figures = results[phase]
        print(f"\n{phase}: " + ("" if phase == "baseline" else
                                f"{results['nodes']} waiting nodes, {results['slow']} slow clients"))
        print(f"{'ms':28} {'median':>8} {'p95':>8} {'p99':>8} {'max':>8} failed")
        for name in ("compute_node_state", "getFullComputerInformation"):
            row = figures[name]
            if row["n"]:
                print(f"{name:28} {row['median']:8.2f} {row['p95']:8.2f} {row['p99']:8.2f} {row['max']:8.2f} "
                      f"{row['failed']}")
            else:
                print(f"{name:28} {'-':>8} {'-':>8} {'-':>8} {'-':>8} {row['failed']}")
        if "attackers" in figures:
            print(f"attackers: {figures['attackers']}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tls", action="store_true", help="a master with certificates, over mutual TLS")
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--slow", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--json")
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    return parser.parse_args(argv)


def start_master(scratch: Path, tls: bool, running: list[Any]) -> Side:
    """The master under test (appended to `running`) as the bench calls it."""
    if not tls:
        master = servers.start(scratch, ("master", "start"), database=str(scratch / "master.db"))
        running.append(master)
        return Side("HTTP", master.url, PLAIN_COMPUTER)
    secure = start_secure_master(scratch)
    running.append(secure)
    admin = enrol(secure, secure.admin_token, scratch / "ids", "admin")
    token = call(secure, admin, "slapos.post.v0.compute_node_token", {"title": "bench node"}).json()["token"]
    computer = enrol(secure, token, scratch / "ids", "computer")
    return Side("HTTPS", secure.url, computer.name, str(secure.ca_file), computer.cert, admin.cert)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    running: list[Any] = []

    def on_signal(signum: int, _frame: object) -> None:
        while running:
            running.pop().stop()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "command": " ".join([".venv/bin/python", "bench/hostile_load.py", *argv]),
        "nodes": args.nodes, "slow": args.slow, "protocol": "HTTPS, mutual TLS" if args.tls else "HTTP",
    }
    with tempfile.TemporaryDirectory(prefix="partita-hostile-bench-") as directory:
        scratch = Path(directory)
        try:
            side = start_master(scratch, args.tls, running)
            format_computer(side, 20)
            results["cpu_busy"] = wait_until_quiet(args.quiet_wait, log)
            results["baseline"] = ordinary(side, min(args.rounds, 100))
            results["under_attack"] = under_attack(side, args.nodes, args.slow, args.rounds)
        except (RuntimeError, requests.RequestException) as error:
            print(f"bench: {error}", file=sys.stderr)
            return 1
        finally:
            while running:
                running.pop().stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
