"""The request transaction of a partition: the titles its instance requested during one pass.

As in SlapOS, the node removes the file before running a partition's buildout, each request
made from the partition appends its title, and after a successful pass the node sends the list to
the master, which destroys the instances the partition requested before and no longer requests.
The file name is SlapOS's, so the `slapos.slap` library of a software release writes the same file.
"""
from __future__ import annotations

from pathlib import Path

FILE_NAME = ".slapos-request-transaction-{partition}"
MAX_BYTES = 1024 * 1024


def file_name(partition_id: str) -> str:
    return FILE_NAME.format(partition=partition_id)


def record(partition_directory: Path, partition_id: str, title: str) -> None:
    """Append `title` to the partition's transaction (run as the partition's user)."""
    with open(partition_directory / file_name(partition_id), "a", encoding="utf-8") as handle:
        handle.write(title + "\n")


def titles(text: str) -> list[str]:
    """The distinct titles of a transaction file's text, in the order first requested."""
    return list(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
