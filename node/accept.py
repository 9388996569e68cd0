"""What the node accepts from the master (issue 10): pure checks of the compute node state.

The master names the partitions to work in and the software releases to build; the node turns
them into paths (``instance_root/<partition id>``, ``software_root/<md5(url)>``) and into the
``extends`` line of a buildout profile it writes and runs. A master that is wrong, compromised or
fed by a hostile user must not make it work outside its own tree. So, before a pass uses them:

partition id
    one of the node's own formatted partitions (``partition_base_name`` + 0..amount-1), made of
    letters, digits, ``_`` and ``-`` only: no separator, no dot, never outside ``instance_root``.
software release URL
    at most 2,048 characters, no whitespace or control character, no buildout substitution
    (``${``): it is copied into a profile's ``extends``. ``http://`` and ``https://`` URLs with a
    host; local releases as an absolute path or a ``file:///`` URL, normalised (no ``.``/``..``
    component, no ``//``), never inside ``instance_root`` (partitions write there) nor
    ``software_root`` (the build user writes there), and, when ``[slapos]
    allowed_software_roots`` lists directories, inside one of them. Unset (the default), any
    other local directory is allowed: the demo and the tests build releases from the checkout and
    from temporary directories. Set it on a node that serves users who cannot read its disk.
digests
    the node computes ``md5(url)`` itself (32 hexadecimal digits): no name the master sends
    becomes a path below ``software_root``.

`screen` splits a state into what the node works on and what it refuses (`Refusal`, one line
each, reported to the master as the status reason).
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from partita.slap.wire.node_state import ComputeNodeState

MAX_URL = 2048
PARTITION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]|\$\{")


@dataclass(frozen=True)
class Acceptance:
    """What the node's configuration allows."""

    partition_ids: frozenset[str]
    instance_root: PurePosixPath
    software_root: PurePosixPath
    software_roots: tuple[PurePosixPath, ...] = ()   # empty: any local directory but the two above


@dataclass(frozen=True)
class Refusal:
    kind: str        # "software" (key: the URL) or "instance" (key: its guid)
    key: str
    reason: str


def partition_problem(partition_id: str, allowed: Acceptance) -> str | None:
    """Why the node refuses to work in `partition_id` (None: it is one of its own)."""
    if not PARTITION_ID.fullmatch(partition_id):
        return f"the node refuses partition id {partition_id[:80]!r}: not a plain partition name"
    if partition_id not in allowed.partition_ids:
        return f"the node refuses partition id {partition_id!r}: not one of its formatted partitions"
    return None


def _inside(path: PurePosixPath, root: PurePosixPath) -> bool:
    return path == root or root in path.parents


def release_problem(url: str, allowed: Acceptance) -> str | None:
    """Why the node refuses to build or run the software release `url` (None: it accepts it)."""
    shown = url[:200]
    if not url or len(url) > MAX_URL:
        return f"the node refuses software release URL {shown!r}: empty or longer than {MAX_URL} characters"
    if _FORBIDDEN.search(url):
        return (f"the node refuses software release URL {shown!r}: whitespace, control characters and "
                "'${' are not allowed")
    lowered = url.lower()
    if lowered.startswith(("http://", "https://")):
        host = url.split("://", 1)[1].split("/", 1)[0]
        return None if host else f"the node refuses software release URL {shown!r}: no host"
    if lowered.startswith("file:"):
        if not lowered.startswith("file:///"):
            return f"the node refuses software release URL {shown!r}: a file URL must be file:///absolute/path"
        path = url[len("file://"):]
    elif url.startswith("/"):
        path = url
    else:
        return (f"the node refuses software release URL {shown!r}: only http, https, file:/// URLs and "
                "absolute paths are allowed")
    if os.path.normpath(path) != path or "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
        return f"the node refuses software release {shown!r}: the path is not normalised (., .. or //)"
    local = PurePosixPath(path)
    for root, whose in ((allowed.instance_root, "the partitions' instance_root"),
                        (allowed.software_root, "the build user's software_root")):
        if _inside(local, root):
            return f"the node refuses software release {shown!r}: it is inside {whose} ({root})"
    if allowed.software_roots and not any(_inside(local, root) for root in allowed.software_roots):
        roots = " ".join(str(root) for root in allowed.software_roots)
        return f"the node refuses software release {shown!r}: outside [slapos] allowed_software_roots ({roots})"
    return None


def screen(state: ComputeNodeState, allowed: Acceptance) -> tuple[ComputeNodeState, list[Refusal]]:
    """`state` without what the node refuses, and the refusals (an instance on a refused
    partition is left alone: neither processed, destroyed nor freed; one of a refused release is
    not deployed, but destroyed and freed when the master asks)."""
    refusals: list[Refusal] = []
    software = []
    for entry in state.software_installation_list:
        problem = release_problem(entry.software_release_uri, allowed)
        if problem is None:
            software.append(entry)
        else:
            refusals.append(Refusal("software", entry.software_release_uri, problem))
    partitions = []
    for partition in state.compute_partition_list:
        problem = partition_problem(partition.compute_partition_id, allowed)
        instance = partition.instance
        if problem is None and instance is not None and instance.state != "destroyed":
            problem = release_problem(instance.software_release_uri, allowed)
        if problem is None:
            partitions.append(partition)
        elif instance is not None:
            refusals.append(Refusal("instance", instance.instance_guid, problem))
    kept = dataclasses.replace(state, software_installation_list=tuple(software),
                               compute_partition_list=tuple(partitions))
    return kept, refusals

