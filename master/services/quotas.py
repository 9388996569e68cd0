"""Per-owner quotas: how many instances an owner may have and how many bytes their parameters take.

Pure rules over plain numbers; `instances` reads the owner's usage and asks before it stores::

    new instance ──(instances + 1 > max_instances)──────────────► 403 QUOTA
    new or changed parameters
      ──(stored bytes - old size + new size > max_parameter_bytes)─► 403 QUOTA
    otherwise ─────────────────────────────────────────────────► allowed

A change that does not grow the owner's usage (an idempotent re-request, smaller parameters, a
destruction) is always allowed, so an owner over a lowered quota can still shrink. Sizes are
those of the parameters as the catalog stores them (their JSON text). The shared instances an
owner's partitions request count as the owner's. The usage is read under a lock of the owner's row
(`master.services.instances.owner_usage`), so concurrent requests of one owner are counted one after
the other and never take it over its quota.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from partita.slap.errors import QuotaExceeded

DEFAULT_MAX_INSTANCES = 10_000
DEFAULT_MAX_PARAMETER_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Quota:
    """The limits of one owner (every owner has the same in this version)."""

    max_instances: int = DEFAULT_MAX_INSTANCES
    max_parameter_bytes: int = DEFAULT_MAX_PARAMETER_BYTES


@dataclass(frozen=True)
class Usage:
    """What an owner's instances take now."""

    instances: int
    parameter_bytes: int


def stored_size(parameters: Mapping[str, Any] | None) -> int:
    """The length of `parameters` as the catalog stores them (SQLAlchemy's JSON: ``json.dumps``)."""
    return len(json.dumps(dict(parameters or {})))


def check_request(quota: Quota, usage: Usage, owner: str, *, new_instance: bool,
                  old_bytes: int, new_bytes: int) -> None:
    """Refuse (`QuotaExceeded`) a request that would take `owner` over `quota`."""
    if new_instance and usage.instances + 1 > quota.max_instances:
        raise QuotaExceeded(
            f"owner {owner!r} has {usage.instances} instances, the quota is {quota.max_instances}: "
            "destroy some before requesting new ones")
    if new_bytes > old_bytes:
        total = usage.parameter_bytes - old_bytes + new_bytes
        if total > quota.max_parameter_bytes:
            raise QuotaExceeded(
                f"the parameters of owner {owner!r}'s instances would take {total} bytes, the quota is "
                f"{quota.max_parameter_bytes}: shrink or destroy instances first")


def needs_usage(*, new_instance: bool, old_bytes: int, new_bytes: int) -> bool:
    """Whether `check_request` could refuse (else the usage need not be read)."""
    return new_instance or new_bytes > old_bytes
