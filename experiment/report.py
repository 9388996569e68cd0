"""The experiment's table: a row per host (host, role, computer, partitions, state), from the
master (``computer list``: online, unreachable, never seen) and from each host (its daemon alive
or not). Rows are plain data; `render` makes the text."""
from __future__ import annotations

from dataclasses import dataclass

from partita.experiment import remote
from partita.experiment.context import MASTER_CONFIG, MASTER_PIDFILE, NODE_CONFIG, NODE_PIDFILE, Context, path
from partita.experiment.errors import ExperimentError
from partita.experiment.ssh import parallel
from partita.experiment.state import HostState
from partita.slap.errors import PartitaError

HEADERS = ("HOST", "ROLE", "COMPUTER", "PARTITIONS", "STATE")


@dataclass(frozen=True)
class Row:
    host: str
    role: str
    computer: str
    partitions: str
    state: str

    def cells(self) -> tuple[str, ...]:
        return (self.host, self.role, self.computer, self.partitions, self.state)


def rows(context: Context) -> list[Row]:
    """Every host's row: what the master says of its computer, and whether its daemon runs."""
    computers: dict[str, dict] = {}
    master_error = ""
    try:
        with context.client() as client:
            computers = {entry.get("computer_guid", ""): entry for entry in client.list_compute_nodes()}
    except PartitaError as error:
        master_error = f"master unreachable: {error}"[:60]
    daemons = parallel(context.state.hosts, lambda host: _daemon(context, host), name=lambda host: host.name)
    found = []
    for host, daemon in zip(context.state.hosts, daemons):
        if host.role == "master":
            found.append(Row(host.name, host.role, "-", "-", master_error or f"master {daemon}"))
            continue
        entry = computers.get(host.computer_id, {})
        contact = entry.get("contact_state") or ("?" if master_error else "never seen")
        partitions = f"{entry.get('busy_partition_count', 0)}/{entry.get('partition_count', host.partitions)}"
        found.append(Row(host.name, host.role, host.computer_id or "-", partitions, f"{contact}, daemon {daemon}"))
    return found


def _daemon(context: Context, host: HostState) -> str:
    try:
        if host.role == "master":
            return remote.daemon_state(context.ssh, host.name, path(host, MASTER_PIDFILE), path(host, MASTER_CONFIG))
        return remote.daemon_state(context.ssh, host.name, path(host, NODE_PIDFILE), path(host, NODE_CONFIG))
    except ExperimentError:
        return "unreachable over ssh"


def render(found: list[Row]) -> str:
    table = [HEADERS, *(row.cells() for row in found)]
    widths = [max(len(line[column]) for line in table) for column in range(len(HEADERS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table)


def alive(found: list[Row]) -> bool:
    """Whether the master runs and every node is online with its daemon alive."""
    return all(("alive" in row.state) and (row.role == "master" or row.state.startswith("online"))
               for row in found)
