"""getFullComputerInformation inside one process: what the SLAP XML adapter costs, without HTTP.

    .venv/bin/python bench/slap_xml_bench.py [--partitions 200] [--rounds 30] [--cached-rounds 200]
                                             [--postgresql [URL]] [--json FILE] [--quiet-wait 60]

The master app (proxy mode, as `slapos proxy start` serves it) over a fresh catalog, called through
Flask's test client: no socket, no client library, so the figures are the adapter's own (routes,
the service layer's reads, the answer cache, the codec). A computer is formatted with P partitions
(default 200), a release supplied, and every partition made busy by a request of its own title
with 10 parameters. Then ``GET /getFullComputerInformation`` is timed:

- **cold**: the process's answer cache dropped before each call: the computer is read (its
  partitions, addresses, instances, shared instances, supplies) and every partition encoded;
- **after a change**: one instance re-requested with a new parameter value before each call (not
  timed): the cache reads the computer again, encodes the changed partition and joins the kept
  fragments of the others;
- **cached**: nothing changes between calls: the answer kept for the computer's generation;
- and the codec alone on that answer (`marshal.loads` of its bytes, `marshal.dumps` of the value).

Each figure is the median, p95 (nearest rank), min and max in milliseconds. The catalog is a SQLite
file in a temporary directory; with ``--postgresql`` the same is measured on PostgreSQL too: on the
database URL given (an empty database), or without one on a throwaway cluster started as the tests
start it (``tests/support/postgres.py``; needs the PostgreSQL server binaries). Before measuring
on each backend, the bench waits (up to ``--quiet-wait`` seconds) while other work keeps the CPUs
more than 25 % busy (`/proc/stat`, 1 s samples) and prints the busy share it measured last: compare
figures taken on a quiet machine only. Figures are kept in ``docs/performance.md``.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask.testing import FlaskClient  # noqa: E402
from machine import wait_until_quiet  # noqa: E402  (bench/machine.py, beside this file)

from partita.master.api.slap_xml import routes  # noqa: E402
from partita.master.api.slap_xml.marshal import dumps, loads  # noqa: E402
from partita.master.app import create_app  # noqa: E402
from partita.master.db import migrate  # noqa: E402
from partita.master.db.database import Database  # noqa: E402
from partita.master.settings import AppSettings  # noqa: E402

COMPUTER = "local_computer"
SOFTWARE_URL = "http://software.example.invalid/bench/software.cfg"  # only data: nothing fetches it
PARAMETERS = 10


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def summary(seconds: list[float]) -> dict[str, float]:
    """median, p95 (nearest rank), min and max of `seconds`, in milliseconds."""
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, max(0, -(-95 * len(ordered) // 100) - 1))]
    return {"n": len(ordered), "median": statistics.median(ordered) * 1000, "p95": p95 * 1000,
            "min": ordered[0] * 1000, "max": ordered[-1] * 1000}


def timed(call: Callable[[], Any], rounds: int, before: Callable[[], Any] | None = None) -> list[float]:
    """The wall-clock seconds of `rounds` calls of `call`, each after an untimed `before`."""
    times = []
    for _ in range(rounds):
        if before is not None:
            before()
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


# --------------------------------------------------------------------------------------------
# The catalog and the calls
# --------------------------------------------------------------------------------------------

def computer_dict(partitions: int) -> dict[str, Any]:
    """What `slapos node format` sends (the keys the master reads)."""
    return {
        "reference": COMPUTER, "address": "10.0.0.1", "netmask": "255.255.0.0", "interface": None,
        "partition_list": [{
            "reference": f"slappart{n}",
            "address_list": [{"addr": f"10.0.{n // 250}.{n % 250 + 2}", "netmask": "255.255.0.0"},
                             {"addr": f"fd00:ba5e::{n + 2:x}", "netmask": "ffff:ffff:ffff:ffff::"}],
            "tap": {"name": f"slaptap{n}"},
        } for n in range(partitions)],
    }


def post(client: FlaskClient, path: str, data: dict[str, Any]) -> None:
    answer = client.post(path, data=data)
    if answer.status_code != 200:
        raise SystemExit(f"bench: {path} answered {answer.status_code}: {answer.text.strip()}")


def request(client: FlaskClient, title: str, parameters: dict[str, str]) -> None:
    post(client, "/requestComputerPartition", {
        "software_release": SOFTWARE_URL, "partition_reference": title, "software_type": "default",
        "partition_parameter_xml": dumps(parameters), "filter_xml": dumps({}), "state": dumps("started"),
        "shared_xml": dumps(False)})


def parameters(n: int, version: int = 0) -> dict[str, str]:
    return {f"p{k}": f"value-{k}-{n}-{version}" for k in range(PARAMETERS)}


def get_full(client: FlaskClient) -> bytes:
    answer = client.get("/getFullComputerInformation", query_string={"computer_id": COMPUTER})
    if answer.status_code != 200:
        raise SystemExit(f"bench: getFullComputerInformation answered {answer.status_code}")
    return answer.data


def measure(url: str, partitions: int, rounds: int, cached_rounds: int, quiet_wait: float) -> dict[str, Any]:
    """Every figure on the catalog at `url` (an empty database)."""
    database = Database(url)
    try:
        migrate.upgrade(database.engine)
        app = create_app(database, AppSettings(mode="proxy", computer_id=COMPUTER))
        client = app.test_client()
        post(client, "/loadComputerConfigurationFromXML", {"xml": dumps(computer_dict(partitions))})
        post(client, "/supplySupply", {"url": SOFTWARE_URL, "computer_id": COMPUTER, "state": "available"})
        start = time.perf_counter()
        for n in range(partitions):
            request(client, f"instance{n}", parameters(n))
        log(f"{partitions} requests in {time.perf_counter() - start:.1f} s")
        body = get_full(client)
        busy = sum(1 for p in loads(body).state["_computer_partition_list"] if p.state["_need_modification"])
        if busy != partitions:
            raise SystemExit(f"bench: {busy} busy partitions listed, not {partitions}")
        cpu_busy = wait_until_quiet(quiet_wait, log)
        gc.collect()
        gc.freeze()  # as master/server.py does after start-up

        def drop_cache() -> None:
            app.extensions.pop(routes.CACHE_KEY, None)

        versions = iter(range(1, rounds + 1))

        def change() -> None:
            request(client, "instance0", parameters(0, next(versions)))

        call = lambda: get_full(client)  # noqa: E731
        cold = timed(call, rounds, drop_cache)
        after_change = timed(call, rounds, change)
        get_full(client)
        cached = timed(call, cached_rounds)
        body = get_full(client)
        value = loads(body)
        decode = timed(lambda: loads(body), rounds)
        encode = timed(lambda: dumps(value), rounds)
        if dumps(value) != body:
            raise SystemExit("bench: the answer does not encode back to the same bytes")
        gc.unfreeze()
        return {"partitions": partitions, "bytes": len(body), "cpu_busy": cpu_busy, "cold": summary(cold),
                "after_change": summary(after_change), "cached": summary(cached),
                "loads": summary(decode), "dumps": summary(encode)}
    finally:
        database.dispose()


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------

@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="partita-bench-") as directory:
        yield f"sqlite:///{Path(directory) / 'catalog.db'}"


@contextmanager
def postgresql_url(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    from tests.support.postgres import start_server

    server = start_server()
    try:
        yield server.create_database("slap_xml_bench")
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

ROWS = (("cold", "getFullComputerInformation, cold (no cached answer)"),
        ("after_change", "getFullComputerInformation, after a change (one partition re-encoded)"),
        ("cached", "getFullComputerInformation, cached"),
        ("loads", "codec: marshal.loads of the answer"),
        ("dumps", "codec: marshal.dumps of the answer's value"))


def print_report(results: dict[str, Any]) -> None:
    print(f"{results['date']}, {results['machine']}")
    for backend, figures in results["backends"].items():
        print(f"\n{backend}: {figures['partitions']} busy partitions, answer {figures['bytes']:,} bytes, "
              f"CPUs {figures['cpu_busy']:.0%} busy before measuring")
        width = max(len(label) for _, label in ROWS)
        print(f"{'ms':<{width}}   median      p95      min      max      n")
        for key, label in ROWS:
            row = figures[key]
            print(f"{label:<{width}} {row['median']:8.2f} {row['p95']:8.2f} {row['min']:8.2f} "
                  f"{row['max']:8.2f} {row['n']:6d}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=200, help="busy partitions (default 200)")
    parser.add_argument("--rounds", type=int, default=30,
                        help="timed calls for cold, after a change and the codec (default 30)")
    parser.add_argument("--cached-rounds", type=int, default=200, help="timed cached calls (default 200)")
    parser.add_argument("--postgresql", nargs="?", const="", default=None, metavar="URL",
                        help="also on PostgreSQL: this empty database, or a throwaway cluster")
    parser.add_argument("--json", metavar="FILE", help="write every figure there")
    parser.add_argument("--quiet-wait", type=float, default=60, metavar="SECONDS",
                        help="wait at most this long for the CPUs to calm down (default 60)")
    args = parser.parse_args(argv)
    if args.partitions < 1 or args.rounds < 1 or args.cached_rounds < 1:
        parser.error("--partitions, --rounds and --cached-rounds must be positive")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}",
        "command": " ".join([".venv/bin/python", "bench/slap_xml_bench.py", *argv]),
        "backends": {},
    }
    backends: list[tuple[str, Callable[[], Any]]] = [("sqlite", sqlite_url)]
    if args.postgresql is not None:
        backends.append(("postgresql", lambda: postgresql_url(args.postgresql)))
    for name, url in backends:
        log(f"{name}: {args.partitions} partitions")
        with url() as database_url:
            results["backends"][name] = measure(database_url, args.partitions, args.rounds, args.cached_rounds,
                                               args.quiet_wait)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
