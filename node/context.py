"""What every pass needs: the configuration, the master, the toolchain, supervisord, and who
runs what.

Who runs what follows the files, as in SlapOS: a partition's work runs as the owner of its
directory. A build runs as ``[slapformat] software_user`` in root mode (``software_root`` itself
is root's, so that the build user cannot rename the toolchain or the node's locks in it:
`node.software_root`), as the owner of ``software_root`` otherwise. The node refuses to run
either as root: in root mode `slapos node format` gives the partitions to ``slapuserN`` and makes
``slapsoft``; in single-user mode everything belongs to the node's own user anyway.
"""
from __future__ import annotations

import functools
import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path

from partita.node import software_root
from partita.node.certificates import settle_pending
from partita.node.config import NodeConfig
from partita.node.errors import NodeError, SetupError
from partita.node.package_index import pip_environment
from partita.node.runner import RunAs
from partita.node.supervisor import Supervisor
from partita.node.toolchain import Toolchain, ensure_toolchain
from partita.slap.client import MasterClient, connect
from partita.slap.wire.instance import NodeInstanceDocument
from partita.slap.wire.node_state import ComputePartition


def owner_of(path: Path) -> RunAs:
    """The unix identity owning `path` (never root when the node runs as root)."""
    try:
        uid = path.stat().st_uid
    except FileNotFoundError:
        raise SetupError(f"{path} does not exist: run slapos node format") from None
    if uid == 0 and os.geteuid() == 0:
        raise SetupError(f"{path} belongs to root: the node never runs builds or partitions as root "
                         "(run slapos node format)")
    return _identity(uid)


def forget_identities() -> None:
    """Drop the cached users (the daemon does so at every iteration: format may have changed them)."""
    _identity.cache_clear()


@functools.lru_cache(maxsize=4096)
def _identity(uid: int) -> RunAs:
    """The user `uid`, its group and its groups (cached: a pass asks for each partition's)."""
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        raise SetupError(f"uid {uid} owns a partition or the software root but has no user entry") from None
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


@dataclass(frozen=True)
class PartitionWork:
    """A partition hosting an instance, as one partition's work starts (`NodeContext.work_on`)."""

    partition: ComputePartition
    path: Path                        # the partition's directory
    instance: NodeInstanceDocument

    @property
    def pid(self) -> str:
        return self.partition.compute_partition_id

    def user(self) -> RunAs:
        """Who runs the partition's work: the owner of its directory (a SetupError when that is
        root or no user)."""
        return owner_of(self.path)


@dataclass
class NodeContext:
    config: NodeConfig
    client: MasterClient
    toolchain: Toolchain
    supervisor: Supervisor | None = field(default=None)

    def services(self) -> Supervisor:
        """The node's supervisord (opened by `open_context`)."""
        if self.supervisor is None:
            raise NodeError("the node's supervisord was not opened for this command")
        return self.supervisor

    def partition_path(self, partition_id: str) -> Path:
        return self.config.partition_path(partition_id)

    def software_path(self, digest: str) -> Path:
        return self.config.software_root / digest

    def work_on(self, partition: ComputePartition) -> PartitionWork:
        """The partition's id, directory and instance (a NodeError for a free partition: no pass
        works on one)."""
        if partition.instance is None:
            raise NodeError(f"{partition.compute_partition_id} hosts no instance")
        return PartitionWork(partition, self.partition_path(partition.compute_partition_id), partition.instance)

    def software_user(self) -> RunAs:
        """Who builds: ``software_user`` when ``software_root`` is root's (root mode), else its owner."""
        root = self.config.software_root
        try:
            uid = root.stat().st_uid
        except FileNotFoundError:
            raise SetupError(f"{root} does not exist: run slapos node format") from None
        if uid != 0 or os.geteuid() != 0:
            return owner_of(root)
        try:
            entry = pwd.getpwnam(self.config.software_user)
        except KeyError:
            raise SetupError(f"the software user {self.config.software_user} does not exist: "
                             "run slapos node format") from None
        if entry.pw_uid == 0:
            raise SetupError("the software user is root: the node never runs builds as root")
        return _identity(entry.pw_uid)


def master_client(config: NodeConfig, *, timeout: float | None = None) -> MasterClient:
    """A client of the node's master, with the node's certificate when it has one (a renewal cut
    short by a crash is settled first, so that the key and the certificate match) and the master
    verified against ``partita_ca_file``."""
    if config.has_certificate:
        settle_pending(Path(config.key_file), Path(config.cert_file))  # type: ignore[arg-type]
    return connect(config.master_url, key_file=config.key_file, cert_file=config.cert_file,
                   ca_file=config.ca_file, timeout=timeout or config.http_timeout)


def open_context(config: NodeConfig, *, with_supervisor: bool = True) -> NodeContext:
    """Everything a pass needs, ready: the software root checked (`node.software_root`), the
    toolchain built, supervisord running (or adopted)."""
    software_root.secure(config)
    toolchain = ensure_toolchain(config.toolchain_root, config.toolchain_python,
                                 pip_environment=pip_environment(config, for_node=True))
    ctx = NodeContext(config, master_client(config), toolchain)
    if with_supervisor:
        supervisor = Supervisor(config)
        supervisor.ensure_running()
        ctx.supervisor = supervisor
    return ctx
