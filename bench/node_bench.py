"""Node benchmarks: request -> hello-web answering, the daemon's reaction to a change, and an idle
`slapos node instance` pass over many unchanged partitions.

    .venv/bin/python bench/node_bench.py [--repeat 5] [--partitions 100] [--json FILE]

Runs as root (real partition users, as in production) against a real proxy on loopback, with the
real `slapos node …` commands. Targets (issue 3): request -> answering <= 10 s with the software
already built, reaction <= 1 s, idle pass over 100 partitions <= 0.5 s.

1. **request -> answering**: `slapos node run` is running and hello-web is built; time from the
   `request` call to the first 200 of the published URL (allocation, the node's wake-up, the
   buildout, supervisord, the promise, the report, the publication).
2. **reaction**: with hello-web running, time from a parameter change (the `request` call
   returning) to the node writing the new timestamp into the partition (the start of its work),
   and to the new greeting being served.
3. **idle pass**: N partitions deployed with a small release (no service, one promise whose
   period is an hour); time `slapos node instance` as a user runs it (process start included),
   and the pass itself inside one process (`node.passes.instance_pass`).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.node import HELLO_WEB, NodeEnv, free_port  # noqa: E402

IDLE_RELEASE = """[buildout]
parts = instance-profile

[instance-profile]
recipe = partita:template
inline =
    [buildout]
    parts = ready
    [ready]
    recipe = partita:promise
    check = file-exists
    path = $${buildout:directory}/buildout.cfg
    period = 3600
output = ${buildout:directory}/instance.cfg
"""


def figures(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1],
            "p95": ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]}


def line(name: str, values: list[float], target: float) -> str:
    f = figures(values)
    verdict = "meets" if f["median"] <= target else "MISSES"
    return (f"{name:<42} median {f['median']:.3f}s  min {f['min']:.3f}s  max {f['max']:.3f}s  "
            f"(n={len(values)}; target {target:g}s: {verdict})")


def wait_answer(url: str, text: str | None, deadline: float) -> float:
    while time.monotonic() < deadline:
        try:
            response = requests.get(url, timeout=1)
            if response.status_code == 200 and (text is None or response.text == text):
                return time.monotonic()
        except requests.RequestException:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not answer {text!r} in time")


def bench_request_and_reaction(repeat: int) -> dict[str, list[float]]:
    env = NodeEnv(partitions=repeat + 1)
    try:
        env.format()
        env.client.supply("local_computer", str(HELLO_WEB))
        env.software()  # the software is built before the clock starts
        env.start_daemon()
        answering, reaction, applied = [], [], []
        for i in range(repeat):
            port = str(free_port())
            started = time.monotonic()
            doc = env.client.request_instance(f"hello-{i}", str(HELLO_WEB), parameters={"port": port})
            url = f"http://127.0.{env.network}.{int(doc['compute_partition_id'][len('slappart'):]) + 1}:{port}/"
            answering.append(wait_answer(url, None, started + 120) - started)
        # reaction: change the greeting of hello-0 several times
        doc = env.info("hello-0")
        partition = env.partition_path(doc["compute_partition_id"])
        port = doc["parameters"]["port"]
        url = doc["connection_parameters"]["url"]
        env.wait_for("hello-0", lambda d: d["status_reason"] == "started", 60)
        for i in range(repeat):
            time.sleep(1.0)
            before = json.loads((partition / ".slapgrid" / "instance.json").read_text())["timestamp"]
            greeting = f"greeting {i}"
            env.client.request_instance("hello-0", str(HELLO_WEB), parameters={"port": port, "greeting": greeting})
            changed = time.monotonic()
            reaction.append(_wait_new_timestamp(partition, before, changed + 30) - changed)
            applied.append(wait_answer(url, greeting + "\n", changed + 60) - changed)
        return {"request_to_answering": answering, "reaction": reaction, "change_to_served": applied}
    finally:
        env.close()


def _wait_new_timestamp(partition: Path, before: float, deadline: float) -> float:
    path = partition / ".slapgrid" / "instance.json"
    while time.monotonic() < deadline:
        try:
            if json.loads(path.read_text())["timestamp"] != before:
                return time.monotonic()
        except (OSError, ValueError):
            pass
        time.sleep(0.002)
    raise RuntimeError("the node did not react in time")


def bench_idle_pass(partitions: int, repeat: int) -> dict[str, list[float]]:
    env = NodeEnv(partitions=partitions, extra={"slapos": {"maximum_concurrency": "8"}})
    try:
        release = env.root / "idle-release"
        release.mkdir()
        (release / "software.cfg").write_text(IDLE_RELEASE)
        env.format()
        env.client.supply("local_computer", str(release / "software.cfg"))
        for i in range(partitions):
            env.client.request_instance(f"idle-{i}", str(release / "software.cfg"))
        env.software()
        started = time.monotonic()
        env.instance()
        print(f"  (first deployment of {partitions} partitions: {time.monotonic() - started:.1f}s)")
        command, in_process = [], []
        for _ in range(repeat):
            started = time.monotonic()
            env.instance()
            command.append(time.monotonic() - started)
        in_process = _in_process_passes(env.config_path, repeat)
        return {"idle_pass_command": command, "idle_pass_in_process": in_process}
    finally:
        env.close()


def _in_process_passes(config_path: Path, repeat: int) -> list[float]:
    from partita.node.config import node_config
    from partita.node.context import open_context
    from partita.node.passes import fetch, instance_pass
    from partita.slap.config import read_config

    ctx = open_context(node_config(read_config(str(config_path))))
    times = []
    for _ in range(repeat):
        started = time.monotonic()
        summary, _ = instance_pass(ctx, fetch(ctx))
        times.append(time.monotonic() - started)
        assert summary.processed == 0 and not summary.failed, summary
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args()
    results = {}
    print("request -> answering and reaction (hello-web, daemon running)")
    results.update(bench_request_and_reaction(args.repeat))
    print(f"idle pass over {args.partitions} unchanged partitions")
    results.update(bench_idle_pass(args.partitions, args.repeat))
    print()
    print(line("request -> hello-web answering", results["request_to_answering"], 10.0))
    print(line("reaction to a change (work starts)", results["reaction"], 1.0))
    print(line("change -> new greeting served", results["change_to_served"], 10.0))
    print(line(f"idle `slapos node instance`, {args.partitions} partitions", results["idle_pass_command"], 0.5))
    print(line(f"idle pass in process, {args.partitions} partitions", results["idle_pass_in_process"], 0.5))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
