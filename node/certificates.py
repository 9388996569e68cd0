"""The node's certificates: the computer's, renewed before it expires, and one per partition.

Renewal rule (pure, `needs_renewal`): a certificate is renewed once less than a third of its
lifetime is left (the master lists it as "expiring" from the same moment). The daemon checks at
every iteration and renews at most once per iteration; a failure is logged and tried again at the
next one. A certificate that expired cannot be renewed (the master refuses it at the handshake):
the way back is ``slapos node register`` with a token the admin makes for this computer.

Replacing a key and its certificate. Two files cannot be renamed at once, so::

    1. the new key  -> <key>.next   (0600 from creation, atomically)
    2. the new cert -> <cert>       (atomically)
    3. <key>.next   -> <key>        (rename)

A crash between 2 and 3 leaves the new certificate beside the old key; `settle_pending`, run
before any client is made from the files (`node.context.master_client`) and before every
renewal, finishes step 3 when ``<key>.next`` matches the certificate in place and drops it
otherwise (a crash before 2). So the key a client loads always matches its certificate.

Partition certificates. For each partition hosting an instance, the node makes a key, asks
``slapos.post.v0.compute_partition_certificate`` with a CSR (the key never leaves the node) and
writes, in ``[slapos] certificate_repository_path``::

    <repository>/               owner: the node (root)   0711
        slappart0.key           owner: slapuser0         0600
        slappart0.crt           owner: slapuser0         0644

Why this layout: the partition's buildout and services run as its user and must read its key,
so the key belongs to that user, 0600: no other partition user can read it. The directory stays
the node's and is not writable by anyone else, so no partition user can plant a link or swap a
file there, and 0711 lets partition users reach a file whose name they know without listing the
others (0700 would lock them out of their own key; a directory per partition owned by its user
would let that user replace its content under root's feet). Every parent must be searchable by
the partition users too: `ensure_repository` names the one that is not. Root still works there
through a descriptor of the directory and never follows a link (`partita.slap.fileio`). In
single-user mode everything belongs to the node's user. A node without a certificate (the
proxy's mode) makes none of this: the buildout's ``key-file`` and ``cert-file`` stay empty.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from partita.node.config import NodeConfig
from partita.node.errors import NodeError
from partita.slap.client import MasterClient
from partita.slap.enrolment import (
    PrivateKey, fingerprint, key_pem, load_certificate, load_key, matches_key, new_key,
    request_certificate, validity,
)
from partita.slap.errors import ClientError, ValidationError
from partita.slap.fileio import open_directory, write_at

log = logging.getLogger(__name__)

COMPUTER_METHOD = "slapos.post.v0.compute_node_certificate"
PARTITION_METHOD = "slapos.post.v0.compute_partition_certificate"
PENDING_SUFFIX = ".next"
REPOSITORY_MODE = 0o711
MAX_PEM_BYTES = 64 * 1024


# -- the rule (pure) ------------------------------------------------------------------------

def needs_renewal(not_before: datetime.datetime, not_after: datetime.datetime,
                  now: datetime.datetime) -> bool:
    """Whether less than a third of the certificate's lifetime is left at `now` (or it is over)."""
    lifetime = not_after - not_before
    return not_after - now < lifetime / 3


@dataclass(frozen=True)
class PartitionFiles:
    """Where a partition's key and certificate are (written in its ``[slap-connection]``)."""

    key_file: str
    cert_file: str


# -- reading and replacing a pair of files --------------------------------------------------

def _read_at(dir_fd: int, name: str) -> bytes | None:
    """A regular file's bytes (never through a link), None when it is missing."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, MAX_PEM_BYTES)
    finally:
        os.close(fd)


def _owner_at(dir_fd: int, name: str) -> int | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_uid
    except FileNotFoundError:
        return None


def _settle_at(key_fd: int, key_name: str, cert_pem: bytes | None) -> None:
    """Step 3 of a replacement cut short (see the module docstring), in the directory `key_fd`."""
    pending_name = key_name + PENDING_SUFFIX
    pending = _read_at(key_fd, pending_name)
    if pending is None:
        return
    try:
        fits = cert_pem is not None and matches_key(load_key(pending), load_certificate(cert_pem))
    except (ValidationError, ClientError):
        fits = False
    if fits:
        os.rename(pending_name, key_name, src_dir_fd=key_fd, dst_dir_fd=key_fd)
        log.info("finished replacing %s (the last renewal was cut short)", key_name)
    else:
        os.unlink(pending_name, dir_fd=key_fd)


def settle_pending(key_file: Path, cert_file: Path) -> None:
    """Make the key in place match the certificate in place after a crash (module docstring)."""
    try:
        with open_directory(cert_file.parent) as cert_fd:
            cert_pem = _read_at(cert_fd, cert_file.name)
        with open_directory(key_file.parent) as key_fd:
            _settle_at(key_fd, key_file.name, cert_pem)
    except OSError as error:
        raise NodeError(f"cannot check {key_file} against {cert_file}: {error.strerror}") from None


def replace_pair(key_file: Path, cert_file: Path, key: PrivateKey, cert_pem: bytes,
                 owner: tuple[int, int] | None = None) -> None:
    """Replace the key and its certificate so that no crash leaves them mismatched."""
    try:
        with open_directory(key_file.parent) as key_fd, open_directory(cert_file.parent) as cert_fd:
            pending = key_file.name + PENDING_SUFFIX
            write_at(key_fd, pending, key_pem(key), mode=0o600, owner=owner)
            write_at(cert_fd, cert_file.name, cert_pem, mode=0o644, owner=owner)
            os.rename(pending, key_file.name, src_dir_fd=key_fd, dst_dir_fd=key_fd)
    except OSError as error:
        raise NodeError(f"cannot write {key_file} and {cert_file}: {error.strerror}") from None


def read_certificate(path: Path) -> bytes | None:
    """The PEM at `path`, read without following a link (None when missing)."""
    try:
        with open_directory(path.parent) as dir_fd:
            return _read_at(dir_fd, path.name)
    except OSError as error:
        raise NodeError(f"cannot read {path}: {error.strerror}") from None


def ca_fingerprint(config: NodeConfig) -> str | None:
    """The fingerprint of the CA the node trusts (certificates answered must come from it)."""
    if not config.ca_file:
        return None
    pem = read_certificate(Path(config.ca_file))
    if pem is None:
        raise NodeError(f"the master's CA certificate {config.ca_file} is missing (partita_ca_file)")
    return fingerprint(load_certificate(pem, f"CA certificate {config.ca_file}"))


def _due(pem: bytes | None, now: datetime.datetime) -> bool:
    if pem is None:
        return True
    try:
        return needs_renewal(*validity(load_certificate(pem)), now)
    except ClientError:
        return True


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


# -- the computer's ----------------------------------------------------------------------------

def computer_certificate_due(config: NodeConfig, now: datetime.datetime | None = None) -> bool:
    """Whether the computer's certificate should be renewed now (False without one)."""
    if not config.has_certificate:
        return False
    return _due(read_certificate(Path(config.cert_file)), now or _now())  # type: ignore[arg-type]


def renew_computer_certificate(config: NodeConfig, client: MasterClient) -> datetime.datetime:
    """A new key and certificate for the computer, written in place of the old ones; the new
    certificate's end. `client` is the node's current client (its certificate is still valid)."""
    if not config.has_certificate:
        raise NodeError("this node has no certificate to renew ([slapos] key_file, cert_file)")
    key_file, cert_file = Path(config.key_file), Path(config.cert_file)  # type: ignore[arg-type]
    settle_pending(key_file, cert_file)
    key = new_key()
    cert_pem, _ = request_certificate(client, COMPUTER_METHOD, {"computer_guid": config.computer_id}, key,
                                      ca_fingerprint(config))
    replace_pair(key_file, cert_file, key, cert_pem)
    not_after = validity(load_certificate(cert_pem))[1]
    log.info("renewed the computer certificate %s: valid until %s", cert_file, not_after.isoformat())
    return not_after


# -- the partitions' ---------------------------------------------------------------------------

def ensure_repository(path: Path, *, single_user: bool) -> None:
    """Make the certificate repository a real directory of the node's, mode 0711, whose parents
    partition users may search (root mode); a NodeError naming what is wrong."""
    try:
        path.mkdir(mode=REPOSITORY_MODE, parents=True, exist_ok=True)
        info = os.lstat(path)
    except OSError as error:
        raise NodeError(f"cannot create the certificate repository {path}: {error.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise NodeError(f"the certificate repository {path} is not a directory of the node's user")
    if stat.S_IMODE(info.st_mode) != REPOSITORY_MODE:
        os.chmod(path, REPOSITORY_MODE)
    if not single_user:
        for parent in path.parents:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                raise NodeError(f"partition users cannot reach their keys in {path}: {parent} is not "
                                "searchable by others (chmod o+x it, or move certificate_repository_path)")


def makes_partition_certificates(config: NodeConfig) -> bool:
    """Whether this node gives its partitions certificates (it has one and a repository)."""
    return config.has_certificate and config.certificate_repository_path is not None


def partition_files(config: NodeConfig, partition_id: str) -> PartitionFiles | None:
    """Where the partition's key and certificate go (None when the node has no certificates)."""
    repository = config.certificate_repository_path
    if not makes_partition_certificates(config) or repository is None:
        return None
    return PartitionFiles(str(repository / f"{partition_id}.key"), str(repository / f"{partition_id}.crt"))


def ensure_partition_certificate(config: NodeConfig, client: MasterClient, partition_id: str,
                                 owner: tuple[int, int] | None, *,
                                 now: datetime.datetime | None = None) -> PartitionFiles | None:
    """The partition's key and certificate, made or renewed when due (or when the partition's
    user changed); None on a node without certificates. Errors: NodeError, ClientError."""
    files = partition_files(config, partition_id)
    if files is None:
        return None
    repository = config.certificate_repository_path
    assert repository is not None
    ensure_repository(repository, single_user=owner is None)
    key_name, cert_name = Path(files.key_file).name, Path(files.cert_file).name
    try:
        with open_directory(repository) as dir_fd:
            cert_pem = _read_at(dir_fd, cert_name)
            _settle_at(dir_fd, key_name, cert_pem)
            uid = _owner_at(dir_fd, key_name)
    except OSError as error:
        raise NodeError(f"cannot read the certificates of {partition_id} in {repository}: {error.strerror}") from None
    wanted_uid = owner[0] if owner else os.geteuid()
    if uid == wanted_uid and not _due(cert_pem, now or _now()):
        return files
    key = new_key()
    issued, _ = request_certificate(client, PARTITION_METHOD, {
        "computer_guid": config.computer_id, "compute_partition_id": partition_id}, key, ca_fingerprint(config))
    replace_pair(Path(files.key_file), Path(files.cert_file), key, issued, owner)
    log.info("%s: new partition certificate, valid until %s", partition_id,
             validity(load_certificate(issued))[1].isoformat())
    return files


def remove_partition_certificate(config: NodeConfig, partition_id: str) -> None:
    """Forget a freed partition's key and certificate (the next instance gets new ones)."""
    files = partition_files(config, partition_id)
    if files is None or config.certificate_repository_path is None:
        return
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        with open_directory(config.certificate_repository_path) as dir_fd:
            for name in (Path(files.key_file).name, Path(files.cert_file).name,
                         Path(files.key_file).name + PENDING_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dir_fd)

