"""``slapos experiment up`` on N hosts reached over SSH, its phases timed, then ``down``.

The hosts of ``tests/experiment`` (`tests.support.ssh_hosts`): a bridge and N network namespaces
with no default route, each running its own sshd with a key the bench makes. ``up`` runs from
this machine as from a Grid'5000 frontend, with hello-web as the release supplied to every node;
it prints its phases, which the bench reports:

- *wheelhouse*: the wheels made here (cached in ``$PARTITA_TEST_ROOT/experiment-wheelhouse``
  between runs, as a second ``up`` reuses ``--dir``'s; ``--fresh-wheelhouse`` makes them in an
  empty directory, which needs this machine's package index);
- *install*: the wheels copied to every host and Partita installed there (in parallel);
- *master*: PostgreSQL, ``master init``, ``master start`` and the admin's enrolment;
- *nodes*: every other host registered, formatted (its partitions) and running ``node run``;
- *supply*: hello-web supplied on every node.

Then a second ``up`` (nothing to do but check), ``down``, and the whole.

Usage, as root (the project's .venv made by ``scripts/test`` first):

    PARTITA_TEST_ROOT=/opt/partita-test .venv/bin/python bench/experiment.py [--hosts 5] [--json FILE]

Everything it makes (namespaces, bridge, sshd, users, directories) is removed at the end.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.experiment.test_experiment import WHEELHOUSE, up_arguments  # noqa: E402
from tests.support.ssh_hosts import ssh_hosts  # noqa: E402

SLAPOS = str(Path(sys.executable).parent / "slapos")
_PHASE = re.compile(r"(\w+) ([0-9.]+) s")
_UP = re.compile(r"^up in ([0-9.]+) s \((.*)\)$", re.M)


def experiment(directory: Path, *args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run([SLAPOS, "experiment", *args, "--dir", str(directory)], capture_output=True, text=True,
                          timeout=1800)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"slapos experiment {args[0]} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def phases(output: str) -> dict[str, float]:
    match = _UP.search(output)
    return {name: float(seconds) for name, seconds in _PHASE.findall(match[2])} if match else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=5)
    parser.add_argument("--fresh-wheelhouse", action="store_true")
    parser.add_argument("--json", metavar="FILE")
    options = parser.parse_args()
    results: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "hosts": options.hosts}
    with ssh_hosts(options.hosts) as hosts, tempfile.TemporaryDirectory(prefix="wheelhouse-") as fresh:
        directory = hosts.directory / "local"
        directory.mkdir()
        arguments = up_arguments(hosts)
        if options.fresh_wheelhouse:
            arguments[arguments.index(str(WHEELHOUSE))] = fresh
        results["up"], output = experiment(directory, *arguments)
        results["phases"] = phases(output)
        print(output)
        results["up_again"], output = experiment(directory, *arguments)
        results["phases_again"] = phases(output)
        results["down"], output = experiment(directory, "down")
        results["down_steps"] = {name: float(value) for name, value in _PHASE.findall(output)}
    print(f"{options.hosts} hosts: up {results['up']:.1f} s ("
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in results["phases"].items())
          + f"); up again {results['up_again']:.1f} s ({results['phases_again']}); "
          f"down {results['down']:.1f} s ({results['down_steps']})")
    if options.json:
        Path(options.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
