"""The shipped software releases: build time cold and warm, request -> service answering, disk.

    .venv/bin/python bench/releases.py [--releases redis,jupyter] [--json FILE]

Runs as root against a real proxy and node on loopback (`tests.support.node.NodeEnv`), one release
at a time, each on a node of its own with an empty cache directory:

1. **cold build**: `slapos node software` with the release supplied and nothing in the node's
   stores (``<cache>/pip``, ``<cache>/cmmi``): every wheel is downloaded from the package index
   (partita:pip runs pip without its download cache), every source tree compiled. The node's
   toolchain is already built (it is shared by every release and measured by the node tests).
2. **warm build**: the same release copied to another directory (another URL, so another software
   directory), built on the same node: what a second release pinning the same files costs.
3. **request -> answering**: with `slapos node run` running and the software built, from the
   `request` call to the published address accepting a connection (and, for an HTTP URL, answering
   any HTTP status): allocation, the node's wake-up, the instance buildout, supervisord, promises,
   the publication, and, for an instance tree, its children's.
4. **disk**: the software directory, and the store entries the release put in the cache (shared
   with every release pinning the same files: counted once per machine, not per release).
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.node import COMPUTER, NodeEnv  # noqa: E402

RELEASES = Path(__file__).resolve().parents[1] / "software-releases"
# The published value that tells where a release answers, by the release's name; `url` otherwise.
ADDRESS_KEY = {"dask": "scheduler"}
# Releases a release's instances request besides itself, supplied (and built) with it.
COMPANIONS = {"tree": ("leaf/software.cfg",)}
PARTITIONS = 4  # the largest default tree (dask: a scheduler and two workers) and one spare
ANSWER_TIMEOUT = 600.0


def shipped() -> list[str]:
    return sorted(path.parent.name for path in RELEASES.glob("*/software.cfg"))


def disk_mib(path: Path) -> float:
    result = subprocess.run(["du", "-s", "--block-size=1K", str(path)], capture_output=True, text=True, check=True)
    return int(result.stdout.split()[0]) / 1024


def copy_release(name: str, destination: Path) -> Path:
    """The release's files at another path: another URL, so another software directory."""
    copy = destination / name
    shutil.copytree(RELEASES / name, copy, ignore=shutil.ignore_patterns("__pycache__", "test_*.py"))
    for path in (destination, copy):
        path.chmod(0o755)
    return copy / "software.cfg"


def answers(url: str) -> bool:
    """The address of `url` accepts a connection; an HTTP(S) URL answers with any status."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        try:
            requests.get(url, timeout=2, verify=False)
            return True
        except requests.RequestException:
            return False
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return True
    except (OSError, TypeError):
        return False


def wait_answering(env: NodeEnv, title: str, key: str, started: float) -> float:
    while time.monotonic() < started + ANSWER_TIMEOUT:
        url = env.info(title).get("connection_parameters", {}).get(key, "")
        if url and answers(url):
            return time.monotonic() - started
        time.sleep(0.05)
    raise RuntimeError(f"{title}: {key} not answering after {ANSWER_TIMEOUT:g}s\n{env.daemon_log()[-2000:]}")


def timed_build(env: NodeEnv, profile: Path) -> float:
    """Supply the release at `profile` (and its companions beside it) and build them."""
    for url in (profile, *(profile.parent / companion for companion in COMPANIONS.get(profile.parent.name, ()))):
        env.client.supply(COMPUTER, str(url))
    started = time.monotonic()
    env.software()
    return time.monotonic() - started


def bench_release(name: str) -> dict[str, float]:
    cache = Path("/tmp") / f"bench-cache-{name}"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir()
    cache.chmod(0o755)
    env = NodeEnv(partitions=PARTITIONS, extra={"slapos": {"cache_directory": str(cache)}})
    try:
        env.format()
        url = str(RELEASES / name / "software.cfg")
        figures = {"cold_build_s": timed_build(env, Path(url))}
        figures["warm_build_s"] = timed_build(env, copy_release(name, env.root / "copy"))
        figures["software_mib"] = disk_mib(env.software_directory(url))
        stores = [path for path in cache.iterdir() if path.is_dir()]
        figures["stores_mib"] = sum(disk_mib(path) for path in stores)
        env.start_daemon()
        started = time.monotonic()
        env.client.request_instance(name, url)
        figures["request_to_answering_s"] = wait_answering(env, name, ADDRESS_KEY.get(name, "url"), started)
        return figures
    finally:
        env.close()
        shutil.rmtree(cache, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", default=",".join(shipped()),
                        help="comma-separated names under software-releases/ (default: every one)")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    names = [name for name in args.releases.split(",") if name]
    unknown = [name for name in names if not (RELEASES / name / "software.cfg").is_file()]
    if unknown:
        print(f"releases: no such release: {', '.join(unknown)} (shipped: {', '.join(shipped())})", file=sys.stderr)
        return 64
    results: dict[str, dict[str, float]] = {}
    print(f"{'release':<12} {'cold build':>11} {'warm build':>11} {'request->answer':>16} {'software':>10} {'stores':>9}",
          flush=True)
    for name in names:
        results[name] = f = bench_release(name)
        print(f"{name:<12} {f['cold_build_s']:>10.1f}s {f['warm_build_s']:>10.1f}s "
              f"{f['request_to_answering_s']:>15.1f}s {f['software_mib']:>7.2f}MiB {f['stores_mib']:>6.1f}MiB", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
