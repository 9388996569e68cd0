"""The SLA keys the master knows, checked before anything is stored (pure).

| key | value | applies to | meaning |
|---|---|---|---|
| `computer_guid` | a computer reference | any request | on that computer only |
| `instance_guid` | an instance guid | shared requests | served by that host instance |
| `network_guid` | a network name | non-shared requests | on a computer of that network |
| `mode` | `unique_by_network` | non-shared requests | on a network where no other instance of its tree runs |
| `tag.NAME` | a tag value | non-shared requests | on a computer tagged NAME=value (`slapos computer tag set`) |
| `retention_delay` | a number of days, 0 or more | non-shared requests | no placement: kept for the node, as SlapOS's slapgrid reads it from the partition's SLA (how long a destroyed partition's data is kept) |

Any other key is refused (`UnknownSlaKey`, 400 ``BAD_SLA``) with a message naming it: a key the
master did not know used to be ignored, and the instance landed anywhere.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from partita.slap.errors import UnknownSlaKey

COMPUTER = "computer_guid"
INSTANCE = "instance_guid"
NETWORK = "network_guid"
MODE = "mode"
RETENTION = "retention_delay"
TAG_PREFIX = "tag."
UNIQUE_BY_NETWORK = "unique_by_network"
MODES = (UNIQUE_BY_NETWORK,)
SHARED_KEYS = (COMPUTER, INSTANCE)
PARTITION_KEYS = (COMPUTER, NETWORK, MODE, RETENTION)
TAG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$")


def is_tag_name(name: object) -> bool:
    """A tag name is a short identifier: a letter or _, then letters, digits, _ or - (63 at most)."""
    return isinstance(name, str) and TAG_NAME.match(name) is not None


def bad_tag_name(name: object, what: str = "tag name") -> str:
    """The message that refuses `name` as a tag name."""
    return (f"{what} {name!r} is not a short identifier (a letter or _, then letters, digits, _ or -; "
            "63 characters at most)")


def tag_filters(sla: Mapping[str, str]) -> dict[str, str]:
    """The ``tag.NAME`` keys of an SLA, as {NAME: value}."""
    return {key[len(TAG_PREFIX):]: value for key, value in sla.items() if key.startswith(TAG_PREFIX)}


def check_sla(sla: Mapping[str, str], shared: bool) -> None:
    """Refuse an SLA key the master does not know, or one that does not apply to the request."""
    for key in sorted(sla):
        _check_key(key, sla[key], shared)


def _check_key(key: str, value: str, shared: bool) -> None:
    if key.startswith(TAG_PREFIX):
        if not is_tag_name(key[len(TAG_PREFIX):]):
            raise UnknownSlaKey(bad_tag_name(key[len(TAG_PREFIX):], f"SLA key {key!r}: the tag name"))
    elif key not in (*SHARED_KEYS, *PARTITION_KEYS):
        raise UnknownSlaKey(
            f"unknown SLA key {key!r}: the master knows {', '.join((COMPUTER, INSTANCE, NETWORK, MODE, RETENTION))} "
            "and tag.NAME")
    if key == RETENTION and not _is_retention(value):
        raise UnknownSlaKey(f"SLA retention_delay {value!r} is not a number of days (0 or more)")
    if key == MODE and value not in MODES:
        raise UnknownSlaKey(f"unknown SLA mode {value!r}: the master knows mode={UNIQUE_BY_NETWORK}")
    if shared and key not in SHARED_KEYS:
        raise UnknownSlaKey(f"SLA key {key!r} does not apply to a shared request (it places a partition; "
                            f"a shared request takes {COMPUTER} and {INSTANCE})")
    if not shared and key == INSTANCE:
        raise UnknownSlaKey(f"SLA key {INSTANCE!r} applies to shared requests only (it names their host)")


def _is_retention(value: object) -> bool:
    try:
        days = float(str(value))
    except ValueError:
        return False
    return 0 <= days < 100_000
