"""What the benchmarks share about the machine: how busy its CPUs are, and waiting for quiet.

A figure taken while other work loads the 2 cores says little, so each bench waits (up to a limit)
until the CPUs are mostly idle before measuring, and records how busy they were.
"""
from __future__ import annotations

import time
from collections.abc import Callable

QUIET_BUSY = 0.25  # wait while other work keeps the CPUs busier than this


def cpu_busy_fraction(seconds: float = 1.0) -> float:
    """How busy the CPUs are right now (0..1), from /proc/stat over `seconds`; -1 if unknown."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat") as handle:
            values = [int(value) for value in handle.readline().split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)
    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return -1.0
    return (busy1 - busy0) / max(1, total1 - total0)


def wait_until_quiet(max_seconds: float, log: Callable[[str], None], *, sample_seconds: float = 1.0,
                     pause: float = 4.0) -> float:
    """Wait (up to `max_seconds`) while other work keeps the CPUs busy; the busy share last seen."""
    deadline = time.monotonic() + max_seconds
    busy = cpu_busy_fraction(sample_seconds)
    while busy > QUIET_BUSY and time.monotonic() < deadline:
        log(f"CPUs {busy:.0%} busy with other work: waiting")
        time.sleep(pause)
        busy = cpu_busy_fraction(sample_seconds)
    return busy
