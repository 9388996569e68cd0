"""What the ``slapos computer`` commands share: a computer entry of the JSON API
(``compute_node_list``, ``compute_node``) as table cells, and setting the allocation scope.

An entry: ``computer_guid``, ``title``, ``owner``, ``created_at``, ``partition_count``,
``busy_partition_count``, ``instance_count`` (destroyed instances left out), ``certificate`` (the
newest one, or null: ``serial``, ``not_after``, ``state`` valid|expiring|expired|revoked),
``allocation_scope`` (open|close|drain), ``tags``, ``network_guid``, ``contact_state``
(online|unreachable|never seen) and ``last_contact``.

``computer list`` fits 80 columns (`slap.cli.output.print_fitted_table`); ``computer info`` has
every field.
"""
from __future__ import annotations

from typing import Any

import click

from partita.slap.cli.common import open_client
from partita.slap.cli.durations import ago, show_time
from partita.slap.cli.output import Fit, shorten_middle

COLUMNS = ("computer", "scope", "state", "last contact", "instances", "certificate")
FITS = (Fit(8, shorten_middle), Fit(6), Fit(7), Fit(8), Fit(9), Fit(8))


def partitions(entry: dict[str, Any]) -> str:
    """``1/3``: busy partitions over all partitions."""
    return f"{entry.get('busy_partition_count', 0)}/{entry.get('partition_count', 0)}"


def instance_count(entry: dict[str, Any]) -> int:
    """Its instances, destroyed ones left out (busy partitions from a master that does not count them)."""
    return int(entry.get("instance_count", entry.get("busy_partition_count")) or 0)


def instances(entry: dict[str, Any]) -> str:
    """``1/3``: its instances over all partitions."""
    return f"{instance_count(entry)}/{entry.get('partition_count', 0)}"


def certificate_state(entry: dict[str, Any]) -> str:
    """The newest certificate's state, or ``none`` before the computer enrolled."""
    certificate = entry.get("certificate")
    return str(certificate.get("state")) if isinstance(certificate, dict) else "none"


def certificate_expiry(entry: dict[str, Any]) -> str:
    certificate = entry.get("certificate")
    return show_time(certificate.get("not_after")) if isinstance(certificate, dict) else ""


def scope(entry: dict[str, Any]) -> str:
    """``open``, ``closed``, ``draining`` (instances remain) or ``drained`` (none left)."""
    value = entry.get("allocation_scope") or "open"
    if value == "drain":
        return "draining" if entry.get("busy_partition_count") else "drained"
    return "closed" if value == "close" else str(value)


def show_tags(tags: Any) -> str:
    """``gpu=a100 region=rennes``, or ``(no tags)``."""
    if not isinstance(tags, dict) or not tags:
        return "(no tags)"
    return " ".join(f"{name}={value}" for name, value in sorted(tags.items()))


def row(entry: dict[str, Any]) -> list[Any]:
    """One computer as a row of `COLUMNS`."""
    return [entry.get("computer_guid"), scope(entry), entry.get("contact_state") or "never seen",
            ago(entry.get("last_contact")), instances(entry), certificate_state(entry)]


def set_scope(cfg: str | None, computer_guid: str, value: str) -> None:
    """Set the computer's allocation scope and say what it is now."""
    with open_client(cfg) as client:
        answer = client.set_compute_node_allocation_scope(computer_guid, value)
    shown = scope({"allocation_scope": answer.get("allocation_scope"), "busy_partition_count": 1})
    click.echo(f"{computer_guid}: {shown}")
