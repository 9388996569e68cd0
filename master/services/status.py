"""Why an instance is (not) ready, as one line for `slapos info`: a pure function of its facts."""
from __future__ import annotations

import time
from dataclasses import dataclass

from partita.slap.states import BuildState, InstanceState

LOG_TAIL = 800


@dataclass(frozen=True)
class StatusFacts:
    requested_state: str
    shared: bool
    allocated: bool
    stored_reason: str
    reported_state: str | None
    build_state: str | None
    build_error: str
    supplied: bool
    host_title: str | None = None
    computer: str | None = None
    unreachable_since: float | None = None  # the last contact of its computer's node, if unreachable


def tail(text: str, limit: int = LOG_TAIL) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def describe(facts: StatusFacts) -> str:
    if facts.requested_state == InstanceState.DESTROYED.value:
        return "being destroyed"
    if not facts.allocated:
        return facts.stored_reason or "waiting for allocation"
    if facts.unreachable_since is not None:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(facts.unreachable_since))
        return (f"the node of computer {facts.computer} is unreachable since {since} (its last contact); "
                "the instance stays there (its data lives there)")
    if facts.shared:
        return f"hosted by instance {facts.host_title}"
    if not facts.supplied:
        return f"waiting for the software release to be supplied to {facts.computer}"
    if facts.build_state in (None, BuildState.BUILDING.value) and facts.reported_state is None:
        return "software building" if facts.build_state else "waiting for the node to build the software"
    if facts.build_state == BuildState.ERROR.value:
        return "software failed: " + tail(facts.build_error)
    if facts.reported_state is None:
        return "waiting for the node to deploy it"
    return facts.stored_reason or facts.reported_state
