"""Who is calling: a user (by owner name) or a partition acting for the instance it hosts.

Every service function takes a Caller. In proxy mode every caller is the built-in user ``local``;
authentication (a later layer) decides the Caller and must not change the rules below it.
"""
from __future__ import annotations

from dataclasses import dataclass

LOCAL_OWNER = "local"


@dataclass(frozen=True)
class Caller:
    owner: str = LOCAL_OWNER
    computer: str | None = None
    partition: str | None = None

    @property
    def is_partition(self) -> bool:
        return self.partition is not None
