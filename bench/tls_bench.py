"""What authentication costs: a master over HTTPS with certificates against one over plain HTTP.

    .venv/bin/python bench/tls_bench.py [--partitions 100] [--rounds 200] [--allocations 60]
                                        [--json FILE] [--quiet-wait 60]

In one run, two real masters (`slapos master start`, one gunicorn worker each, SQLite catalogs in a
temporary directory, free 127.0.0.1 ports): one with ``[slapmaster] authentication = none`` (plain
HTTP, every caller believed) and one with certificates (``slapos master init``, then HTTPS with
mutual TLS; `tests/support/secure_master.py` starts it). On the HTTPS one the admin enrols with
init's token and a computer with a token the admin makes, as `slapos node register` does; both
masters get a computer of P partitions (default 100) formatted through the JSON API. Then:

(a) **connection cost**: the same call (``slapos.get.v0.compute_node_state``) on a kept-alive
    ``requests.Session`` and on a new connection per call; the bare TCP connect, and the TLS
    handshake with the computer's certificate (no HTTP) on a client context made once; whether the
    server resumes a TLS session (the ticket or session of a first connection offered on the next
    one) and what a resumed handshake costs; and, in process, what building the server's TLS
    context costs (gunicorn's threaded worker builds one for every connection it accepts);
(b) **per call**, HTTPS against HTTP, the two interleaved call by call: the node's pass
    (``compute_node_state`` as JSON, ``getFullComputerInformation`` as SLAP XML, as the computer)
    on a kept-alive session and on new connections, and an allocation (``slapos.post.v0.
    software_instance`` of a new title that gets a partition, as the admin; A of them, default 60,
    before the reads, so the reads see A busy partitions);
(c) **in process** (Flask's test client, no socket): ``compute_node_state`` on an app without
    authentication and on one with it (the computer's DER in the environ, as the server hands it
    over), and the parts of the identification alone: parsing a certificate's serial (done once
    per distinct certificate and worker: `authentication._serial` is cached), the catalog lookup
    with its revocation and expiry check (`certificates.identify`), and a cached serial.

Figures are medians and p95 (nearest rank) in milliseconds (microseconds for (c)'s parts). Before
each part the bench waits (up to ``--quiet-wait`` seconds) while other work keeps the CPUs more
than 25 % busy (`bench/machine.py`), and prints the share it measured. Traffic stays on loopback;
both servers are stopped at the end, on error and on SIGINT/SIGTERM. Figures are kept in
``docs/performance.md``.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import signal
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402
from machine import wait_until_quiet  # noqa: E402  (bench/machine.py, beside this file)

from partita.master.api import authentication  # noqa: E402
from partita.master.app import create_app  # noqa: E402
from partita.master.db import migrate  # noqa: E402
from partita.master.db.database import Database  # noqa: E402
from partita.master.pki import certificates as certs  # noqa: E402
from partita.master.pki import store  # noqa: E402
from partita.master.server import TlsFiles, tls_context  # noqa: E402
from partita.master.services import certificates, users  # noqa: E402
from partita.master.services.certificates import Authority  # noqa: E402
from partita.master.settings import AppSettings  # noqa: E402
from tests.support import server as servers  # noqa: E402
from tests.support.secure_master import call, enrol, new_key_and_csr, start_secure_master  # noqa: E402

SOFTWARE_URL = "http://software.example.invalid/bench/software.cfg"  # only data: nothing fetches it
PLAIN_COMPUTER = "COMP-BENCH"
TIMEOUT = 30


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A server did not answer as the bench needs; the message says which and why."""


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

def summary(seconds: list[float], scale: float = 1000.0) -> dict[str, float]:
    """median, p95 (nearest rank), min and max of `seconds`, times `scale` (ms by default)."""
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, max(0, -(-95 * len(ordered) // 100) - 1))]
    return {"n": len(ordered), "median": statistics.median(ordered) * scale, "p95": p95 * scale,
            "min": ordered[0] * scale, "max": ordered[-1] * scale}


def clock(call_: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call_()
    return time.perf_counter() - start


def interleaved(calls: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """`rounds` timings of each call, the calls taking turns (so drift hits them alike)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call_ in calls.items():
            times[name].append(clock(call_))
    return times


# --------------------------------------------------------------------------------------------
# The two masters
# --------------------------------------------------------------------------------------------

@dataclass
class Side:
    """One master as the bench calls it: its URL, the computer's and the requester's credentials."""

    name: str
    url: str
    computer: str
    verify: str | bool = True
    computer_cert: tuple[str, str] | None = None
    user_cert: tuple[str, str] | None = None

    def session(self, cert: tuple[str, str] | None) -> requests.Session:
        session = requests.Session()
        session.verify, session.cert = self.verify, cert
        return session

    def post(self, session: requests.Session, method: str, body: dict[str, Any]) -> Any:
        # verify with every call: requests lets $REQUESTS_CA_BUNDLE replace a session's verify
        answer = session.post(f"{self.url}/{method}", json=body, timeout=TIMEOUT, verify=self.verify)
        if answer.status_code != 200:
            raise BenchError(f"{self.name}: {method} answered {answer.status_code}: {answer.text[:300]}")
        return answer.json()

    def get_full(self, session: requests.Session) -> bytes:
        answer = session.get(f"{self.url}/getFullComputerInformation", params={"computer_id": self.computer},
                             timeout=TIMEOUT, verify=self.verify)
        if answer.status_code != 200:
            raise BenchError(f"{self.name}: getFullComputerInformation answered {answer.status_code}")
        return answer.content


_running: list[Any] = []


def _stop_all() -> None:
    while _running:
        _running.pop().stop()


def _on_signal(signum: int, _frame: object) -> None:
    _stop_all()
    raise SystemExit(128 + signum)


@contextmanager
def two_masters(scratch: Path) -> Iterator[tuple[Side, Side, Any]]:
    """The HTTP master and the HTTPS master (with its admin and a computer enrolled)."""
    (scratch / "http").mkdir()
    (scratch / "https").mkdir()
    try:
        plain = servers.start(scratch / "http", ("master", "start"), database=str(scratch / "http" / "master.db"))
        _running.append(plain)
        secure = start_secure_master(scratch / "https")
        _running.append(secure)
        admin = enrol(secure, secure.admin_token, scratch / "https" / "ids", "admin")
        token = call(secure, admin, "slapos.post.v0.compute_node_token", {"title": "bench node"}).json()["token"]
        computer = enrol(secure, token, scratch / "https" / "ids", "computer")
        yield (Side("HTTP", plain.url, PLAIN_COMPUTER),
               Side("HTTPS", secure.url, computer.name, str(secure.ca_file), computer.cert, admin.cert),
               secure)
    finally:
        _stop_all()


def format_computer(side: Side, partitions: int) -> None:
    with side.session(side.computer_cert) as session:
        side.post(session, "slapos.put.v0.compute_node_format", {
            "computer_guid": side.computer, "compute_partition_list": [
                {"partition_id": f"slappart{n}", "ip_list": [
                    {"ip-address": f"10.0.{n // 250}.{n % 250 + 2}", "network-interface": "lo"},
                    {"ip-address": f"fd00:ba5e::{n + 2:x}", "network-interface": "lo"}]}
                for n in range(partitions)]})
        side.post(session, "slapos.post.v0.software_installation",
                  {"computer_guid": side.computer, "software_release_uri": SOFTWARE_URL})


def allocate(side: Side, session: requests.Session, title: str) -> None:
    answer = side.post(session, "slapos.post.v0.software_instance", {
        "title": title, "software_release_uri": SOFTWARE_URL, "software_type": "default",
        "parameters": {"p1": "value one", "p2": "value two", "p3": "3"},
        "sla_parameters": {"computer_guid": side.computer}})
    if answer.get("compute_partition_id") is None:
        raise BenchError(f"{side.name}: {title} got no partition: {answer}")


# --------------------------------------------------------------------------------------------
# (a) the connection
# --------------------------------------------------------------------------------------------

def handshakes(side: Side, rounds: int) -> dict[str, Any]:
    """TCP connect, full TLS handshakes, and whether (and how fast) a session is resumed."""
    host, port = urlsplit(side.url).hostname or "127.0.0.1", urlsplit(side.url).port or 443
    context = ssl.create_default_context(cafile=str(side.verify))
    assert side.computer_cert is not None
    context.load_cert_chain(*side.computer_cert)

    def connect() -> None:
        socket.create_connection((host, port), timeout=TIMEOUT).close()

    def handshake(session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
        raw = socket.create_connection((host, port), timeout=TIMEOUT)
        return context.wrap_socket(raw, server_hostname=host, session=session)

    def first_session() -> ssl.SSLSession | None:
        """A session from a connection that carried one request (TLS 1.3 tickets come after it)."""
        with handshake() as tls:
            tls.sendall(f"GET /partita/ca.crt HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            while tls.recv(65536):
                pass
            return tls.session

    tcp = [clock(connect) for _ in range(rounds)]
    full = [clock(lambda: handshake().close()) for _ in range(rounds)]
    offered, reused, resumed_times = 0, 0, []
    for _ in range(min(rounds, 50)):
        session = first_session()
        if session is None:
            continue
        offered += 1
        start = time.perf_counter()
        tls = handshake(session)
        elapsed = time.perf_counter() - start
        if tls.session_reused:
            reused += 1
            resumed_times.append(elapsed)
        tls.close()
    with handshake() as tls:
        version = tls.version()
    return {"tls_version": version, "tcp_connect": summary(tcp), "tls_handshake": summary(full),
            "resumption_offered": offered, "resumption_accepted": reused,
            "tls_resumed": summary(resumed_times) if resumed_times else None}


def server_context_cost(pki: Path, rounds: int) -> dict[str, float]:
    """What the server pays to build its TLS context (`master.server.tls_context`), in process."""
    files = TlsFiles(str(pki / store.MASTER_CERT), str(pki / store.MASTER_KEY), str(pki / store.CA_CERT))
    return summary([clock(lambda: tls_context(files)) for _ in range(rounds)])


# --------------------------------------------------------------------------------------------
# (b) per call, over the wire
# --------------------------------------------------------------------------------------------

def over_the_wire(plain: Side, secure: Side, rounds: int, allocations: int, quiet_wait: float) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    sides = (plain, secure)
    users_ = {side.name: side.session(side.user_cert) for side in sides}
    nodes = {side.name: side.session(side.computer_cert) for side in sides}
    figures["cpu_busy_allocation"] = wait_until_quiet(quiet_wait, log)
    counter = iter(range(allocations))

    def allocation_round() -> None:
        n = next(counter)
        for side in sides:
            times[side.name].append(clock(lambda side=side: allocate(side, users_[side.name], f"bench-{n}")))

    times: dict[str, list[float]] = {side.name: [] for side in sides}
    for _ in range(allocations):
        allocation_round()
    figures["allocation"] = {name: summary(values) for name, values in times.items()}

    def state(side: Side, session: requests.Session) -> Callable[[], Any]:
        return lambda: side.post(session, "slapos.get.v0.compute_node_state", {"computer_guid": side.computer})

    def fresh(side: Side, work: Callable[[Side, requests.Session], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with side.session(side.computer_cert) as session:
                return work(side, session)
        return run

    for side in sides:  # warm the connections and the answer caches
        state(side, nodes[side.name])()
        side.get_full(nodes[side.name])
    figures["cpu_busy_reads"] = wait_until_quiet(quiet_wait, log)
    calls: dict[str, Callable[[], Any]] = {}
    for side in sides:
        calls[f"compute_node_state kept-alive {side.name}"] = state(side, nodes[side.name])
        calls[f"getFullComputerInformation kept-alive {side.name}"] = \
            lambda side=side: side.get_full(nodes[side.name])
        calls[f"compute_node_state new connection {side.name}"] = \
            fresh(side, lambda s, session: state(s, session)())
        calls[f"getFullComputerInformation new connection {side.name}"] = \
            fresh(side, lambda s, session: s.get_full(session))
    figures["reads"] = {name: summary(values) for name, values in interleaved(calls, rounds).items()}
    figures["answer_bytes"] = {side.name: len(side.get_full(nodes[side.name])) for side in sides}
    for session in (*users_.values(), *nodes.values()):
        session.close()
    return figures


# --------------------------------------------------------------------------------------------
# (c) in process
# --------------------------------------------------------------------------------------------

def in_process(scratch: Path, partitions: int, busy: int, rounds: int) -> dict[str, Any]:
    """compute_node_state through Flask's test client, with and without authentication."""
    plain_db, auth_db = (Database(f"sqlite:///{scratch / name}") for name in ("plain.db", "auth.db"))
    try:
        for db in (plain_db, auth_db):
            migrate.upgrade(db.engine)
        authority = Authority(certs.new_ca())
        plain = create_app(plain_db, AppSettings(mode="master")).test_client()
        auth = create_app(auth_db, AppSettings(mode="master", authentication=True), authority).test_client()
        _owner, token = auth_db.run_write(lambda session: users.ensure_first_admin(
            session, "admin", 3600, authority.fingerprint, False))

        def enrolled(token_text: str) -> tuple[str, bytes]:
            _key, csr = new_key_and_csr()
            answer = auth.post("/slapos.post.v0.enrolment", json={"token": token_text, "csr": csr.decode()}).get_json()
            der = x509.load_pem_x509_certificate(answer["certificate"].encode()).public_bytes(Encoding.DER)
            return answer["name"], der

        _admin, admin_der = enrolled(token)
        node_token = auth.post("/slapos.post.v0.compute_node_token", json={},
                               environ_base={authentication.PEER_CERTIFICATE: admin_der}).get_json()["token"]
        guid, computer_der = enrolled(node_token)
        as_admin = {authentication.PEER_CERTIFICATE: admin_der}
        as_computer = {authentication.PEER_CERTIFICATE: computer_der}
        for client, computer, admin_env, node_env in ((plain, PLAIN_COMPUTER, {}, {}),
                                                      (auth, guid, as_admin, as_computer)):
            _seed_in_process(client, computer, partitions, busy, admin_env, node_env)

        def state(client: Any, computer: str, environ: dict[str, Any]) -> Callable[[], Any]:
            return lambda: client.post("/slapos.get.v0.compute_node_state", json={"computer_guid": computer},
                                       environ_base=environ)

        gc.collect()
        times = interleaved({"without authentication": state(plain, PLAIN_COMPUTER, {}),
                             "with authentication": state(auth, guid, as_computer)}, rounds)
        figures: dict[str, Any] = {name: summary(values) for name, values in times.items()}
        serial = authentication._serial(computer_der)

        def lookup() -> None:
            with auth_db.read() as session:
                certificates.identify(session, serial)

        figures["parse serial (uncached)"] = summary(
            [clock(lambda: certificates.serial_hex(x509.load_der_x509_certificate(computer_der)))
             for _ in range(rounds)], 1e6)
        figures["serial, cached"] = summary([clock(lambda: authentication._serial(computer_der))
                                             for _ in range(rounds)], 1e6)
        figures["catalog lookup + revocation check"] = summary([clock(lookup) for _ in range(rounds)], 1e6)
        return figures
    finally:
        plain_db.dispose()
        auth_db.dispose()


def _seed_in_process(client: Any, computer: str, partitions: int, busy: int, admin_env: dict[str, Any],
                     node_env: dict[str, Any]) -> None:
    answer = client.post("/slapos.put.v0.compute_node_format", environ_base=node_env, json={
        "computer_guid": computer, "compute_partition_list": [
            {"partition_id": f"slappart{n}", "ip_list": [
                {"ip-address": f"10.0.{n // 250}.{n % 250 + 2}", "network-interface": "lo"}]}
            for n in range(partitions)]})
    if answer.status_code != 200:
        raise BenchError(f"in process: format answered {answer.status_code}: {answer.get_data(as_text=True)}")
    for n in range(busy):
        answer = client.post("/slapos.post.v0.software_instance", environ_base=admin_env, json={
            "title": f"bench-{n}", "software_release_uri": SOFTWARE_URL, "software_type": "default",
            "parameters": {"p1": "value one", "p2": "value two", "p3": "3"},
            "sla_parameters": {"computer_guid": computer}})
        if answer.status_code != 200:
            raise BenchError(f"in process: request answered {answer.status_code}: {answer.get_data(as_text=True)}")


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def _row(label: str, row: dict[str, float] | None, width: int, unit: str = "") -> str:
    if row is None:
        return f"{label:<{width}}      (none)"
    return (f"{label:<{width}} {row['median']:9.2f} {row['p95']:9.2f} {row['min']:9.2f} {row['max']:9.2f} "
            f"{row['n']:6d}{unit}")


def print_report(results: dict[str, Any]) -> None:
    print(f"{results['date']}, {results['machine']}; {results['partitions']} partitions, "
          f"{results['allocations']} allocated; SQLite, one gunicorn worker per master")
    width = 58
    header = f"{'ms':<{width}}    median       p95       min       max      n"
    a = results["connection"]
    print(f"\n(a) connection ({a['tls_version']}; CPUs {results['wire']['cpu_busy_reads']:.0%} busy before)")
    print(header)
    print(_row("TCP connect", a["tcp_connect"], width))
    print(_row("TLS handshake with client certificate (no HTTP)", a["tls_handshake"], width))
    print(_row("TLS handshake, resumed", a["tls_resumed"], width))
    print(_row("server: building its TLS context (in process)", a["server_context"], width))
    print(f"session resumption: {a['resumption_accepted']} of {a['resumption_offered']} offered sessions resumed")
    wire = results["wire"]
    print(f"\n(b) per call, HTTPS vs HTTP (CPUs {wire['cpu_busy_allocation']:.0%} busy before the allocations, "
          f"{wire['cpu_busy_reads']:.0%} before the reads; answer {wire['answer_bytes']['HTTPS']:,} bytes)")
    print(header)
    for side, row in wire["allocation"].items():
        print(_row(f"allocation (software_instance, new title) {side}", row, width))
    for name, row in wire["reads"].items():
        print(_row(name, row, width))
    c = results["in_process"]
    print(f"\n(c) in process, compute_node_state (Flask test client; CPUs {c['cpu_busy']:.0%} busy before)")
    print(header)
    for name in ("without authentication", "with authentication"):
        print(_row(name, c[name], width))
    print(f"{'µs':<{width}}    median       p95       min       max      n")
    for name in ("parse serial (uncached)", "serial, cached", "catalog lookup + revocation check"):
        print(_row(name, c[name], width))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--partitions", type=int, default=100, help="partitions per computer (default 100)")
    parser.add_argument("--rounds", type=int, default=200, help="timed calls per figure (default 200)")
    parser.add_argument("--allocations", type=int, default=60, help="timed allocations per master (default 60)")
    parser.add_argument("--json", metavar="FILE", help="write every figure there")
    parser.add_argument("--quiet-wait", type=float, default=60, metavar="SECONDS",
                        help="wait at most this long for the CPUs to calm down (default 60)")
    args = parser.parse_args(argv)
    if args.partitions < 1 or args.rounds < 1 or not 1 <= args.allocations <= args.partitions:
        parser.error("--partitions and --rounds must be positive, --allocations between 1 and --partitions")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    results: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, Python {platform.python_version()}, OpenSSL "
                   f"{ssl.OPENSSL_VERSION.split()[1]}",
        "command": " ".join([".venv/bin/python", "bench/tls_bench.py", *argv]),
        "partitions": args.partitions, "allocations": args.allocations,
    }
    with tempfile.TemporaryDirectory(prefix="partita-tls-bench-") as directory:
        scratch = Path(directory)
        try:
            with two_masters(scratch) as (plain, secure, master):
                log(f"masters up: {plain.url} and {secure.url}; formatting {args.partitions} partitions")
                for side in (plain, secure):
                    format_computer(side, args.partitions)
                results["wire"] = over_the_wire(plain, secure, args.rounds, args.allocations, args.quiet_wait)
                wait_until_quiet(args.quiet_wait, log)
                results["connection"] = handshakes(secure, args.rounds)
                results["connection"]["server_context"] = server_context_cost(master.directory / "pki", args.rounds)
        except (BenchError, RuntimeError, requests.RequestException) as error:
            print(f"bench: {error}", file=sys.stderr)
            return 1
        busy = wait_until_quiet(args.quiet_wait, log)
        results["in_process"] = in_process(scratch, args.partitions, args.allocations, args.rounds)
        results["in_process"]["cpu_busy"] = busy
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
