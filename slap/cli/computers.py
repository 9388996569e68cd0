"""What ``slapos computer list`` and ``slapos computer info`` share: a computer entry of the JSON
API (``compute_node_list``, ``compute_node``) as table cells.

An entry: ``computer_guid``, ``title``, ``owner``, ``created_at``, ``partition_count``,
``busy_partition_count`` and ``certificate`` (the newest one, or null: ``serial``, ``not_after``,
``state`` valid|expiring|expired|revoked).
"""
from __future__ import annotations

from typing import Any

from partita.slap.cli.durations import show_time

COLUMNS = ("computer", "title", "owner", "partitions busy/total", "certificate", "expires")


def partitions(entry: dict[str, Any]) -> str:
    """``1/3``: busy partitions over all partitions."""
    return f"{entry.get('busy_partition_count', 0)}/{entry.get('partition_count', 0)}"


def certificate_state(entry: dict[str, Any]) -> str:
    """The newest certificate's state, or ``none`` before the computer enrolled."""
    certificate = entry.get("certificate")
    return str(certificate.get("state")) if isinstance(certificate, dict) else "none"


def certificate_expiry(entry: dict[str, Any]) -> str:
    certificate = entry.get("certificate")
    return show_time(certificate.get("not_after")) if isinstance(certificate, dict) else ""


def row(entry: dict[str, Any]) -> list[Any]:
    """One computer as a row of `COLUMNS`."""
    return [entry.get("computer_guid"), entry.get("title"), entry.get("owner"), partitions(entry),
            certificate_state(entry), certificate_expiry(entry)]
