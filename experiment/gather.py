"""``collect DIR``: for the lab notebook, every host's logs and configuration and the catalog.

- ``DIR/<host>/``: from each host, a tar stream of its node's (``node/``: configuration, daemon
  log; ``srv/var/log`` and ``srv/etc``: supervisord's) or master's (``master/``: configuration and
  logs; ``postgres/log``) files. Private keys never leave the host: ``*.key``, ``ssl/`` and
  ``pki/`` are left out remotely, and the local side extracts only regular files and directories
  with relative names (no link, no ``..``), whatever the stream holds.
- ``DIR/catalog/``: the master's view as JSON (``computers.json``, ``instances.json``).
- ``DIR/README``: when, which hosts, roles and computers, the master's URL and what is where.
"""
from __future__ import annotations

import json
import tarfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from partita.experiment.context import Context
from partita.experiment.errors import SshError
from partita.experiment.ssh import parallel
from partita.experiment.state import HostState
from partita.slap.errors import PartitaError

MAX_BYTES = 512 * 1024 * 1024
NODE_PARTS = ("node", "srv/var/log", "srv/etc")
MASTER_PARTS = ("master", "postgres/log")
_TAR = """
cd "$1"; shift
set -- $(for part in "$@"; do [ -e "$part" ] && echo "$part"; done)
[ $# -gt 0 ] || exit 0
exec tar -cf - --exclude='*.key' --exclude=ssl --exclude=pki --exclude='*.pid' --exclude='*.sock' \\
    --exclude='packages' "$@"
"""


def collect(context: Context, target: Path) -> list[str]:
    """Everything into `target`; the files written (relative to it)."""
    target.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for names in parallel(context.state.hosts, lambda host: _host(context, host, target),
                          name=lambda host: host.name):
        written += names
    written += _catalog(context, target)
    (target / "README").write_text(readme(context, written))
    return [*written, "README"]


def _host(context: Context, host: HostState, target: Path) -> list[str]:
    parts = MASTER_PARTS if host.role == "master" else NODE_PARTS
    done = context.ssh.script(host.name, _TAR, host.remote_dir, *parts, timeout=600)
    if len(done.stdout) > MAX_BYTES:
        raise SshError(host.name, f"more than {MAX_BYTES} bytes of logs")
    if not done.stdout:
        return []
    return [f"{host.name}/{name}" for name in extract(done.stdout, target / host.name)]


def extract(stream: bytes, destination: Path) -> list[str]:
    """The regular files of a tar stream written under `destination` (relative names only)."""
    import io
    written = []
    with tarfile.open(fileobj=io.BytesIO(stream), mode="r:") as archive:
        for member in archive.getmembers():
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts or not member.isfile():
                continue
            if name.suffix == ".key" or "ssl" in name.parts or "pki" in name.parts:
                continue
            path = destination.joinpath(*name.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            if source is None:
                continue
            path.write_bytes(source.read())
            written.append(str(name))
    return sorted(written)


def _catalog(context: Context, target: Path) -> list[str]:
    directory = target / "catalog"
    directory.mkdir(exist_ok=True)
    try:
        with context.client() as client:
            computers = client.list_compute_nodes()
            instances = client.list_instance_trees()
    except PartitaError as error:
        (directory / "error.txt").write_text(f"the master did not answer: {error}\n")
        return ["catalog/error.txt"]
    (directory / "computers.json").write_text(json.dumps(computers, indent=2, sort_keys=True) + "\n")
    (directory / "instances.json").write_text(json.dumps(instances, indent=2, sort_keys=True) + "\n")
    return ["catalog/computers.json", "catalog/instances.json"]


def readme(context: Context, written: list[str]) -> str:
    state = context.state
    lines = [f"Partita experiment, collected {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
             f"master: {state.master_url} on {state.master.name}", "", "hosts:"]
    for host in state.hosts:
        lines.append(f"  {host.index}. {host.name}  {host.role}  {host.computer_id or '-'}  {host.remote_dir}")
    if state.software:
        lines += ["", "software releases:", *(f"  {url}" for url in state.software)]
    lines += ["", "files:", *(f"  {name}" for name in written), ""]
    return "\n".join(lines)
