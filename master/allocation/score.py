"""Score: rank the feasible candidates, higher is better."""
from __future__ import annotations

from partita.master.allocation.model import Candidate, PartitionCandidate
from partita.slap.states import SupplyState


def score(candidate: Candidate) -> int:
    """Prefer a partition on a computer where the release is supplied (built or being built);
    hosts are all equal."""
    if isinstance(candidate, PartitionCandidate):
        return 1 if candidate.supply == SupplyState.AVAILABLE.value else 0
    return 0
