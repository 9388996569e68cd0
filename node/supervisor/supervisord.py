"""supervisord as the node starts it: supervisor's own, with its log files opened safely.

supervisord runs as root and writes each program's output to ``<partition>/.<P>_<name>.log``, in
a directory the partition's user owns. supervisor opens its logs with the built-in ``open``, which
follows a link: a partition's user could plant ``.<P>_<name>.log -> /etc/…`` (or a link to another
partition's file) and have root append its service's output there, or a FIFO that blocks
supervisord for every partition. So this entry point gives ``supervisor.loggers`` an ``open`` of
its own (`open_log`, the one seam: a module global shadows the built-in) that never follows a link
at the file or above it, refuses a FIFO, a device or a hard link to another file, and truncates
only after those checks. A refused log is an error supervisor already handles: the program does
not start (its spawn error says why), and nothing outside the partition is touched.

    python -m partita.node.supervisor.supervisord -c <instance_root>/etc/supervisord.conf
"""
from __future__ import annotations

import os
import sys
from typing import BinaryIO

import supervisor.loggers
import supervisor.supervisord

from partita.slap.fileio import open_regular

LOG_MODE = 0o644  # before supervisord's umask, as the built-in open would create it


def open_log(filename: str, mode: str = "ab") -> BinaryIO:
    """``open(filename, mode)`` for supervisor's log handlers (modes ``ab`` and ``wb``), safely."""
    if mode not in ("ab", "wb", "a", "w"):
        raise ValueError(f"supervisor opened a log with mode {mode!r}")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode.startswith("a") else 0)
    fd = open_regular(filename, flags, LOG_MODE)
    try:
        if mode.startswith("w"):
            os.ftruncate(fd, 0)
        return os.fdopen(fd, "ab" if mode.startswith("a") else "wb")
    except BaseException:
        os.close(fd)
        raise


def install() -> None:
    """Make supervisor's log handlers open their files with `open_log`."""
    supervisor.loggers.open = open_log  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> None:
    install()
    supervisor.supervisord.main(args=argv)


if __name__ == "__main__":
    main(sys.argv[1:])
