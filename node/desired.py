"""What the master wants of this node: the compute node state (`slap.wire.node_state`), and the
two facts the node derives from it.

The node works on the wire's own types: `ComputeNodeState` (the node), `SoftwareInstallation` (a
software release to build or remove), `ComputePartition` (a partition) and `NodeInstanceDocument`
(the instance a partition hosts). Pure: no IO. `parse` refuses an answer that does not follow the
contract with one NodeError line naming the field.
"""
from __future__ import annotations

import hashlib

from partita.node.errors import NodeError
from partita.slap.errors import MalformedDocument
from partita.slap.wire.instance import NodeInstanceDocument
from partita.slap.wire.node_state import ComputeNodeState, parse_node_state


def release_digest(url: str) -> str:
    """md5 of a software release's URL: its directory name under software_root, as in SlapOS."""
    return hashlib.md5(url.encode("utf-8")).hexdigest()


def stamp(instance: NodeInstanceDocument) -> str:
    """The instance's timestamp as the text kept in ``<partition>/.timestamp``."""
    return repr(float(instance.timestamp))


def parse(answer: object) -> ComputeNodeState:
    """The master's ``slapos.get.v0.compute_node_state`` answer; a NodeError if it is malformed."""
    try:
        return parse_node_state(answer)
    except MalformedDocument as error:
        raise NodeError(f"the master's compute_node_state answer is malformed: {error}") from None
