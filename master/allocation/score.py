"""Rank candidates: higher is better."""
from __future__ import annotations

from partita.master.allocation.model import PartitionCandidate


def partition_score(candidate: PartitionCandidate) -> int:
    """Prefer computers where the software release is already supplied (built or being built)."""
    return 1 if candidate.supplied else 0
