"""What the asyncio front costs an ordinary call, against gunicorn's threaded worker.

    .venv/bin/python bench/front_overhead.py [--rounds 300] [--partitions 20] [--quiet-wait 60]

The master serves through `partita.master.front` (gunicorn's asyncio worker, the Flask app in a
pool of threads: issue 10). Before it, gunicorn's threaded worker ran the Flask app directly, and
waiting nodes took its threads. This bench starts the same proxy app twice, on two SQLite files in
a temporary directory: once behind the front, once under the threaded worker (16 threads each,
one worker, plain HTTP on loopback), formats a computer of N partitions on each, then times, on one
kept-alive connection per server and taking turns between the two servers every call:

- ``slapos.get.v0.compute_node_state`` (the node's read of its computer);
- ``slapos.post.v0.software_instance`` (a new instance: an allocation, a write);
- ``GET /nothing`` (a 404: the fixed cost of a request through each server).

It prints the median and p95 in ms of each, and the front's median over the threaded worker's.
Taking turns is what makes the ratio hold on a busy machine; figures from separate runs are not
comparable to a tenth of a millisecond.
"""
from __future__ import annotations

import argparse
import configparser
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from machine import wait_until_quiet  # noqa: E402  (bench/machine.py, beside this file)

from tests.support.server import free_port  # noqa: E402

COMPUTER = "local_computer"
SOFTWARE = "https://example.org/bench/software.cfg"
THREADS = 16
KINDS = ("front", "threaded")


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# The servers (this file run as ``serve KIND PORT DATABASE_URI``)
# --------------------------------------------------------------------------------------------

def serve(kind: str, port: int, database_uri: str) -> None:
    from gunicorn.app.base import BaseApplication

    from partita.master.front import Front
    from partita.proxy.app import make_app, prepare
    from partita.slap.config import proxy_config

    parser = configparser.ConfigParser()
    parser.read_dict({"slapos": {"computer_id": COMPUTER},
                      "slapproxy": {"host": "127.0.0.1", "port": str(port), "database_uri": database_uri}})
    config = proxy_config(parser)
    prepare(config)

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings: dict[str, Any] = {"bind": f"127.0.0.1:{port}", "workers": 1, "threads": THREADS,
                                        "keepalive": 5, "timeout": 60, "loglevel": "warning"}
            if kind == "front":
                settings.update({"worker_class": "partita.master.front.Worker", "worker_connections": 4096,
                                 "asgi_lifespan": "off"})
            else:
                settings["worker_class"] = "gthread"
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            app = make_app(config)
            if kind != "front":
                return app.wsgi_app
            return Front(app.wsgi_app, app.extensions["partita.db"].bus, threads=THREADS,
                         max_body=app.config.get("MAX_CONTENT_LENGTH"), max_wait_seconds=60)

    Server().run()


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------

def start(kind: str, scratch: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "serve", kind, str(port),
                                f"sqlite:///{scratch / kind}.db"])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the {kind} server exited with {process.returncode}")
        try:
            requests.get(f"{url}/nothing", timeout=2)
            return process, url
        except (requests.ConnectionError, requests.Timeout):  # bound before it serves: a wait, not a failure
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError(f"the {kind} server did not answer within 60 s")


def post(session: requests.Session, url: str, method: str, body: dict[str, Any]) -> None:
    answer = session.post(f"{url}/{method}", json=body, timeout=30)
    if answer.status_code not in (200, 201):
        raise RuntimeError(f"{method} answered {answer.status_code}: {answer.text[:300]}")


def prepare(session: requests.Session, url: str, partitions: int) -> None:
    post(session, url, "slapos.put.v0.compute_node_format", {
        "computer_guid": COMPUTER, "compute_partition_list": [
            {"partition_id": f"slappart{n}", "ip_list": [
                {"ip-address": f"10.0.{n // 250}.{n % 250 + 2}", "network-interface": "lo"}]}
            for n in range(partitions)]})
    post(session, url, "slapos.post.v0.software_installation",
         {"computer_guid": COMPUTER, "software_release_uri": SOFTWARE})


def calls(session: requests.Session, url: str) -> dict[str, Callable[[int], None]]:
    def state(_round: int) -> None:
        post(session, url, "slapos.get.v0.compute_node_state", {"computer_guid": COMPUTER})

    def allocation(round_: int) -> None:
        post(session, url, "slapos.post.v0.software_instance", {
            "title": f"bench-{round_}", "software_release_uri": SOFTWARE, "software_type": "default",
            "state": "started", "shared": False, "parameters": {}, "sla_parameters": {}})

    def nothing(_round: int) -> None:
        session.get(f"{url}/nothing", timeout=30)

    return {"compute_node_state": state, "allocation": allocation, "404": nothing}


def measure(urls: dict[str, str], rounds: int, partitions: int) -> dict[str, dict[str, list[float]]]:
    sessions = {kind: requests.Session() for kind in urls}
    for kind, url in urls.items():
        prepare(sessions[kind], url, partitions)
    work = {kind: calls(sessions[kind], url) for kind, url in urls.items()}
    times: dict[str, dict[str, list[float]]] = {kind: {name: [] for name in work[kind]} for kind in urls}
    for round_ in range(rounds):
        for name in work[KINDS[0]]:
            for kind in (KINDS if round_ % 2 == 0 else KINDS[::-1]):
                started = time.perf_counter()
                work[kind][name](round_)
                times[kind][name].append(time.perf_counter() - started)
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, -(-95 * len(ordered) // 100) - 1)]


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        serve(argv[1], int(argv[2]), argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--partitions", type=int, default=20)
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    args = parser.parse_args(argv)
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="partita-front-bench-") as directory:
        try:
            urls = {}
            for kind in KINDS:
                process, urls[kind] = start(kind, Path(directory))
                processes.append(process)
            wait_until_quiet(args.quiet_wait, log)
            times = measure(urls, args.rounds, args.partitions)
        except (RuntimeError, requests.RequestException) as error:
            log(str(error))
            return 1
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)
    print(f"{args.rounds} rounds, {args.partitions} partitions, one kept-alive connection per server, "
          "taking turns")
    print(f"{'ms':20} {'front median':>13} {'p95':>7} {'threaded median':>16} {'p95':>7} {'front/threaded':>15}")
    for name in times[KINDS[0]]:
        front, threaded = times["front"][name], times["threaded"][name]
        print(f"{name:20} {statistics.median(front) * 1000:13.2f} {p95(front) * 1000:7.2f} "
              f"{statistics.median(threaded) * 1000:16.2f} {p95(threaded) * 1000:7.2f} "
              f"{statistics.median(front) / statistics.median(threaded):15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
