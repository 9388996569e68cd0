"""Partita's proxy against the real slapproxy 1.26.1, both driven by the real slapos.core 1.26.1 client.

    .venv/bin/python bench/compare_slapproxy.py [--partitions 1000] [--clients 1,8] [--busy 200,1000]
                                                [--calls 100] [--quick] [--servers slapproxy,partita]
                                                [--json FILE] [--keep] [--quiet-wait SECONDS]

What it measures (bench/README.md says more):
  1. allocation: on a freshly formatted server with P partitions, C client processes request P
     distinct new titles between them (`OpenOrder.request(sr, title)`); requests/s over the wall
     clock from the first request to the last answer, how many distinct partitions the answers
     name (fewer than the successful answers = a lost race), failures and why, server CPU/request;
  2. getFullComputerInformation with B busy partitions (each with 3 parameters): raw GETs on one
     requests.Session, the full slap-library call (`registerComputer(cid).getComputerPartitionList()`),
     and GETs that each follow a change.

Both servers run on SQLite files in a temporary directory, on free 127.0.0.1 ports, each in its own
session (process group), and are killed at the end, on error and on SIGINT/SIGTERM. The client side
runs in the peer's Python 3.12 (`bench/peer_client.py`): `scripts/peer-setup` builds the peer first
(idempotent, fast once done). Partita runs from the project's `.venv` (made by scripts/test or
scripts/demo), which this script requires.
"""
from __future__ import annotations

import argparse
import atexit
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from machine import QUIET_BUSY, wait_until_quiet  # bench/machine.py, beside this file

ROOT = Path(__file__).resolve().parent.parent
PEER = Path(os.environ.get("PARTITA_PEER", "/opt/partita-test/peer"))
VENV = ROOT / ".venv"
PEER_CLIENT = ROOT / "bench" / "peer_client.py"
COMPUTER_ID = "local_computer"
SOFTWARE_URL = "http://software.example.invalid/bench/software.cfg"   # only data: nothing fetches it
PARAMETERS = 3              # parameters per busy partition in the getFullComputerInformation bench
SERVER_NAMES = ("slapproxy", "partita")
LABEL = {"slapproxy": "slapproxy 1.26.1", "partita": "Partita"}
CLIENT_TIMEOUT = 1800       # seconds for one client process (a 1,000-request run takes ~10-60 s)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A server or a client did not do what the bench needs; the message says which and why."""


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------

_running: list[subprocess.Popen] = []     # everything started here, killed by _stop_all


def _kill_group(process: subprocess.Popen) -> None:
    """SIGTERM the process's session (gunicorn's master and worker too), SIGKILL what remains.

    Every process started here leads its own session (``start_new_session``), so its pid is also
    its process group id; only that group is signalled, and only while it has members.
    """
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    if session_members(process.pid):
        _signal_group(process.pid, signal.SIGKILL)     # leftovers (a worker that ignored SIGTERM)
    if process.poll() is None:
        process.wait(timeout=15)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _stop_all() -> None:
    while _running:
        _kill_group(_running.pop())


def _on_signal(signum: int, _frame: object) -> None:
    _stop_all()
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _session_stats(sid: int) -> list[list[str]]:
    """/proc/PID/stat fields (after "(comm)") of every live process in session `sid`."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":   # state ppid pgrp session ...; not a zombie
            members.append(fields)
    return members


def session_members(sid: int) -> int:
    return len(_session_stats(sid))


def session_cpu_seconds(sid: int) -> float:
    """User+system CPU time of every live process in session `sid` (the server and its workers)."""
    ticks = sum(int(fields[11]) + int(fields[12]) for fields in _session_stats(sid))   # utime stime
    return ticks / os.sysconf("SC_CLK_TCK")


def config_text(port: int, work: Path) -> str:
    return f"""[slapos]
computer_id = {COMPUTER_ID}
master_url = http://127.0.0.1:{port}
instance_root = {work}/srv/slapgrid
software_root = {work}/opt/slapgrid

[slapproxy]
host = 127.0.0.1
port = {port}
database_uri = {work}/proxy.db
"""


def server_command(name: str, cfg: Path, work: Path) -> list[str]:
    if name == "slapproxy":
        return [str(PEER / "bin" / "slapos"), "--log-file", str(work / "slapproxy.log"),
                "proxy", "start", "--cfg", str(cfg)]
    return [str(VENV / "bin" / "slapos"), "proxy", "start", "--cfg", str(cfg)]


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    log_path: Path

    def cpu(self) -> float:
        return session_cpu_seconds(self.process.pid)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _wait_ready(server: Server, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            urllib.request.urlopen(server.url + "/getHateoasUrl", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return                         # any HTTP answer (slapproxy: 404) means it serves
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"{server.name} did not answer on {server.url} within the deadline:\n{server.log_tail()}")


@contextmanager
def fresh_server(name: str, scratch: Path) -> Iterator[Server]:
    """A server of kind `name` on a new, empty SQLite file and a free port; killed on exit."""
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))
    port = free_port()
    cfg = work / "proxy.cfg"
    cfg.write_text(config_text(port, work))
    log_path = work / "server.out"
    with open(log_path, "wb") as out:
        process = subprocess.Popen(server_command(name, cfg, work), cwd=work, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    _running.append(process)
    server = Server(name, f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(server, time.monotonic() + 90)
        yield server
    finally:
        _kill_group(process)
        if process in _running:
            _running.remove(process)


# --------------------------------------------------------------------------------------------
# The peer client
# --------------------------------------------------------------------------------------------

def peer(*args: str) -> dict:
    """Run one peer_client.py subcommand to completion and return its JSON result."""
    command = [str(PEER / "bin" / "python"), str(PEER_CLIENT), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CLIENT_TIMEOUT, cwd=ROOT)
    if done.returncode != 0:
        raise BenchError(f"peer_client {args[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def start_clients(url: str, counts: list[int], run: str, params: int) -> list[subprocess.Popen]:
    """Client processes that have imported slapos and connected, each waiting at the barrier.

    Each is registered in `_running` as soon as it starts, so a failure here leaves none behind.
    """
    clients = []
    for index, count in enumerate(counts):
        command = [str(PEER / "bin" / "python"), str(PEER_CLIENT), "allocate", url, SOFTWARE_URL,
                   f"{run}-c{index}", str(count), "--barrier", "--params", str(params)]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
        _running.append(process)
        clients.append(process)
    try:
        for process in clients:
            line = process.stdout.readline()
            if line.strip() != "ready":
                raise BenchError(f"a client did not get ready: {line!r} {process.stderr.read()[-2000:]}")
    except BaseException:
        for process in clients:
            _running.remove(process)
            _kill_group(process)
        raise
    return clients


def release_and_collect(clients: list[subprocess.Popen]) -> list[dict]:
    for process in clients:
        process.stdin.write("go\n")
        process.stdin.flush()
    results = []
    for process in clients:
        out, err = process.communicate(timeout=CLIENT_TIMEOUT)
        _running.remove(process)
        if process.returncode != 0:
            raise BenchError(f"a client failed ({process.returncode}):\n{err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# --------------------------------------------------------------------------------------------
# The two benches
# --------------------------------------------------------------------------------------------

def stats(seconds: list[float]) -> dict:
    """mean/p50/p95/max in milliseconds (nearest-rank percentiles)."""
    if not seconds:
        return {"n": 0}
    ordered = sorted(seconds)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))] * 1000

    return {"n": len(ordered), "mean": sum(ordered) / len(ordered) * 1000, "p50": rank(0.5),
            "p95": rank(0.95), "max": ordered[-1] * 1000}


def bench_allocation(name: str, scratch: Path, partitions: int, clients: int) -> dict:
    with fresh_server(name, scratch) as server:
        peer("format", server.url, COMPUTER_ID, str(partitions))
        processes: list[subprocess.Popen] = []
        try:
            processes = start_clients(server.url, split(partitions, clients), "alloc", 0)
            cpu_before = server.cpu()
            results = release_and_collect(processes)
            server_cpu = server.cpu() - cpu_before
        finally:
            for process in processes:          # only those still running, after a failure
                if process in _running:
                    _running.remove(process)
                    _kill_group(process)
        seen = peer("inspect", server.url, COMPUTER_ID)
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    ids = [pid for r in results for pid in r["partition_ids"]]
    answered = [pid for pid in ids if pid is not None]
    errors: dict[str, int] = {}
    for r in results:
        for reason, count in r["errors"].items():
            errors[reason] = errors.get(reason, 0) + count
    return {
        "requests": len(ids), "wall": wall, "rate": len(ids) / wall, "answered": len(answered),
        "distinct": len(set(answered)), "distinct_rate": len(set(answered)) / wall,
        "failed": len(ids) - len(answered), "errors": errors,
        "latency": stats([s for r in results for s in r["latencies"]]),
        "server_cpu_ms_per_request": server_cpu / len(ids) * 1000,
        "client_cpu_ms_per_request": sum(r["client_cpu"] for r in results) / len(ids) * 1000,
        "server_view": seen,
    }


def bench_full_computer(name: str, scratch: Path, busy: int, calls: int) -> dict:
    with fresh_server(name, scratch) as server:
        peer("format", server.url, COMPUTER_ID, str(busy))
        filled = peer("allocate", server.url, SOFTWARE_URL, "busy", str(busy), "--params", str(PARAMETERS))
        if filled["errors"]:
            raise BenchError(f"filling {busy} partitions failed: {filled['errors']}")
        result = peer("getfull", server.url, COMPUTER_ID, "--sr", SOFTWARE_URL, "--change-title", "busy-0",
                      "--params", str(PARAMETERS), "--calls", str(calls),
                      "--library-calls", str(max(10, calls // 3)), "--change-calls", str(max(10, calls // 3)))
    if result["busy"] != busy or result["busy_with_params"] != busy:
        raise BenchError(f"getFullComputerInformation lists {result['busy']} busy partitions "
                         f"({result['busy_with_params']} with parameters), not {busy}")
    return {"bytes": result["bytes"], "partitions": result["partitions"], "busy": result["busy"],
            "busy_with_params": result["busy_with_params"], "cold_ms": result["cold"] * 1000,
            "raw": stats(result["raw"]), "library": stats(result["library"]),
            "after_change": stats(result["after_change"])}


def attempt(label: str, run, quiet_wait: float) -> dict:
    """Run one measurement; a failure is recorded (and printed) instead of stopping the others."""
    busy_before = wait_until_quiet(quiet_wait, log, sample_seconds=2.0, pause=5)
    log(f"{label} (machine {busy_before:.0%} busy before) ...")
    started = time.monotonic()
    try:
        result = run()
    except (BenchError, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as error:
        log(f"{label}: FAILED: {error}")
        return {"error": str(error).splitlines()[0][:300], "busy_before": busy_before}
    log(f"{label}: done in {time.monotonic() - started:.1f} s")
    result["busy_before"] = busy_before
    result["loadavg_after"] = os.getloadavg()[0]
    return result


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def _cell(result: dict | None, show) -> str:
    if result is None:
        return "-"
    if "error" in result:
        return "FAILED"
    return show(result)


def _ratio(a: dict | None, b: dict | None, value, higher_is_better: bool) -> str:
    if not a or not b or "error" in a or "error" in b:
        return "-"
    x, y = value(a), value(b)
    if not x or not y:
        return "-"
    return f"{(y / x if higher_is_better else x / y):.1f}x"


def _latency(key: str):
    return lambda r: f"{r[key]['mean']:.2f} / {r[key]['p50']:.2f} / {r[key]['p95']:.2f}"


def table_rows(results: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for clients, by in results["allocation"].items():
        s, p = by.get("slapproxy"), by.get("partita")
        head = f"alloc {results['partitions']} partitions, {clients} client(s)"
        rows.append((f"{head}: requests/s", _cell(s, lambda r: f"{r['rate']:.0f}"),
                     _cell(p, lambda r: f"{r['rate']:.0f}"), _ratio(s, p, lambda r: r["rate"], True)))
        rows.append((f"{head}: distinct partitions / requests",
                     _cell(s, lambda r: f"{r['distinct']} / {r['requests']}"),
                     _cell(p, lambda r: f"{r['distinct']} / {r['requests']}"), ""))
        rows.append((f"{head}: failed requests", _cell(s, lambda r: str(r["failed"])),
                     _cell(p, lambda r: str(r["failed"])), ""))
        rows.append((f"{head}: request latency ms mean/p50/p95", _cell(s, _latency("latency")),
                     _cell(p, _latency("latency")), _ratio(s, p, lambda r: r["latency"]["mean"], False)))
        rows.append((f"{head}: server CPU ms/request", _cell(s, lambda r: f"{r['server_cpu_ms_per_request']:.2f}"),
                     _cell(p, lambda r: f"{r['server_cpu_ms_per_request']:.2f}"),
                     _ratio(s, p, lambda r: r["server_cpu_ms_per_request"], False)))
        rows.append((f"{head}: client CPU ms/request (slap library)",
                     _cell(s, lambda r: f"{r['client_cpu_ms_per_request']:.2f}"),
                     _cell(p, lambda r: f"{r['client_cpu_ms_per_request']:.2f}"), ""))
    for busy, by in results["full_computer"].items():
        s, p = by.get("slapproxy"), by.get("partita")
        head = f"getFullComputerInformation, {busy} busy"
        for key, what in (("raw", "raw GET (Session)"), ("after_change", "raw GET after a change"),
                          ("library", "slap library call")):
            rows.append((f"{head}: {what} ms mean/p50/p95", _cell(s, _latency(key)), _cell(p, _latency(key)),
                         _ratio(s, p, lambda r, k=key: r[k]["mean"], False)))
        rows.append((f"{head}: answer size (bytes)", _cell(s, lambda r: f"{r['bytes']:,}"),
                     _cell(p, lambda r: f"{r['bytes']:,}"), ""))
    return rows


def targets(results: dict) -> list[tuple[str, bool | None]]:
    checks: list[tuple[str, bool | None]] = []
    for clients, by in results["allocation"].items():
        s, p = by.get("slapproxy"), by.get("partita")
        ok = None
        if s and p and "error" not in s and "error" not in p:
            ok = p["rate"] >= 5 * s["rate"] and p["distinct"] == p["requests"] and p["failed"] == 0
        checks.append((f"allocation, {clients} client(s): Partita >= 5x slapproxy requests/s, every allocation "
                       "distinct, none failed", ok))
    for busy, by in results["full_computer"].items():
        p = by.get("partita")
        if int(busy) != 200 or not p:
            continue
        for key, what in (("raw", "steady state"), ("after_change", "after a change")):
            ok = None if "error" in p else p[key]["p95"] <= 10.0
            checks.append((f"getFullComputerInformation at 200 busy, raw GET {what}: Partita p95 <= 10 ms", ok))
    return checks


def print_report(results: dict) -> None:
    rows = [("metric", "slapproxy 1.26.1", "Partita", "ratio (Partita better)")] + table_rows(results)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for index, row in enumerate(rows):
        print(" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            print("-+-".join("-" * w for w in widths))
    print()
    for clients, by in results["allocation"].items():
        for name, result in by.items():
            if result and "error" not in result and result["errors"]:
                print(f"{LABEL[name]}, {clients} client(s), failures: "
                      + "; ".join(f"{count} x {reason}" for reason, count in result["errors"].items()))
            if result and "error" not in result:
                seen = result["server_view"]
                print(f"{LABEL[name]}, {clients} client(s), the server then shows {seen['busy']} busy partitions "
                      f"holding {seen['titles']} distinct titles (of {result['requests']} requested)")
            if result and "error" in result:
                print(f"{LABEL[name]}, {clients} client(s): {result['error']}")
    for busy, by in results["full_computer"].items():
        for name, result in by.items():
            if result and "error" in result:
                print(f"{LABEL[name]}, getFull at {busy} busy: {result['error']}")
    busy = [f"{section[:5]} {key} {name}: {r['busy_before']:.0%}"
            for section in ("allocation", "full_computer") for key, by in results[section].items()
            for name, r in by.items() if r and "busy_before" in r]
    print("CPU busy with other work just before each measurement: " + ", ".join(busy))
    print()
    for text, ok in targets(results):
        print(f"[{'HOLDS' if ok else ('MISSED' if ok is False else 'n/a')}] {text}")
    print(f"\nmachine: {os.cpu_count()} CPUs, {platform.platform()}; {results['date']}")


# --------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Partita's proxy against slapproxy 1.26.1, same client library.")
    parser.add_argument("--partitions", type=int, help="partitions = allocation requests (default 1000; quick 200)")
    parser.add_argument("--clients",
                        help="client process counts, comma-separated (default 1,8; quick 1,4; '' for none)")
    parser.add_argument("--busy", help="busy partition counts for getFull (default 200,1000; quick 200; '' for none)")
    parser.add_argument("--calls", type=int, help="raw getFull GETs per size (default 100; quick 50)")
    parser.add_argument("--quick", action="store_true", help="a fast check: 200 partitions, 1 and 4 clients")
    parser.add_argument("--servers", default=",".join(SERVER_NAMES), help="which servers (default both)")
    parser.add_argument("--json", help="also write every figure to this JSON file")
    parser.add_argument("--quiet-wait", type=float, default=120, metavar="SECONDS",
                        help="before each measurement, wait up to this long for the CPUs to be mostly idle "
                             f"(under {QUIET_BUSY * 100:.0f}%% busy; default 120)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (databases, logs)")
    args = parser.parse_args(argv)
    args.partitions = args.partitions or (200 if args.quick else 1000)
    args.clients = _counts(args.clients, "1,4" if args.quick else "1,8")
    args.busy = _counts(args.busy, "200" if args.quick else "200,1000")
    args.calls = args.calls or (50 if args.quick else 100)
    args.servers = [s.strip() for s in args.servers.split(",")]
    if set(args.servers) - set(SERVER_NAMES):
        parser.error(f"--servers takes {', '.join(SERVER_NAMES)}")
    return args


def _counts(given: str | None, default: str) -> list[int]:
    """A comma-separated list of counts; an empty string (``--busy ''``) skips that bench."""
    text = default if given is None else given
    return [int(item) for item in text.split(",") if item.strip()]


def check_prerequisites(servers: list[str]) -> None:
    log("scripts/peer-setup (idempotent)")
    subprocess.run([str(ROOT / "scripts" / "peer-setup")], check=True, stdout=sys.stderr, timeout=3600)
    if "partita" in servers and not (VENV / "bin" / "slapos").exists():
        raise SystemExit(f"bench: {VENV}/bin/slapos is missing: make the project's venv first (scripts/test)")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    check_prerequisites(args.servers)
    atexit.register(_stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    scratch = Path(tempfile.mkdtemp(prefix="partita-bench-"))
    results: dict = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                     "partitions": args.partitions, "cpus": os.cpu_count(), "allocation": {},
                     "full_computer": {},
                     "command": " ".join([".venv/bin/python", "bench/compare_slapproxy.py", *argv])}
    try:
        for clients in args.clients:
            by = results["allocation"].setdefault(str(clients), {})
            for name in args.servers:
                by[name] = attempt(f"{name}: allocation, {args.partitions} partitions, {clients} client(s)",
                                   lambda: bench_allocation(name, scratch, args.partitions, clients),
                                   args.quiet_wait)
        for busy in args.busy:
            by = results["full_computer"].setdefault(str(busy), {})
            for name in args.servers:
                by[name] = attempt(f"{name}: getFullComputerInformation, {busy} busy",
                                   lambda: bench_full_computer(name, scratch, busy, args.calls), args.quiet_wait)
    finally:
        _stop_all()
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print_report(results)
    failed = any("error" in r for section in ("allocation", "full_computer")
                 for by in results[section].values() for r in by.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
