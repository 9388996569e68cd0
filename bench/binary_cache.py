"""Supply -> software available on a node: built there, or deployed from the master's binary cache.

The cluster of ``tests/cluster`` (`tests.support.cluster`) with three namespaced nodes sharing one
software root path (each its own directory mounted there, as on machines of their own). Node 1 is
made a builder; node 3 has ``[slapos] binary_cache = false``. For each release, measured from the
``supply`` call on the host until the master shows the installation ``available``:

- *builder*: node 1 builds it and uploads it to the binary cache (the upload comes before its
  report);
- *from the cache*: node 2 downloads, checks and unpacks it, no buildout;
- *built*: node 3 builds it (the tests' shared download and egg cache is warm, and partita:cmmi's
  compiled programs are shared through it: a cold machine builds slower).

Then the transfer itself (``--transfer MIB``, default 64): an archive of random bytes uploaded by
node 1 with its certificate (begin, 4 MiB chunks, commit: the master checks its sha256) and
downloaded by node 2 with its own, timed on the host.

Usage, as root (the project's .venv and the test toolchain made by ``scripts/test`` first):

    PARTITA_TEST_ROOT=/opt/partita-test .venv/bin/python bench/binary_cache.py [--release hello-web ...]

Everything it makes (namespaces, bridge, users, the database) is removed at the end.
"""
from __future__ import annotations

import argparse
import configparser
import hashlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from partita.node.binary_cache import CHUNK  # noqa: E402
from partita.slap.client import MasterClient  # noqa: E402
from tests.support.cluster import Cluster, ClusterNode, start_cluster  # noqa: E402
from tests.support.postgres import start_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def available(cluster: Cluster, node: ClusterNode, url: str, timeout: float = 900.0) -> float:
    """Supply `url` to `node`; the seconds until the master shows it available there."""
    began = time.monotonic()
    cluster.client.supply(node.computer_id, url)
    while time.monotonic() - began < timeout:
        for entry in cluster.client.list_software_installations(node.computer_id):
            if entry.get("software_release_uri") == url and entry.get("reported_state") == "available":
                return time.monotonic() - began
        time.sleep(0.1)
    raise SystemExit(f"{url} not available on {node.computer_id} after {timeout:g} s:\n{node.log()[-2000:]}")


def without_cache(node: ClusterNode) -> None:
    node.stop()
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(node.config_path)
    parser["slapos"]["binary_cache"] = "false"
    with open(node.config_path, "w") as handle:
        parser.write(handle)
    node.start()


def node_client(cluster: Cluster, node: ClusterNode) -> MasterClient:
    """A client of the master with `node`'s own certificate."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(node.config_path)
    files = parser["slapos"]
    return MasterClient(cluster.master_url, cert=(files["cert_file"], files["key_file"]),
                        ca_file=files["partita_ca_file"], timeout=60)


def transfer(cluster: Cluster, builder: ClusterNode, reader: ClusterNode, mib: int) -> tuple[float, float]:
    """Seconds to upload then download `mib` MiB of random bytes through the binary cache."""
    data = os.urandom(mib * 1024 * 1024)
    url = f"file:///bench/transfer-{os.getpid()}/software.cfg"
    key = f"{hashlib.md5(url.encode()).hexdigest()}-bench-transfer"
    with node_client(cluster, builder) as up, node_client(cluster, reader) as down:
        began = time.monotonic()
        up.begin_binary_cache_upload(key, url, "bench-transfer", len(data), hashlib.sha256(data).hexdigest())
        for offset in range(0, len(data), CHUNK):
            up.put_binary_cache_chunk(key, offset, data[offset:offset + CHUNK])
        up.commit_binary_cache_upload(key)
        uploaded = time.monotonic() - began
        began = time.monotonic()
        size = int(down.get_binary_cache_entry(key)["size"])
        received = b"".join(down.get_binary_cache_chunk(key, offset, min(CHUNK, size - offset))
                            for offset in range(0, size, CHUNK))
        downloaded = time.monotonic() - began
    assert received == data
    return uploaded, downloaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", action="append",
                        help="a release of software-releases/ (default: hello-web, c-hello)")
    parser.add_argument("--transfer", type=int, default=64, metavar="MIB", help="MiB of the transfer test (0: none)")
    args = parser.parse_args()
    releases = args.release or ["hello-web", "c-hello"]
    rows = []
    moved = (0.0, 0.0)
    postgres = start_server()
    try:
        with start_cluster(postgres, 3, partitions=1, shared_software_root=True) as cluster:
            builder, cached, plain = cluster.nodes
            cluster.client.set_compute_node_builder(builder.computer_id, True)
            without_cache(plain)
            for name in releases:
                url = str(REPO / "software-releases" / name / "software.cfg")
                rows.append((name, available(cluster, builder, url), available(cluster, cached, url),
                             available(cluster, plain, url)))
                assert "from the binary cache" in cached.log(), cached.log()[-2000:]
            if args.transfer:
                moved = transfer(cluster, builder, cached, args.transfer)
    finally:
        postgres.stop()
    print("supply -> available (s), 3 namespaced nodes on one master (PostgreSQL, HTTPS on the bridge)")
    print(f"{'release':12} {'builder (build + upload)':>25} {'from the cache':>15} {'built (no cache)':>17}")
    for name, built_up, from_cache, built in rows:
        print(f"{name:12} {built_up:25.1f} {from_cache:15.1f} {built:17.1f}")
    if args.transfer:
        print(f"transfer of {args.transfer} MiB: upload {moved[0]:.1f} s ({args.transfer / moved[0]:.0f} MiB/s), "
              f"download {moved[1]:.1f} s ({args.transfer / moved[1]:.0f} MiB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
