"""The last resort of the tests' clean-ups: processes found by where they run."""
from __future__ import annotations

import os
import signal
from pathlib import Path


def kill_processes_under(directory: Path) -> list[int]:
    """SIGKILL every process whose command line or working directory is inside `directory`."""
    killed = []
    prefix = str(directory) + "/"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd") + "/"
        except OSError:
            continue
        if prefix in cmdline or cwd.startswith(prefix):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except ProcessLookupError:
                pass
    return killed
